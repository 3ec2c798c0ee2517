/** Grouping helpers, without Redis. */
import { expect } from 'chai';
import { groupBy, perGroup, sizedGroups } from '../lib/group-by.js';

describe('grouping', () => {
  it('groups by key in the order each key was first met', () => {
    expect([...groupBy([1, 2, 3, 4, 5], (n) => n % 2)]).to.deep.equal([
      [1, [1, 3, 5]],
      [0, [2, 4]],
    ]);
  });

  it('groups in order by size, each group holding at most the bound, an item larger than it alone (partitions a reconciliation compares together)', () => {
    const held = [100, 300, 200, 900, 0, 0, 500];
    expect(sizedGroups([0, 1, 2, 3, 4, 5, 6], (i) => held[i]!, 500)).to.deep.equal([[0, 1], [2], [3], [4, 5, 6]]);
    expect(sizedGroups([], () => 1, 500)).to.deep.equal([]);
  });

  it('answers items in their order from one call a group, each call given its group and key', async () => {
    const calls: [string, number[]][] = [];
    const replies = await perGroup([1, 2, 3, 4, 5], (n) => (n % 2 === 0 ? 'even' : 'odd'), async (group, key) => {
      calls.push([key, group]);
      return group.map((n) => `${key}${n}`);
    });
    expect(replies).to.deep.equal(['odd1', 'even2', 'odd3', 'even4', 'odd5']);
    expect(calls).to.deep.equal([
      ['odd', [1, 3, 5]],
      ['even', [2, 4]],
    ]);
  });
});
