import { expect } from 'chai';
import { queueShardTags, shardOfSlot } from '../lib/queue-shards.js';
import { keySlot, SLOT_COUNT } from '../lib/slots.js';

describe('ticket queue shards', () => {
  it('puts each shard in the slot range whose keys it takes, the same for every worker', () => {
    for (const count of [1, 3, 4, 10, 64]) {
      const tags = queueShardTags(count);
      expect(new Set(tags).size).to.equal(count);
      tags.forEach((tag, i) => expect(shardOfSlot(keySlot(tag), count)).to.equal(i));
      expect(queueShardTags(count)).to.deep.equal(tags);
    }
  });

  it('gives every slot the shard whose range holds it, in order', () => {
    for (const count of [1, 3, 7, 256]) {
      let previous = 0;
      for (let slot = 0; slot < SLOT_COUNT; slot++) {
        const shard = shardOfSlot(slot, count);
        expect(shard - previous).to.be.oneOf([0, 1]);
        expect(Math.floor((shard * SLOT_COUNT) / count)).to.be.at.most(slot);
        previous = shard;
      }
      expect(previous).to.equal(count - 1);
    }
    expect(shardOfSlot(0, 3)).to.equal(0);
    expect(shardOfSlot(SLOT_COUNT - 1, 3)).to.equal(2);
    expect(shardOfSlot(5461, 3)).to.equal(1);
    expect(shardOfSlot(5460, 3)).to.equal(0);
    expect(shardOfSlot(12345, 1)).to.equal(0);
  });
});
