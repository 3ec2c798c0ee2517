/**
 * Ticket jobs are consumed by the workers that hold the partitions of their shard, not by every
 * worker: each consumes exactly the queue shards of the partitions it holds, and every key still
 * gets its ticket.
 */
import { expect } from 'chai';
import { keyId } from '../lib/coalescer.js';
import { readLeases } from '../lib/lease-keeper.js';
import { Keys } from '../lib/keys.js';
import type { RedisClient } from '../lib/redis.js';
import { shardsOfSlots } from '../lib/shards.js';
import { slotRangeOfPartition } from '../lib/slots.js';
import type { GeneratorWorker } from '../lib/worker.js';
import { clusterUrl, randomPrefix, waitFor } from './helpers/redis.js';
import { client, startWorker, testConfig, waitForFinal, type Expected } from './helpers/worker.js';

describe('queue shards consumed by the holders of their partitions', function () {
  this.timeout(60000);
  let redis: RedisClient;
  const workers: GeneratorWorker[] = [];
  before(async () => {
    redis = await client(clusterUrl());
  });
  after(async () => {
    await Promise.all(workers.map((w) => w.stop()));
    await redis.quit();
  });

  it('gives each of 3 workers the shards of its partitions only, and tickets every key', async () => {
    const prefix = randomPrefix();
    for (let i = 0; i < 3; i++) workers.push(await startWorker(testConfig(clusterUrl(), prefix, { TG_WATCH: `${prefix}-k:*` })));
    const keys = new Keys(prefix);
    await waitFor(async () => (await readLeases(redis, keys, 271)).every((l) => l.owner !== null) && workers.every((w) => w.ownedPartitions().length >= 90), { timeoutMs: 30000, what: 'every partition owned, 90 or 91 each' });
    const shardsOf = (w: GeneratorWorker) => [...new Set(w.ownedPartitions().flatMap((p) => shardsOfSlots(slotRangeOfPartition(p, 271).first, slotRangeOfPartition(p, 271).last, 3)))].sort();
    for (const w of workers) expect(w.consumedShards()).to.deep.equal(shardsOf(w));
    // Contiguous runs of partitions: not every worker needs every shard.
    expect(workers.reduce((n, w) => n + w.consumedShards().length, 0)).to.be.below(9);

    const expected: Expected = new Map();
    for (let i = 0; i < 600; i++) {
      await redis.set(`${prefix}-k:${i}`, `v${i}`);
      expected.set(keyId(Buffer.from(`${prefix}-k:${i}`)), `v${i}`);
    }
    await waitForFinal(redis, prefix, expected);
  });
});
