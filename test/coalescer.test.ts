import { expect } from 'chai';
import { Coalescer, coalesceEntries, compareStreamIds } from '../lib/coalescer.js';

const k = (s: string) => Buffer.from(s);

describe('coalescer', () => {
  it('folds repeated keys per partition, keeping the last event and the first time', () => {
    const c = new Coalescer();
    c.add(1, k('a'), 'set', 10);
    c.add(1, k('a'), 'del', 20);
    c.add(2, k('a'), 'set', 30);
    c.add(1, k('b'), 'hset', 40);
    expect(c.size).to.equal(3);
    const drained = c.drain();
    expect(c.size).to.equal(0);
    expect(drained.get(1)!.map((d) => [d.key.toString(), d.event, d.at])).to.deep.equal([
      ['a', 'del', 10],
      ['b', 'hset', 40],
    ]);
    expect(drained.get(2)).to.have.length(1);
  });

  it('keeps binary keys apart byte for byte', () => {
    const c = new Coalescer();
    c.add(0, Buffer.from([0xff, 0x00]), 'set', 1);
    c.add(0, Buffer.from([0xfe, 0x00]), 'set', 1);
    c.add(0, Buffer.from([0xff, 0x00]), 'set', 1);
    expect(c.drain().get(0)!.map((d) => d.key.toString('hex'))).to.deep.equal(['ff00', 'fe00']);
  });

  it('does not pin the buffer it was given', () => {
    const c = new Coalescer();
    const big = Buffer.from('xxkeyxx');
    c.add(0, big.subarray(2, 5), 'set', 1);
    big.write('ZZZ', 2);
    expect(c.drain().get(0)![0]!.key.toString()).to.equal('key');
  });

  it('restores a failed batch without losing a newer event or the older time', () => {
    const c = new Coalescer();
    c.add(0, k('a'), 'set', 10);
    const batch = c.drain().get(0)!;
    c.add(0, k('a'), 'del', 50);
    c.restore(0, batch);
    const [a] = c.drain().get(0)!;
    expect(a).to.deep.include({ event: 'del', at: 10 });
  });

  it('compares stream ids numerically', () => {
    expect(compareStreamIds('9-0', '10-0')).to.equal(-1);
    expect(compareStreamIds('10-2', '10-10')).to.equal(-1);
    expect(compareStreamIds('10-2', '10-2')).to.equal(0);
    expect(compareStreamIds('1700000000000-5', '1700000000000-4')).to.equal(1);
  });

  it('folds stream entries to one item per key with the greatest id as seq', () => {
    const items = coalesceEntries([
      { id: '5-0', key: k('a'), event: 'set', at: 5 },
      { id: '5-1', key: k('b'), event: 'set', at: 6 },
      { id: '7-0', key: k('a'), event: 'del', at: 7 },
      // a late append of an earlier change by a previous owner
      { id: '8-0', key: k('b'), event: 'set', at: 1 },
    ]);
    expect(items.map((i) => [i.key.toString(), i.event, i.seq, i.at])).to.deep.equal([
      ['a', 'del', '7-0', 5],
      ['b', 'set', '8-0', 1],
    ]);
  });
});
