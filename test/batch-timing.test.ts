/** When gathered keys are appended: a batch fills up to a size, never waits past a limit. Pure. */
import { expect } from 'chai';
import { batchDelay, readPause, type BatchState, type BatchTiming } from '../lib/batch-timing.js';

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

  it('paces a listener by the time a batch takes to fill, within the shortest pause and half the longest wait', () => {
    // 3,000 keys a second fill 64 in about 21 ms; 500 a second would take 128 ms, past 50.
    expect(readPause(timing, 20, 3)).to.be.closeTo(21.3, 0.1);
    expect(readPause(timing, 20, 0.5)).to.equal(50);
    expect(readPause(timing, 20, 0)).to.equal(50);
    expect(readPause(timing, 20, 10)).to.equal(20);
    // The shortest pause wins over half the wait, and 0 never pauses whatever the rate.
    expect(readPause(timing, 80, 0.5)).to.equal(80);
    expect(readPause(timing, 0, 0.5)).to.equal(0);
  });
});
