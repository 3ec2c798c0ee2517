/** Calls of one turn of the event loop merged into one run, without Redis. */
import { expect } from 'chai';
import { TickBatch } from '../lib/tick-batch.js';

describe('tick batch', () => {
  it('runs the calls of one turn once, each caller getting the replies to its own items', async () => {
    const runs: number[][] = [];
    const batch = new TickBatch<number, string>(async (items) => {
      runs.push(items);
      return items.map((n) => `r${n}`);
    });
    const [a, b, none] = await Promise.all([batch.call([1, 2]), batch.call([3]), batch.call([])]);
    expect(runs).to.deep.equal([[1, 2, 3]]);
    expect([a, b, none]).to.deep.equal([['r1', 'r2'], ['r3'], []]);
    // A later turn is a run of its own.
    expect(await batch.call([4])).to.deep.equal(['r4']);
    expect(runs).to.have.length(2);
  });

  it('fails every call of the turn when the run fails, and the next turn runs afresh', async () => {
    let fail = true;
    const batch = new TickBatch<number, number>(async (items) => {
      if (fail) throw new Error('refused');
      return items;
    });
    const settled = await Promise.allSettled([batch.call([1]), batch.call([2])]);
    expect(settled.map((s) => s.status)).to.deep.equal(['rejected', 'rejected']);
    fail = false;
    expect(await batch.call([5])).to.deep.equal([5]);
  });
});
