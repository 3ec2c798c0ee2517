/** The owner side of the dirty streams, on a real Redis: its own appends go to a job from memory. */
import { expect } from 'chai';
import type { ConnectionOptions } from 'bullmq';
import { DirtyReader } from '../lib/dirty-reader.js';
import { DIRTY_FIELDS } from '../lib/dirty-writer.js';
import { DIRTY_GROUP, Keys } from '../lib/keys.js';
import { silentLogger } from '../lib/logger.js';
import { nodeOfSlot, type RedisClient } from '../lib/redis.js';
import { Scripts } from '../lib/scripts.js';
import { queueShardTags } from '../lib/shards.js';
import { keySlot } from '../lib/slots.js';
import { jobCounts, TicketQueue } from '../lib/ticket-queue.js';
import { withFrozenMaster } from './helpers/frozen-master.js';
import { outcomeWithin, randomPrefix, standaloneUrl } from './helpers/redis.js';
import { client } from './helpers/worker.js';

/** Four dirty keys of partition p. */
const dirty = (p: number) => Array.from({ length: 4 }, (_, i) => ({ key: Buffer.from(`k${p}:${i}`), event: 'set', at: 1000 + i }));

describe('dirty reader (standalone)', () => {
  let redis: RedisClient;
  before(async () => {
    redis = await client(standaloneUrl());
  });
  after(() => redis.quit());

  /** A reader of its own: no second look within a test, so a stream is read once as it is owned (and when poked). */
  const reader = (keys: Keys, scripts: Scripts, queue: TicketQueue, consumer: string) =>
    new DirtyReader({ client: redis, scripts, keys, queue, consumer, batchSize: 200, roundIntervalMs: 0, lateAppendMs: 60_000, logger: silentLogger() });

  /** The dirty stream's consumer group: the id it delivered up to. */
  async function lastDelivered(stream: string): Promise<string> {
    const [group] = (await redis.xinfo('GROUPS', stream)) as string[][];
    return group![group!.indexOf('last-delivered-id') + 1]!;
  }

  it('enqueues what its owner appended from memory and deletes it without reading it back; what it lets go of is the next reader\'s', async () => {
    const keys = new Keys(randomPrefix());
    const scripts = new Scripts(redis, keys);
    const queue = new TicketQueue(redis as unknown as ConnectionOptions, keys, { attempts: 1, backoffMs: 0 }, 1);
    const owner = reader(keys, scripts, queue, 'owner');
    const next = reader(keys, scripts, queue, 'next');
    try {
      const partitions = [3, 4, 5];
      for (const p of partitions) await owner.own(p);
      await owner.settled();
      const ids = await scripts.appendDirty(DIRTY_FIELDS, partitions.map((p) => ({ partition: p, dirty: dirty(p) })));
      partitions.forEach((p, i) => owner.appended(p, dirty(p).map((d, j) => ({ ...d, id: ids[i]![j]! }))));
      await owner.settled();
      expect((await jobCounts(queue.queues, 'wait')).wait).to.equal(1);
      expect(owner.enqueued).to.equal(12);
      for (const p of partitions) {
        expect(await redis.xlen(keys.dirty(p))).to.equal(0);
        // Read back, the entries would have moved the group's delivery past them.
        expect(await lastDelivered(keys.dirty(p))).to.equal('0-0');
      }

      // Appended, then let go of before a round took them: left unread, for the next owner.
      const [later] = await scripts.appendDirty(DIRTY_FIELDS, [{ partition: 3, dirty: dirty(3) }]);
      owner.appended(3, dirty(3).map((d, j) => ({ ...d, id: later![j]! })));
      owner.disown(3);
      await owner.settled();
      expect(await redis.xlen(keys.dirty(3))).to.equal(4);
      await next.own(3);
      await next.settled();
      expect(next.enqueued).to.equal(4);
      expect(await lastDelivered(keys.dirty(3))).to.equal(later![3]);
      expect(await redis.xlen(keys.dirty(3))).to.equal(0);
    } finally {
      await Promise.all([owner.close(), next.close()]);
      await queue.close();
    }
  });

  it('claims what a previous owner read and never acknowledged, in every stream it takes on', async () => {
    const keys = new Keys(randomPrefix());
    const scripts = new Scripts(redis, keys);
    const queue = new TicketQueue(redis as unknown as ConnectionOptions, keys, { attempts: 1, backoffMs: 0 }, 1);
    const next = reader(keys, scripts, queue, 'next');
    try {
      const partitions = [6, 7, 8, 9];
      for (const p of partitions) await redis.xgroup('CREATE', keys.dirty(p), DIRTY_GROUP, '0', 'MKSTREAM');
      await scripts.appendDirty(DIRTY_FIELDS, partitions.map((p) => ({ partition: p, dirty: dirty(p) })));
      // The previous owner read them all, then stopped before its acknowledgement.
      for (const p of partitions) await redis.xreadgroup('GROUP', DIRTY_GROUP, 'gone', 'STREAMS', keys.dirty(p), '>');
      for (const p of partitions) await next.own(p);
      await next.settled();
      expect(next.enqueued).to.equal(16);
      for (const p of partitions) {
        expect(await redis.xlen(keys.dirty(p))).to.equal(0);
        expect(((await redis.xpending(keys.dirty(p), DIRTY_GROUP)) as [number])[0]).to.equal(0);
      }
    } finally {
      await next.close();
      await queue.close();
    }
  });
});

describe('dirty reader (a master frozen, its replica taking over)', function () {
  this.timeout(60000);

  it('reads, enqueues and acknowledges through the replica that took over, not after the command timeout', async () => {
    const keys = new Keys(randomPrefix());
    // The master of the queue's shard, and of the streams read: every step of a round meets the frozen one.
    const queueSlot = keySlot(keys.queuePrefix(queueShardTags(1)[0]));
    await withFrozenMaster(queueSlot, 60000, async ({ redis, replicated, freeze, promote }) => {
      await redis.exists(keys.queuePrefix());
      const node = nodeOfSlot(redis, queueSlot);
      const partitions = [...Array(271).keys()].filter((p) => nodeOfSlot(redis, keySlot(keys.dirty(p))) === node).slice(0, 2);
      const scripts = new Scripts(redis, keys);
      const queue = new TicketQueue(redis as unknown as ConnectionOptions, keys, { attempts: 1, backoffMs: 0 }, 1);
      const owner = new DirtyReader({ client: redis, scripts, keys, queue, consumer: 'owner', batchSize: 200, roundIntervalMs: 0, lateAppendMs: 60_000, logger: silentLogger() });
      try {
        for (const p of partitions) await owner.own(p);
        await owner.settled();
        // Another worker's appends, on the replica too before the freeze.
        await scripts.appendDirty(DIRTY_FIELDS, partitions.map((p) => ({ partition: p, dirty: dirty(p) })));
        await replicated();
        freeze();
        owner.sweep();
        await promote();
        expect(await outcomeWithin(owner.settled().then(() => owner.enqueued), 20000)).to.equal(8);
        expect((await jobCounts(queue.queues, 'wait')).wait).to.equal(1);
        for (const p of partitions) expect(await redis.xlen(keys.dirty(p))).to.equal(0);
      } finally {
        await outcomeWithin(owner.close(), 20000);
        await outcomeWithin(queue.close(), 5000);
      }
    });
  });
});
