/** The subscriber side of the dirty streams, on a real Redis: when gathered keys go, around paced reads. */
import { expect } from 'chai';
import type { BatchTiming } from '../lib/batch-timing.js';
import { DirtyWriter } from '../lib/dirty-writer.js';
import { Keys } from '../lib/keys.js';
import { silentLogger } from '../lib/logger.js';
import { startLocalRedis } from '../lib/local-redis.js';
import { nodeOfSlot, type RedisClient } from '../lib/redis.js';
import { keySlot } from '../lib/slots.js';
import { Scripts } from '../lib/scripts.js';
import { withFrozenMaster, type FrozenMaster } from './helpers/frozen-master.js';
import { outcomeWithin, randomPrefix, standaloneUrl, waitFor } from './helpers/redis.js';
import { client } from './helpers/worker.js';

describe('dirty writer (standalone)', () => {
  let redis: RedisClient;
  before(async () => {
    redis = await client(standaloneUrl());
  });
  after(() => redis.quit());

  /** A writer of partition 7's keys; `appends` gets the keys of each append, in order. */
  function writer(timing: BatchTiming, nextRead: () => number = () => 0): { w: DirtyWriter; appends: string[][] } {
    const keys = new Keys(randomPrefix());
    const appends: string[][] = [];
    const w = new DirtyWriter({
      client: redis,
      scripts: new Scripts(redis, keys),
      keys,
      timing,
      logger: silentLogger(),
      onAppended: (_partition, entries) => appends.push(entries.map((e) => e.key.toString())),
      maxPending: 1000,
      holds: () => true,
      onShed: () => undefined,
      nextRead,
    });
    return { w, appends };
  }

  it('appends what a paced read brought right after it, even while an append is in flight, not at the end of the wait', async () => {
    // A ten-second wait: only the read can send these keys within the test's deadline.
    const { w, appends } = writer({ intervalMs: 0, batchKeys: 1000, maxWaitMs: 10_000 });
    w.add(7, Buffer.from('a'), 'set');
    w.afterPausedRead(Date.now() + 10_000);
    await waitFor(() => appends.length === 1, { timeoutMs: 5000, intervalMs: 10, what: 'the append after the read' });

    w.add(7, Buffer.from('b'), 'set');
    w.flushNow();
    // b's append is in flight: c goes as soon as it is back.
    w.add(7, Buffer.from('c'), 'set');
    w.afterPausedRead(Date.now() + 10_000);
    await waitFor(() => appends.length === 3, { timeoutMs: 5000, intervalMs: 10, what: () => `the append after the one in flight (${JSON.stringify(appends)})` });
    expect(appends).to.deep.equal([['a'], ['b'], ['c']]);

    // A read that does not send the batch (due in ten seconds, next read in 20 ms) leaves it waiting.
    w.add(7, Buffer.from('d'), 'set');
    w.afterPausedRead(Date.now() + 20);
    expect(w.backlog).to.equal(1);
    await w.drain();
    expect(appends).to.have.length(4);
  });

  it('holds a batch whose time came while a paced read was due, and sends it with what that read brought', async () => {
    let readAt = 0;
    const { w, appends } = writer({ intervalMs: 0, batchKeys: 1000, maxWaitMs: 30 }, () => readAt);
    const before = Date.now();
    w.add(7, Buffer.from('a'), 'set');
    // A read due no later than the batch, whose timer fires after the batch's (as when one was armed
    // late in a busy turn of the event loop): the read, not the batch's timer, sends a.
    readAt = before + 29;
    await new Promise<void>((resolve) =>
      setTimeout(() => {
        readAt = 0;
        w.add(7, Buffer.from('b'), 'set');
        setImmediate(() => {
          w.afterPausedRead(0);
          resolve();
        });
      }, 60),
    );
    await waitFor(() => appends.length > 0, { timeoutMs: 5000, intervalMs: 10, what: 'the append after the read' });
    await w.drain();
    expect(appends).to.deep.equal([['a', 'b']]);
  });
});

describe('dirty writer (Redis failing)', function () {
  this.timeout(60000);

  function writerOn(redis: RedisClient, keys: Keys): DirtyWriter {
    return new DirtyWriter({ client: redis, scripts: new Scripts(redis, keys), keys, timing: { intervalMs: 0, batchKeys: 1, maxWaitMs: 0 }, logger: silentLogger(), onAppended: () => undefined, maxPending: 1000, holds: () => true, onShed: () => undefined });
  }

  /** `count` partitions whose dirty streams the master frozen in `body` serves, the first partition 0. */
  async function onFrozenMaster(commandTimeoutMs: number, count: number, body: (frozen: FrozenMaster, keys: Keys, partitions: number[]) => Promise<void>): Promise<void> {
    const keys = new Keys(randomPrefix());
    await withFrozenMaster(keySlot(keys.dirty(0)), commandTimeoutMs, async (frozen) => {
      await frozen.redis.exists(keys.dirty(0));
      const node = nodeOfSlot(frozen.redis, keySlot(keys.dirty(0)));
      const partitions = [...Array(271).keys()].filter((p) => nodeOfSlot(frozen.redis, keySlot(keys.dirty(p))) === node).slice(0, count);
      await body(frozen, keys, partitions);
    });
  }

  it('drains to the replica that took over from a frozen master: a timed-out append reads the slot map again', async () => {
    await onFrozenMaster(1000, 1, async ({ redis, freeze, promote }, keys, [partition]) => {
      freeze();
      await promote();
      const w = writerOn(redis, keys);
      w.add(partition!, Buffer.from('k'), 'set');
      expect(await outcomeWithin(w.drain().then(() => 'drained'), 15000)).to.equal('drained');
    });
  });

  for (const streams of [1, 2]) {
    it(`sends an append left unanswered by a master that froze to the replica that took over, not after its command timeout (${streams} stream${streams > 1 ? 's: one call a node' : ''})`, async () => {
      await onFrozenMaster(60000, streams, async ({ redis, freeze, promote }, keys, partitions) => {
        freeze();
        const w = writerOn(redis, keys);
        for (const p of partitions) w.add(p, Buffer.from(`k${p}`), 'set');
        const drained = w.drain().then(() => 'drained');
        await promote();
        expect(await outcomeWithin(drained, 20000)).to.equal('drained');
        for (const p of partitions) expect(await redis.xlen(keys.dirty(p))).to.equal(1);
      });
    });
  }

  it('waits between the appends of a drain that Redis refuses at once (out of memory)', async () => {
    const server = await startLocalRedis({ mode: 'standalone' });
    const redis = await client(server.url);
    try {
      await redis.config('SET', 'maxmemory', '1');
      const w = writerOn(redis, new Keys(randomPrefix()));
      w.add(7, Buffer.from('k'), 'set');
      const startedAt = Date.now();
      const drained = w.drain();
      await waitFor(() => w.failedAppends >= 5, { timeoutMs: 10000, intervalMs: 5, what: 'five refused appends' });
      // With the backoff the fifth attempt comes 50 + 100 + 200 + 400 ms after the first at the earliest.
      expect(Date.now() - startedAt).to.be.at.least(700);
      await redis.config('SET', 'maxmemory', '0');
      expect(await outcomeWithin(drained.then(() => 'drained'), 5000)).to.equal('drained');
    } finally {
      await redis.quit();
      await server.stop();
    }
  });
});
