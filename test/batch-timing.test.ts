/** When gathered keys are appended: a batch fills up to a size, never waits past a limit. Pure. */
import { expect } from 'chai';
import { batchDelay, flushAfterRead, readPause, type BatchState, type BatchTiming } from '../lib/batch-timing.js';

const timing: BatchTiming = { intervalMs: 5, batchKeys: 64, maxWaitMs: 100 };
const at = (over: Partial<BatchState>) => batchDelay(timing, { now: 10_000, lastBatch: 9_000, waiting: 1, waitingSince: 10_000, ...over });

describe('batch timing', () => {
  it('holds a lone key until the batch fills or its wait is over', () => {
    expect(at({})).to.equal(100);
    expect(at({ waitingSince: 9_960, waiting: 63 })).to.equal(60);
    expect(at({ waitingSince: 9_800 })).to.equal(0);
  });

  it('lets a full batch go at once, but never sooner than the interval after the last one', () => {
    expect(at({ waiting: 64 })).to.equal(0);
    expect(at({ waiting: 500, lastBatch: 9_998 })).to.equal(3);
  });

  it('never goes sooner than the interval, even when the wait is shorter', () => {
    expect(batchDelay({ intervalMs: 50, batchKeys: 64, maxWaitMs: 20 }, { now: 10_000, lastBatch: 9_990, waiting: 1, waitingSince: 9_999 })).to.equal(40);
  });

  it('with one key a batch, goes at the interval: the old fixed flush', () => {
    expect(batchDelay({ intervalMs: 5, batchKeys: 1, maxWaitMs: 5 }, { now: 10_000, lastBatch: 9_999, waiting: 1, waitingSince: 10_000 })).to.equal(4);
  });

  it('paces a listener by the time a batch takes to fill, within the shortest pause and the longest wait', () => {
    // 3,000 keys a second fill 64 in about 21 ms; 500 a second would take 128 ms, past 100.
    expect(readPause(timing, 20, 3)).to.be.closeTo(21.3, 0.1);
    expect(readPause(timing, 20, 0.5)).to.equal(100);
    expect(readPause(timing, 20, 0)).to.equal(100);
    expect(readPause(timing, 20, 10)).to.equal(20);
    expect(readPause(timing, 20, 0.8)).to.equal(80);
    // The shortest pause wins over the wait, and 0 never pauses whatever the rate.
    expect(readPause(timing, 150, 0.5)).to.equal(150);
    expect(readPause(timing, 0, 0.5)).to.equal(0);
  });

  it('ends a pause by the time the waiting keys are due, unless that is sooner than the shortest pause', () => {
    // A burst's first chunk waits 100 ms; its second, read 3 ms later, pauses until the batch is
    // due, so the read that ends the pause brings the rest of the burst into it.
    expect(readPause(timing, 20, 0.5, 97)).to.equal(97);
    expect(readPause(timing, 20, 3, 97)).to.be.closeTo(21.3, 0.1);
    expect(readPause(timing, 20, 0.5, 20)).to.equal(20);
    // Due sooner than the shortest pause (or now, a full batch): the batch goes on its own timer.
    expect(readPause(timing, 20, 0.5, 19)).to.equal(100);
    expect(readPause(timing, 20, 10, 0)).to.equal(20);
    expect(readPause(timing, 0, 0.5, 50)).to.equal(0);
  });

  it('sends a batch right after a paced read when it would go before the next read is half a pause old', () => {
    const read = (over: Partial<BatchState>, nextReadAt: number) => flushAfterRead(timing, { now: 10_000, lastBatch: 9_000, waiting: 10, waitingSince: 9_950, ...over }, nextReadAt);
    // A light share: the pause is the whole wait, and every read sends what it brought, whatever
    // the millisecond its keys and the next read's timer were taken at.
    expect(read({ waitingSince: 10_000 }, 10_100)).to.equal(true);
    expect(read({ waitingSince: 10_001 }, 10_100)).to.equal(true);
    expect(read({ waitingSince: 9_900 }, 10_100)).to.equal(true);
    // A busy worker reads every 20 ms: a batch started since is not due before the wait ends, and goes on size.
    expect(read({ waitingSince: 9_980 }, 10_020)).to.equal(false);
    expect(read({ waitingSince: 9_980, waiting: 64 }, 10_020)).to.equal(true);
    // Nothing waits: nothing to send.
    expect(read({ waiting: 0 }, 10_100)).to.equal(false);
  });
});
