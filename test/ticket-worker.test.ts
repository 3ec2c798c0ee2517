/** Ticket jobs on a real cluster: fetched without blocking reads, by the worker that adds them. */
import { Worker, type ConnectionOptions } from 'bullmq';
import { expect } from 'chai';
import type { Cluster } from 'ioredis';
import { loadConfig } from '../lib/config.js';
import { startLocalRedis } from '../lib/local-redis.js';
import { Keys, TICKET_QUEUE } from '../lib/keys.js';
import { readLeases } from '../lib/lease-keeper.js';
import { silentLogger } from '../lib/logger.js';
import { connect, detectTarget, type RedisClient } from '../lib/redis.js';
import { Scripts } from '../lib/scripts.js';
import { queueShardTags } from '../lib/shards.js';
import type { Sink, Ticket } from '../lib/sink.js';
import { keySlot } from '../lib/slots.js';
import { latestTickets } from '../lib/ticket-reader.js';
import { encodeItems, TicketQueue } from '../lib/ticket-queue.js';
import { TicketWorker } from '../lib/ticket-worker.js';
import type { GeneratorWorker } from '../lib/worker.js';
import { withFrozenMaster } from './helpers/frozen-master.js';
import { clusterUrl, outcomeWithin, randomPrefix, waitFor } from './helpers/redis.js';
import { client, startWorker, testConfig } from './helpers/worker.js';

