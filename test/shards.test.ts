import { expect } from 'chai';
import { Keys } from '../lib/keys.js';
import { queueShardTags, shardOfSlot } from '../lib/shards.js';
import { keySlot, slotRangeOfPartition, SLOT_COUNT } from '../lib/slots.js';

describe('shards of the ticket queue and of the sink', () => {
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

  it('keeps the unsharded sink where it was: one stream <prefix>:tickets, its index in that slot', () => {
    const keys = new Keys('tg', { shards: 1, partitions: 271 });
    expect(keys.sinkStreams()).to.deep.equal(['tg:tickets']);
    expect(keys.index(200)).to.equal('tg:{tg:tickets}:index:200');
    expect(keySlot(keys.index(7))).to.equal(keySlot('tg:tickets'));
  });

  it('writes each partition\'s tickets and index to the sink shard of its first slot, in that shard\'s slot', () => {
    const keys = new Keys('tg', { shards: 3, partitions: 271 });
    const streams = keys.sinkStreams();
    expect(new Set(streams).size).to.equal(3);
    streams.forEach((s, i) => expect(shardOfSlot(keySlot(s), 3)).to.equal(i));
    const used = new Set<number>();
    for (let p = 0; p < 271; p++) {
      const shard = keys.sinkShardOf(p);
      used.add(shard);
      expect(shard).to.equal(shardOfSlot(slotRangeOfPartition(p, 271).first, 3));
      expect(keySlot(keys.index(p))).to.equal(keySlot(keys.tickets(shard)));
    }
    expect([...used].sort()).to.deep.equal([0, 1, 2]);
  });
});
