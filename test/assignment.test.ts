import { expect } from 'chai';
import { assign, diff, slotsToHear } from '../lib/assignment.js';
import { slotRangeOfPartition } from '../lib/slots.js';

/** Deterministic pseudo-random numbers, so failures reproduce. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

const ids = (n: number, from = 0) => Array.from({ length: n }, (_, i) => `w${String(i + from).padStart(2, '0')}`);

function counts(target: readonly string[]): number[] {
  const c = new Map<string, number>();
  for (const m of target) c.set(m, (c.get(m) ?? 0) + 1);
  return [...c.values()].sort((a, b) => a - b);
}

function randomOwners(P: number, pool: string[], rand: () => number): (string | null)[] {
  return Array.from({ length: P }, () => (rand() < 0.2 ? null : pool[Math.floor(rand() * pool.length)]!));
}

describe('assignment', () => {
  it('splits 271 partitions over 3 workers as 90/90/91', () => {
    const target = assign({ partitions: 271, members: ids(3), owners: new Array(271).fill(null) });
    expect(counts(target)).to.deep.equal([90, 90, 91]);
  });

  it('is balanced, a fixed point, and independent of member order for N = 1..20', () => {
    const rand = rng(7);
    for (const P of [1, 7, 271, 1000]) {
      for (let N = 1; N <= 20; N++) {
        const members = ids(N);
        // Owners include dead workers, which count as free.
        const owners = randomOwners(P, [...members, 'dead1', 'dead2'], rand);
        const target = assign({ partitions: P, members, owners });
        const c = counts(target);
        expect(c[c.length - 1]! - c[0]!, `P=${P} N=${N}`).to.be.at.most(1);
        if (P >= N) expect(c, `P=${P} N=${N}`).to.have.length(N);
        expect(target.every((m) => members.includes(m))).to.equal(true);
        expect(assign({ partitions: P, members, owners: target })).to.deep.equal(target);
        expect(assign({ partitions: P, members: [...members].reverse().concat(members[0]!), owners })).to.deep.equal(target);
      }
    }
  });

  it('moves only the minimum on a join: about P/(N+1)', () => {
    for (let N = 1; N <= 12; N++) {
      const members = ids(N);
      const before = assign({ partitions: 271, members, owners: new Array(271).fill(null) });
      const joined = [...members, 'zz-new'];
      const after = assign({ partitions: 271, members: joined, owners: before });
      const moves = diff(before, after);
      const newQuota = Math.floor(271 / (N + 1));
      expect(moves.every((m) => m.to === 'zz-new'), `N=${N}`).to.equal(true);
      expect(moves.length, `N=${N}`).to.be.within(newQuota, newQuota + 1);
    }
  });

  it("moves only the leaver's partitions on a leave", () => {
    for (let N = 2; N <= 12; N++) {
      const members = ids(N);
      const before = assign({ partitions: 271, members, owners: new Array(271).fill(null) });
      const leaver = members[Math.floor(N / 2)]!;
      const after = assign({ partitions: 271, members: members.filter((m) => m !== leaver), owners: before });
      const moves = diff(before, after);
      expect(moves.every((m) => m.from === leaver), `N=${N}`).to.equal(true);
      expect(moves.length).to.equal(before.filter((m) => m === leaver).length);
      expect(counts(after).at(-1)! - counts(after)[0]!).to.be.at.most(1);
    }
  });

  it('rejects no members and a wrong owner count', () => {
    expect(() => assign({ partitions: 3, members: [], owners: [null, null, null] })).to.throw(/at least one/);
    expect(() => assign({ partitions: 3, members: ['a'], owners: [null] })).to.throw(/3 partitions/);
  });

  it('deals free partitions in contiguous runs, so each member listens on few masters', () => {
    const target = assign({ partitions: 271, members: ids(3), owners: new Array(271).fill(null) });
    const runs = (m: string) => target.filter((t, p) => t === m && target[p - 1] !== m).length;
    for (const m of ids(3)) expect(runs(m)).to.equal(1);
  });

  it('hears the slots of the partitions held and assigned, only those held when leaving', () => {
    const target = ['a', 'b', 'a', 'b'];
    const held = new Map([[1, true]]);
    const slots = (leaving: boolean) => slotsToHear(target, 'a', held, leaving, 4);
    const covered = (map: Uint8Array, p: number) => {
      const { first, last } = slotRangeOfPartition(p, 4);
      return map.subarray(first, last + 1).every((v) => v === 1);
    };
    expect([0, 1, 2, 3].map((p) => covered(slots(false), p))).to.deep.equal([true, true, true, false]);
    expect([0, 1, 2, 3].map((p) => covered(slots(true), p))).to.deep.equal([false, true, false, false]);
  });
});