describe('ticket jobs (cluster)', function () {
  this.timeout(120000);
  let redis: RedisClient;
  const workers: GeneratorWorker[] = [];
  before(async () => {
    redis = await client(clusterUrl());
  });
  after(async () => {
    await Promise.all(workers.map((w) => w.stop()));
    await redis.quit();
  });

  it('makes every job without a blocking read of the queue: no connection of the workers waits on its marker', async () => {
    const prefix = randomPrefix();
    const keys = new Keys(prefix);
    const config = testConfig(clusterUrl(), prefix, { TG_WATCH: `${prefix}-k:*` });
    workers.push(await startWorker(config), await startWorker(config));
    await waitFor(async () => (await readLeases(redis, keys, 271)).every((l) => l.owner !== null), { timeoutMs: 30000, what: 'every partition owned' });
    const made = () => workers.reduce((n, w) => n + w.snapshot().ticketsMade, 0);
    // Bursts one after the other: several jobs a worker.
    for (let burst = 0; burst < 10; burst++) {
      const before = made();
      await Promise.all(Array.from({ length: 100 }, (_, i) => redis.set(`${prefix}-k:${burst}:${i}`, 'v')));
      await waitFor(() => made() >= before + 100, { timeoutMs: 20000, what: `the tickets of burst ${burst}` });
    }
    expect((await latestTickets(redis, keys)).latest.size).to.equal(1000);
    // BullMQ names the connections of a queue shard `<prefix>:{q<i>.<n>}:...`. Its own loop would
    // leave one of them a shard waiting in BZPOPMIN on the queue's marker (blocked for seconds),
    // and each job would wake one of them for nothing. Jobs go through the workers' `-bull` clients.
    const lists = await Promise.all((redis as Cluster).nodes('master').map((n) => n.client('LIST') as Promise<string>));
    const names = [`${prefix}:{q`, ...workers.map((w) => `tg-${w.id}-bull`)];
    const queueConnections = lists.flatMap((l) => l.split('\n')).filter((line) => names.some((name) => line.includes(` name=${name}`)));
    expect(queueConnections.length).to.be.greaterThan(0);
    expect(queueConnections.filter((line) => / cmd=bzpopmin /.test(line) || / flags=\S*b/.test(line))).to.deep.equal([]);
  });

  describe('jobs this worker did not just add, with nobody looking for them', () => {
    let bull: RedisClient;
    const opened: { close(): Promise<unknown> }[] = [];
    before(async () => {
      bull = connect(await detectTarget(loadConfig({ TG_REDIS_URL: clusterUrl() }, []).redis), { maxRetriesPerRequest: null });
    });
    after(async () => {
      for (const o of opened.reverse()) await o.close();
      await bull.quit();
    });

    /** A ticket worker alone: no sweep and no member events, so only its own triggers fetch jobs. */
    function ticketWorker(prefix: string, sink: Sink, lockDurationMs = 5000): { queue: TicketQueue; tickets: TicketWorker; keys: Keys } {
      const keys = new Keys(prefix);
      const connection = bull as unknown as ConnectionOptions;
      const queue = new TicketQueue(connection, keys, { attempts: 5, backoffMs: 200 }, 1);
      const tickets = new TicketWorker({ connection, queue, keys, scripts: new Scripts(redis, keys), sink, workerId: 'w', partitions: 271, concurrency: 2, logger: silentLogger(), lockDurationMs, watch: `${prefix}-k:*` });
      opened.push(queue, tickets);
      tickets.start();
      return { queue, tickets, keys };
    }

    it('fetches a failed job again once its backoff is over', async () => {
      const prefix = randomPrefix();
      const written: Ticket[] = [];
      let failures = 1;
      const { queue, tickets } = ticketWorker(prefix, {
        indexes: false,
        write: async (t) => {
          if (failures-- > 0) throw new Error('sink down');
          written.push(...t);
        },
      });
      await queue.enqueue([{ key: Buffer.from(`${prefix}-k:a`), event: 'set', at: Date.now(), seq: '1-0' }], 10);
      await waitFor(() => written.length === 1, { timeoutMs: 10000, what: 'the retried job\'s ticket' });
      expect(tickets.made).to.equal(1);
    });

    it('looks at every lease renewal for a while after a member came or went', async () => {
      const prefix = randomPrefix();
      const written: Ticket[] = [];
      const { queue, tickets } = ticketWorker(prefix, { indexes: false, write: async (t) => void written.push(...t) });
      const shard = queue.queues[0]!;
      // Jobs a departed member added and never ran: no event announces them.
      const unannounced = (name: string) => shard.add('tickets', { items: encodeItems([{ key: Buffer.from(`${prefix}-k:${name}`), event: 'set', at: Date.now(), seq: '1-0' }]) }, { attempts: 5 });
      await unannounced('a');
      tickets.membersChanged();
      await waitFor(() => written.length === 1, { timeoutMs: 10000, what: 'the look as the member left' });
      await waitFor(async () => Object.values(await shard.getJobCounts('wait', 'active')).every((n) => n === 0), { timeoutMs: 10000, what: 'the first job done' });
      await unannounced('b');
      tickets.tick();
      await waitFor(() => written.length === 2, { timeoutMs: 10000, what: 'the look at the next renewal' });
    });

    it('fetches a job BullMQ found stalled (its worker stopped holding its lock)', async () => {
      const prefix = randomPrefix();
      const written: Ticket[] = [];
      const { queue } = ticketWorker(prefix, { indexes: false, write: async (t) => void written.push(...t) }, 1000);
      // Another worker, elsewhere, fetches the job and dies with it (its lock never extended).
      const dead = new Worker(TICKET_QUEUE, null, { connection: bull as unknown as ConnectionOptions, prefix: new Keys(prefix).queuePrefix(queueShardTags(1)[0]!), autorun: false, lockDuration: 1000 });
      opened.push(dead);
      // Added past the queue's 'added' event: the ticket worker is not told of it.
      await queue.queues[0]!.add('tickets', { items: encodeItems([{ key: Buffer.from(`${prefix}-k:b`), event: 'set', at: Date.now(), seq: '1-0' }]) }, { attempts: 5 });
      expect(await dead.getNextJob('dead-token', { block: false })).to.not.equal(undefined);
      await waitFor(() => written.length === 1, { timeoutMs: 15000, what: 'the stalled job\'s ticket' });
    });
  });

  it('closes without waiting on a Redis that stopped answering (SIGSTOP): a fetch in flight is left to the stalled check, the idle connections dropped', async () => {
    const server = await startLocalRedis({ mode: 'standalone' });
    const node = server.nodes[0]!;
    // No command timeout: what waits on the frozen server waits as long as it stays frozen.
    const bull = connect(await detectTarget(loadConfig({ TG_REDIS_URL: server.url }, []).redis), { maxRetriesPerRequest: null });
    const keys = new Keys(randomPrefix());
    const connection = bull as unknown as ConnectionOptions;
    const queue = new TicketQueue(connection, keys, { attempts: 5, backoffMs: 200 }, 1);
    const tickets = new TicketWorker({ connection, queue, keys, scripts: new Scripts(bull, keys), sink: { indexes: false, write: async () => undefined }, workerId: 'w', partitions: 16, concurrency: 2, logger: silentLogger(), lockDurationMs: 5000, watch: `${keys.prefix}-k:*` });
    let frozen = false;
    try {
      tickets.start();
      await Promise.all([queue.queues[0]!.waitUntilReady(), tickets.workers[0]!.waitUntilReady()]);
      process.kill(node.pid!, 'SIGSTOP');
      frozen = true;
      // A look for jobs: its fetch is sent to the frozen server and never answered.
      tickets.membersChanged();
      expect(await outcomeWithin(tickets.close().then(() => 'closed'), 5000)).to.equal('closed');
    } finally {
      if (frozen) process.kill(node.pid!, 'SIGCONT');
      await queue.close();
      bull.disconnect();
      await server.stop();
    }
  });

  it('adds jobs once Redis answers again, to a queue opened while it did not (SIGSTOP past the command timeout)', async () => {
    const server = await startLocalRedis({ mode: 'standalone' });
    const node = server.nodes[0]!;
    const bull = connect(await detectTarget(loadConfig({ TG_REDIS_URL: server.url }, []).redis), { maxRetriesPerRequest: null, commandTimeoutMs: 300 });
    await bull.ping();
    const keys = new Keys(randomPrefix());
    let frozen = false;
    let queue: TicketQueue | undefined;
    try {
      process.kill(node.pid!, 'SIGSTOP');
      frozen = true;
      queue = new TicketQueue(bull as unknown as ConnectionOptions, keys, { attempts: 5, backoffMs: 200 }, 1);
      // What the queue asks Redis as it opens has failed, or needed nothing, by the time this settles.
      await queue.queues[0]!.waitUntilReady().catch(() => undefined);
      process.kill(node.pid!, 'SIGCONT');
      frozen = false;
      const item = { key: Buffer.from(`${keys.prefix}-k:a`), event: 'set', at: Date.now(), seq: '1-0' };
      expect(await outcomeWithin(queue.enqueue([item], 10).then(() => 'added'), 5000)).to.equal('added');
    } finally {
      if (frozen) process.kill(node.pid!, 'SIGCONT');
      await queue?.close();
      bull.disconnect();
      await server.stop();
    }
  });
});

