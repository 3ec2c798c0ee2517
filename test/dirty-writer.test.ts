/** The subscriber side of the dirty streams, on a real Redis: when gathered keys go, around paced reads. */
import { expect } from 'chai';
import type { BatchTiming } from '../lib/batch-timing.js';
import { DirtyWriter } from '../lib/dirty-writer.js';
import { Keys } from '../lib/keys.js';
import { silentLogger } from '../lib/logger.js';
import type { RedisClient } from '../lib/redis.js';
import { Scripts } from '../lib/scripts.js';
import { randomPrefix, standaloneUrl, waitFor } from './helpers/redis.js';
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
