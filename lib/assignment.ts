/**
 * Which live worker should own each partition: a pure function every worker evaluates
 * on the same inputs read from Redis, so they agree without a coordinator.
 *
 * Balanced: each of N members gets floor(P/N) or ceil(P/N). Sticky, like Kafka's
 * cooperative-sticky assignor: a member keeps what it owns up to its quota, and the
 * ceil quotas go to the members owning the most, so only surplus and free partitions
 * move. A balanced assignment is its own result: no flapping. Free partitions are dealt in
 * contiguous runs, so each member's slots lie on few masters.
 */
import { SLOT_COUNT, slotRangeOfPartition } from './slots.js';

export interface AssignmentInput {
  partitions: number;
  /** Live worker ids, any order. */
  members: readonly string[];
  /** Current lease holder of each partition or null; a holder that is no member counts as free. */
  owners: readonly (string | null)[];
}

export function assign(input: AssignmentInput): string[] {
  const { partitions, owners } = input;
  const members = [...new Set(input.members)].sort();
  if (members.length === 0) throw new Error('assignment needs at least one live member');
  if (owners.length !== partitions) throw new Error(`assignment got ${owners.length} owners for ${partitions} partitions`);

  const owned = new Map<string, number[]>(members.map((m) => [m, []]));
  owners.forEach((owner, p) => {
    if (owner !== null) owned.get(owner)?.push(p);
  });

  const base = Math.floor(partitions / members.length);
  const extra = partitions % members.length;
  const byHoldings = [...members].sort((a, b) => owned.get(b)!.length - owned.get(a)!.length || (a < b ? -1 : 1));
  const quota = new Map(byHoldings.map((m, i) => [m, base + (i < extra ? 1 : 0)]));

  const target: (string | null)[] = new Array(partitions).fill(null);
  for (const m of members) {
    // Keeping the lowest-numbered partitions is arbitrary but deterministic.
    for (const p of owned.get(m)!.slice(0, quota.get(m))) target[p] = m;
  }
  const room = new Map(members.map((m) => [m, quota.get(m)! - owned.get(m)!.slice(0, quota.get(m)).length]));
  // Free partitions go in runs: a member takes the next ones while it has room, so its partitions
  // are few contiguous slot ranges and it listens on few masters. A run starts with the member
  // with the most room.
  let taker: string | undefined;
  for (let p = 0; p < partitions; p++) {
    if (target[p] !== null) continue;
    if (taker === undefined || room.get(taker)! === 0) {
      taker = members[0]!;
      for (const m of members) if (room.get(m)! > room.get(taker)!) taker = m;
    }
    target[p] = taker;
    room.set(taker, room.get(taker)! - 1);
  }
  return target as string[];
}

/**
 * The slots whose events a worker must hear: those of the partitions it holds, and of those the
 * assignment gives it (unless it is leaving), as 1s in a slot map.
 */
export function slotsToHear(target: readonly string[], worker: string, held: ReadonlyMap<number, unknown>, leaving: boolean, partitions: number): Uint8Array {
  const slots = new Uint8Array(SLOT_COUNT);
  target.forEach((to, p) => {
    if ((to !== worker || leaving) && !held.has(p)) return;
    const { first, last } = slotRangeOfPartition(p, partitions);
    slots.fill(1, first, last + 1);
  });
  return slots;
}

export interface Move {
  partition: number;
  from: string | null;
  to: string;
}

/** The partitions whose owner differs between the current owners and a target. */
export function diff(owners: readonly (string | null)[], target: readonly string[]): Move[] {
  const moves: Move[] = [];
  target.forEach((to, partition) => {
    if (owners[partition] !== to) moves.push({ partition, from: owners[partition] ?? null, to });
  });
  return moves;
}