describe('ticket queue (a master frozen, its replica taking over)', function () {
  this.timeout(60000);

  it('adds a job sent to the frozen master through the replica that took over, not after the command timeout', async () => {
    const keys = new Keys(randomPrefix());
    await withFrozenMaster(keySlot(keys.queuePrefix(queueShardTags(1)[0])), 60000, async ({ redis, freeze, promote }) => {
      const queue = new TicketQueue(redis as unknown as ConnectionOptions, keys, { attempts: 1, backoffMs: 0 }, 1);
      try {
        await queue.queues[0]!.getJobCounts('wait');
        freeze();
        const added = outcomeWithin(queue.enqueue([{ key: Buffer.from('k'), event: 'set', seq: '1-0', at: 1 }], 100).then(() => 'added'), 20000);
        await promote();
        // The first add fails once the replica serves the queue's slot; the caller (a reader's round) enqueues again.
        expect(String(await added)).to.match(/^Error: no answer from \S+ within \d+ ms, and slot \d+ is served by \S+ now$/);
        await queue.enqueue([{ key: Buffer.from('k'), event: 'set', seq: '1-0', at: 1 }], 100);
        expect(await queue.queues[0]!.getWaitingCount()).to.equal(1);
      } finally {
        await outcomeWithin(queue.close(), 5000);
      }
    });
  });
});
