/**
 * What a worker heard of partitions it does not own. Every worker is subscribed to every
 * master, so it receives the events of all partitions anyway; keeping the last few
 * seconds of them, coalesced per key, lets the worker that takes over a crashed owner's
 * partition replay exactly the changes of the gap, deletions included — which a scan of
 * the keyspace could never find.
 */
import { keyId, type DirtyKey } from './coalescer.js';

export class ShadowBuffer {
  private parts = new Map<number, Map<string, DirtyKey>>();
  private count = 0;
  /** Local ms from which the buffer holds every event it received; per partition once pruned. */
  private completeFrom: number;
  private readonly prunedFrom = new Map<number, number>();

  constructor(
    /** How long an event is kept: longer than a lease TTL plus a takeover. */
    private readonly windowMs: number,
    /** Most keys kept; past it the buffer starts afresh (and repairs fall back to a scan). */
    private readonly maxKeys: number,
    now: number,
  ) {
    this.completeFrom = now;
  }

  add(partition: number, key: Buffer, event: string, at: number): void {
    let keys = this.parts.get(partition);
    if (!keys) this.parts.set(partition, (keys = new Map()));
    const id = keyId(key);
    const seen = keys.get(id);
    if (seen) {
      // Delete and set again, so each map stays in time order and pruning stops early.
      keys.delete(id);
      seen.event = event;
      seen.at = at;
      keys.set(id, seen);
      return;
    }
    keys.set(id, { key: Buffer.from(key), event, at });
    if (++this.count > this.maxKeys) this.reset(at);
  }

  /** Forgets events older than the window. */
  prune(now: number): void {
    const oldest = now - this.windowMs;
    for (const [partition, keys] of this.parts) {
      for (const [id, k] of keys) {
        if (k.at >= oldest) break;
        keys.delete(id);
        this.count--;
      }
      this.prunedFrom.set(partition, oldest);
    }
  }

  /** Starts afresh: nothing before `now` is known any more. */
  reset(now: number): void {
    this.parts = new Map();
    this.prunedFrom.clear();
    this.count = 0;
    this.completeFrom = now;
  }

  /**
   * The keys of a partition that changed at or after `since` (local ms), and forgets the
   * partition; null when the buffer does not hold every event since then.
   */
  take(partition: number, since: number): DirtyKey[] | null {
    const keys = this.parts.get(partition);
    this.parts.delete(partition);
    if (keys) this.count -= keys.size;
    const from = Math.max(this.completeFrom, this.prunedFrom.get(partition) ?? -Infinity);
    if (from > since) return null;
    return keys ? [...keys.values()].filter((k) => k.at >= since) : [];
  }

  /** Forgets a partition this worker now owns. */
  drop(partition: number): void {
    const keys = this.parts.get(partition);
    if (!keys) return;
    this.count -= keys.size;
    this.parts.delete(partition);
  }
}
