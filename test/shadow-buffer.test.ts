/** The shadow buffer: what a worker heard of partitions it does not own, and only while kept. */
import { expect } from 'chai';
import { ShadowBuffer } from '../lib/shadow-buffer.js';

const key = (name: string) => Buffer.from(name);
const names = (taken: { key: Buffer }[] | null) => taken?.map((k) => k.key.toString()) ?? null;

describe('shadow buffer', () => {
  it('knows nothing until kept: a takeover then compares instead of replaying an empty window', () => {
    const shadow = new ShadowBuffer(10_000, 1000);
    shadow.add(7, key('a'), 'set', 1000);
    expect(shadow.take(7, 0)).to.equal(null);
    expect(shadow.take(7, 5000)).to.equal(null);
    // A reset (a cut subscription) while not kept does not make it complete either.
    shadow.reset(2000);
    expect(shadow.take(7, 5000)).to.equal(null);
  });

  it('kept, replays what it heard since a time at or after the keeping began, coalesced per key', () => {
    const shadow = new ShadowBuffer(10_000, 1000);
    shadow.keep(1000);
    shadow.add(7, key('a'), 'set', 1100);
    shadow.add(7, key('b'), 'del', 1200);
    shadow.add(7, key('a'), 'hset', 1300);
    shadow.add(8, key('c'), 'set', 1300);
    expect(shadow.take(7, 999)).to.equal(null);
    shadow.add(7, key('a'), 'set', 1400);
    expect(names(shadow.take(7, 1000))).to.deep.equal(['a']);
    expect(names(shadow.take(8, 1250))).to.deep.equal(['c']);
    // A second keep() while kept changes nothing.
    shadow.add(9, key('d'), 'set', 1500);
    shadow.keep(1600);
    expect(names(shadow.take(9, 1000))).to.deep.equal(['d']);
  });

  it('let go, forgets everything and knows nothing until kept again', () => {
    const shadow = new ShadowBuffer(10_000, 1000);
    shadow.keep(1000);
    shadow.add(7, key('a'), 'set', 1100);
    shadow.letGo();
    expect(shadow.take(7, 1000)).to.equal(null);
    shadow.add(7, key('b'), 'set', 1200);
    expect(shadow.take(7, 1000)).to.equal(null);
    shadow.keep(3000);
    shadow.add(7, key('c'), 'set', 3100);
    shadow.add(8, key('d'), 'set', 3100);
    // A take forgets the partition, whatever it answers: one partition each.
    expect(shadow.take(7, 2000)).to.equal(null);
    expect(names(shadow.take(8, 3000))).to.deep.equal(['d']);
  });
});
