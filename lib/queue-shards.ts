/**
 * The ticket queue in shards: one BullMQ queue lives in one cluster slot, so one queue makes one
 * master the hot spot. Shard i takes the ticket jobs of the keys in the i-th of S equal ranges
 * of the slot space, and its hash tag is chosen to fall in that range too: with masters serving
 * contiguous slot ranges (the usual layout), a job lives on the master of its keys and of their
 * dirty streams. Pure, so every worker derives the same tags.
 */
import { keySlot, SLOT_COUNT } from './slots.js';

/** The slot range [first, last] of shard i of `count`. */
function shardRange(i: number, count: number): { first: number; last: number } {
  return { first: Math.floor((i * SLOT_COUNT) / count), last: Math.floor(((i + 1) * SLOT_COUNT) / count) - 1 };
}

/** Hash tag of each shard: the first `q<i>.<n>` whose slot lies in the shard's range. */
export function queueShardTags(count: number): string[] {
  return Array.from({ length: count }, (_, i) => {
    const { first, last } = shardRange(i, count);
    for (let n = 0; ; n++) {
      const tag = `q${i}.${n}`;
      const slot = keySlot(tag);
      if (slot >= first && slot <= last) return tag;
    }
  });
}

/** The shard that takes the ticket jobs of a key in this slot. */
export function shardOfSlot(slot: number, count: number): number {
  // The last i whose range starts at or before the slot: floor(i·N/count) <= slot.
  return Math.floor(((slot + 1) * count - 1) / SLOT_COUNT);
}
