/**
 * Spreading what would be hot in one cluster slot (the ticket queue, the sink) over shards:
 * shard i of S takes the keys in the i-th of S equal ranges of the slot space, and its hash
 * tag is chosen to fall in that range too. With masters serving contiguous slot ranges (the
 * usual layout), a shard lives on the master of its keys and of their dirty streams. Pure, so
 * every worker derives the same tags.
 */
import { keySlot, SLOT_COUNT } from './slots.js';

/** The slot range [first, last] of shard i of `count`. */
function shardRange(i: number, count: number): { first: number; last: number } {
  return { first: Math.floor((i * SLOT_COUNT) / count), last: Math.floor(((i + 1) * SLOT_COUNT) / count) - 1 };
}

/** Hash tag of each shard: the first `<stem><i>.<n>` whose slot lies in the shard's range. */
export function shardTags(stem: string, count: number): string[] {
  return Array.from({ length: count }, (_, i) => {
    const { first, last } = shardRange(i, count);
    for (let n = 0; ; n++) {
      const tag = `${stem}${i}.${n}`;
      const slot = keySlot(tag);
      if (slot >= first && slot <= last) return tag;
    }
  });
}

/** Hash tags of the ticket queue's shards. */
export function queueShardTags(count: number): string[] {
  return shardTags('q', count);
}

/** The shard of `count` that takes what belongs to this slot. */
export function shardOfSlot(slot: number, count: number): number {
  // The last i whose range starts at or before the slot: floor(i·N/count) <= slot.
  return Math.floor(((slot + 1) * count - 1) / SLOT_COUNT);
}
