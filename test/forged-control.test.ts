/** Forged, stale and malformed disconnect messages change nothing: the lease in Redis decides. */
import { expect } from 'chai';
import { encodeDisconnect, encodeGap } from '../lib/control.js';
import { keyId } from '../lib/coalescer.js';
import { Keys } from '../lib/keys.js';
import { startLocalRedis } from '../lib/local-redis.js';
import type { RedisClient } from '../lib/redis.js';
import { GeneratorWorker } from '../lib/worker.js';
import { killIfRunning, startWorkers, stopWorkers, type WorkerProcess } from './helpers/process.js';
import { clusterUrl, randomPrefix, waitFor } from './helpers/redis.js';
import { captureLogger } from './helpers/logs.js';
import { client, testConfig, waitForFinal } from './helpers/worker.js';
import { partitionOfKey } from '../lib/slots.js';
import type { ConnectionOptions } from 'bullmq';
import { queueShardTags } from '../lib/shards.js';
import { encodeItems, openShards } from '../lib/ticket-queue.js';
import { latestTickets } from '../lib/ticket-reader.js';

describe('control channel', function () {
  this.timeout(60000);
  let redis: RedisClient;
  let worker: GeneratorWorker;

  before(async () => {
    redis = await client(clusterUrl());
  });
  after(async () => {
    await worker?.stop();
    await redis.quit();
  });

  it('ignores forged and malformed disconnect messages and keeps forwarding', async () => {
    const prefix = randomPrefix();
    const { logger, records } = captureLogger();
    worker = new GeneratorWorker(testConfig(clusterUrl(), prefix, { TG_WATCH: `${prefix}-k:*` }), { logger });
    await worker.start();
    await waitFor(() => worker.ownedPartitions().length === 271, { timeoutMs: 10000, what: 'all partitions owned' });
    const key = `${prefix}-k:target`;
    const p = partitionOfKey(key, 271);
    const lease = worker.keys.lease(p);
    const tokenBefore = await redis.hget(lease, 'token');
    const channel = worker.keys.controlChannel(worker.id);
    await redis.publish(channel, encodeDisconnect({ partition: p, token: Number(tokenBefore) + 1, owner: 'forger' }));
    await redis.publish(channel, encodeDisconnect({ partition: p, token: 1, owner: 'stale' }));
    await redis.publish(channel, '{"type":"disconnect","partition":"all"}');
    await redis.publish(channel, Buffer.from([0xff, 0x00, 0x7b]));
    await waitFor(
      () =>
        records.filter((r) => r.message === 'ignored a disconnect message the lease does not confirm').length === 2 &&
        records.filter((r) => r.message === 'ignored a malformed control message').length === 2,
      { timeoutMs: 10000, what: 'the worker to handle the four messages' },
    );
    expect(worker.ownedPartitions()).to.include(p);
    expect(await redis.hget(lease, 'token')).to.equal(tokenBefore);
    await redis.set(key, 'still forwarded');
    await waitForFinal(redis, prefix, new Map([[keyId(Buffer.from(key)), 'still forwarded']]));
  });

  it('makes no ticket for a key a forged job names outside the watch glob', async () => {
    const prefix = randomPrefix();
    const { logger, records } = captureLogger();
    await worker?.stop();
    worker = new GeneratorWorker(testConfig(clusterUrl(), prefix, { TG_WATCH: `${prefix}-k:*` }), { logger });
    await worker.start();
    const secret = `${prefix}-secret`;
    const own = `${prefix}:own`;
    const watched = `${prefix}-k:forged`;
    await Promise.all([redis.set(secret, 'not for the sink'), redis.set(own, 'ours'), redis.set(watched, 'fine')]);
    const items = [secret, own, watched].map((k) => ({ key: Buffer.from(k), event: 'set', seq: `${Date.now()}-0`, at: Date.now() }));
    // Into every shard, as a forger who does not know which one is read.
    const queues = openShards(redis as unknown as ConnectionOptions, worker.keys, queueShardTags(3));
    await Promise.all(queues.map((q) => q.add('tickets', { items: encodeItems(items) }, { removeOnComplete: true })));
    await Promise.all(queues.map((q) => q.close()));
    await waitForFinal(redis, prefix, new Map([[keyId(Buffer.from(watched)), 'fine']]));
    await waitFor(() => records.filter((r) => r.message === 'ticket job names keys that are not watched; skipped').length === 3, { timeoutMs: 10000, what: 'the three forged jobs' });
    const { latest } = await latestTickets(redis, worker.keys);
    expect(latest.has(keyId(Buffer.from(secret)))).to.equal(false);
    expect(latest.has(keyId(Buffer.from(own)))).to.equal(false);
  });

  it('believes a gap notice only when the lease in Redis agrees', async () => {
    const prefix = randomPrefix();
    await worker?.stop();
    const config = testConfig(clusterUrl(), prefix, { TG_WATCH: `${prefix}-k:*` });
    worker = new GeneratorWorker(config, { logger: captureLogger().logger });
    const { logger, records } = captureLogger();
    const other = new GeneratorWorker(config, { logger });
    try {
      await Promise.all([worker.start(), other.start()]);
      // Settled (135/136): no partition moves while the notice is checked.
      const counts = () => [worker.ownedPartitions().length, other.ownedPartitions().length];
      await waitFor(() => counts()[0]! + counts()[1]! === 271 && Math.abs(counts()[0]! - counts()[1]!) <= 1, { timeoutMs: 20000, what: 'both workers holding their share' });
      // A partition the other worker does not hold, claimed by a worker that does not hold it either.
      const p = worker.ownedPartitions()[0]!;
      await redis.publish(worker.keys.gapsChannel(), encodeGap({ partition: p, from: Date.now() - 1000, to: Date.now(), by: 'forger' }));
      await redis.publish(worker.keys.gapsChannel(), 'not a notice');
      await waitFor(
        () => records.some((r) => r.message === 'ignored a malformed gap notice') && records.some((r) => r.message === 'ignored a gap notice the lease does not confirm' && r.partition === p),
        { timeoutMs: 10000, what: 'the other worker to refuse both notices' },
      );
    } finally {
      await other.stop();
    }
  });

  it('lives through a disconnect message it cannot check (Redis paused past the command timeout): the lease renewal decides', async () => {
    const server = await startLocalRedis({ mode: 'standalone' });
    const local = await client(server.url);
    let w: WorkerProcess | undefined;
    try {
      const prefix = randomPrefix();
      [w] = await startWorkers(server.url, prefix, 1, local, { TG_COMMAND_TIMEOUT_MS: '300' });
      const id = String(w!.logs.find((l) => l.message === 'started')!.worker);
      // One transaction: the message is out before the pause, the lease read it prompts is sent after.
      await local.multi().publish(new Keys(prefix).controlChannel(id), encodeDisconnect({ partition: 0, token: 999, owner: 'elsewhere' })).call('CLIENT', 'PAUSE', '1000', 'ALL').exec();
      await w!.waitForLog('disconnect message not checked; the lease renewal will tell', 10000);
      await stopWorkers([w!]);
    } finally {
      killIfRunning(w);
      await local.quit();
      await server.stop();
    }
  });
});

