import { expect } from 'chai';
import { BalanceLoop } from '../lib/balance-loop.js';

/** A loop whose looks only count, with a period the test sets (none at first). */
function countingLoop(): { loop: BalanceLoop; looks: () => number; setPeriod: (ms: number | null) => void } {
  let looks = 0;
  let period: number | null = null;
  const loop = new BalanceLoop(
    async () => void looks++,
    () => period,
    () => undefined,
  );
  return { loop, looks: () => looks, setPeriod: (ms) => (period = ms) };
}

describe('balance loop', () => {
  it('runs one look at a time: a look asked for during another is that one', async () => {
    let looks = 0;
    let release!: () => void;
    const loop = new BalanceLoop(
      () => {
        looks++;
        return new Promise<void>((r) => (release = r));
      },
      () => 60_000,
      () => undefined,
    );
    const first = loop.now();
    const second = loop.now();
    expect(second).to.equal(first);
    expect(looks).to.equal(1);
    release();
    await first;
    // Once it ended, asking again makes a new look.
    const again = loop.now();
    expect(again).to.not.equal(first);
    release();
    await again;
    expect(looks).to.equal(2);
  });

  it('looks again a period after each look, hands failures to onError, and stops for good', async () => {
    const errors: unknown[] = [];
    let looks = 0;
    const loop = new BalanceLoop(
      async () => {
        looks++;
        if (looks === 2) throw new Error('redis away');
      },
      () => 5,
      (err) => errors.push(err),
    );
    loop.start();
    for (const deadline = Date.now() + 5000; looks < 3; ) {
      if (Date.now() > deadline) throw new Error(`only ${looks} looks within 5 s`);
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(errors.map(String)).to.deep.equal(['Error: redis away']);
    await loop.stop();
    const after = looks;
    await new Promise((r) => setTimeout(r, 50));
    expect(looks).to.equal(after);
  });

  it('with no period looks only when asked, and looks on its own again once a period is given', async () => {
    const { loop, looks, setPeriod } = countingLoop();
    loop.start();
    await new Promise((r) => setTimeout(r, 50));
    expect(looks()).to.equal(0);
    await loop.now();
    await new Promise((r) => setTimeout(r, 50));
    expect(looks()).to.equal(1);
    setPeriod(5);
    await loop.now();
    for (const deadline = Date.now() + 5000; looks() < 4; ) {
      if (Date.now() > deadline) throw new Error(`only ${looks()} looks within 5 s`);
      await new Promise((r) => setTimeout(r, 5));
    }
    await loop.stop();
  });

  it('looks on a tick only once started, only while it has no period, and not once stopped', async () => {
    const { loop, looks, setPeriod } = countingLoop();
    loop.tick();
    expect(looks()).to.equal(0);
    loop.start();
    loop.tick();
    // The look starts at once (the look function runs up to its first await).
    expect(looks()).to.equal(1);
    await loop.now();
    setPeriod(60_000);
    loop.tick();
    expect(looks()).to.equal(1);
    setPeriod(null);
    await loop.stop();
    loop.tick();
    expect(looks()).to.equal(1);
  });
});
