/**
 * The raw path the cluster is measured against: one process, one keyspace subscriber on
 * every master, one BullMQ job per event, a ticket per job. No leases, no dirty streams,
 * no coalescing, no handover: what a minimal generator costs, so the load test can state
 * the price of coordination as a ratio. Stops on SIGTERM.
 *
 * node loadtest/baseline.js --url URL --prefix P --watch GLOB
 */
import { Queue, Worker, type ConnectionOptions } from 'bullmq';
import { nanoid } from 'nanoid';
import { loadConfig } from '../lib/config.js';
import { Keys, TICKET_QUEUE } from '../lib/keys.js';
import { KeyspaceSubscriber } from '../lib/keyspace-subscriber.js';
import { createLogger } from '../lib/logger.js';
import { connect, detectTarget } from '../lib/redis.js';
import { Scripts } from '../lib/scripts.js';
import { ticketFields } from '../lib/sink.js';
import { keySlot, partitionOfSlot } from '../lib/slots.js';
import { formatValue } from '../lib/values.js';
import { benchArgs } from './args.js';

const { values: a, required } = benchArgs('node loadtest/baseline.js --url URL --prefix P --watch GLOB', { url: { type: 'string' }, prefix: { type: 'string' }, watch: { type: 'string' } });
const url = required('url', a.url);
const prefix = required('prefix', a.prefix);
const watch = required('watch', a.watch);

const logger = createLogger('warn', 'baseline');
const keys = new Keys(prefix);
const target = await detectTarget(loadConfig({ ...process.env, TG_REDIS_URL: url }, []).redis);
const client = connect(target);
const bull = connect(target, { maxRetriesPerRequest: null, autoPipelining: false });
const connection = bull as unknown as ConnectionOptions;
const scripts = new Scripts(client, keys);
const queue = new Queue(TICKET_QUEUE, { connection, prefix: keys.queuePrefix() });
let seq = 0;

const worker = new Worker<{ k: string; e: string; t: number }>(
  TICKET_QUEUE,
  async (job) => {
    const key = Buffer.from(job.data.k, 'base64');
    // Taken before the read, like the cluster's seq: a larger one read later in this one process.
    const order = `${Date.now()}-${seq++}`;
    const read = await scripts.readValue(key);
    const { type, value } = formatValue(read);
    const slot = keySlot(key);
    // A plain XADD: the raw path keeps no ticket index.
    await client.xadd(keys.tickets(), '*', ...ticketFields({ id: nanoid(), key, event: job.data.e, type, value, digest: read.digest, seq: order, partition: partitionOfSlot(slot, 271), slot, worker: 'baseline', dirtyAt: job.data.t, createdAt: Date.now() }));
  },
  { connection, prefix: keys.queuePrefix(), concurrency: 8 },
);

const subscriber = new KeyspaceSubscriber({
  target,
  client,
  watch,
  configureNotifications: false,
  checkNotifications: true,
  evictionPolicy: 'warn',
  logger,
  // Nothing here reads what the listeners heard: the pings only keep the connections checked.
  pingIntervalMs: 1000,
  // The naive generator reads every event as it comes.
  readPause: () => 0,
  onEvent: (key, event) => {
    void queue.add('t', { k: key.toString('base64'), e: event.toString(), t: Date.now() }, { removeOnComplete: true, removeOnFail: false });
  },
});
await subscriber.start();
process.stdout.write('ready\n');

process.once('SIGTERM', () => {
  void (async () => {
    await subscriber.stop();
    await worker.close();
    await queue.close();
    await Promise.all([client.quit(), bull.quit()]);
    process.exit(0);
  })();
});
