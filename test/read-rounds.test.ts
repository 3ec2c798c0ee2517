/** When the owner reads its dirty streams: batches fill up to a size, never past a wait. Pure. */
import { expect } from 'chai';
import { roundDelay, type RoundTiming } from '../lib/dirty-reader.js';

const timing: RoundTiming = { intervalMs: 15, batchKeys: 64, maxWaitMs: 100 };
const at = (over: Partial<Parameters<typeof roundDelay>[1]>) => roundDelay(timing, { now: 10_000, lastRound: 9_000, waiting: 1, waitingSince: 10_000, hurry: false, ...over });

describe('reading rounds', () => {
  it('holds a lone entry until the batch would fill or its wait is over', () => {
    expect(at({})).to.equal(100);
    expect(at({ waitingSince: 9_960 })).to.equal(60);
    expect(at({ waitingSince: 9_800 })).to.equal(0);
  });

  it('starts at once when a batch is full, but never sooner than the interval after the last round', () => {
    expect(at({ waiting: 64 })).to.equal(0);
    expect(at({ waiting: 500, lastRound: 9_990 })).to.equal(5);
  });

  it('reads the rest of a full batch at the interval, and everything at once on a stop', () => {
    expect(at({ waitingSince: 0, lastRound: 9_995 })).to.equal(10);
    expect(at({ hurry: true })).to.equal(0);
    expect(at({ hurry: true, lastRound: 9_990 })).to.equal(5);
  });

  it('never waits less than the interval even when the wait is shorter', () => {
    expect(roundDelay({ intervalMs: 50, batchKeys: 64, maxWaitMs: 20 }, { now: 10_000, lastRound: 9_990, waiting: 1, waitingSince: 9_999, hurry: false })).to.equal(40);
  });
});
