/**
 * What a worker heard of partitions it listens to without owning them: a master's events
 * cannot be filtered by slot, so a worker hears every partition of the masters where its own
 * live. Keeping the last few seconds of them, coalesced per key, lets the worker that takes a
 * partition over append the changes since its previous owner's coverage mark at once,
 * deletions included, instead of comparing the partition with the ticket index. It is kept
 * only when asked (keep), and knows nothing otherwise.
 */
import { keyId, type DirtyKey } from './coalescer.js';

export class ShadowBuffer {
  private parts = new Map<number, Map<string, DirtyKey>>();
  private count = 0;
  /** Local ms from which the buffer holds every event it received (Infinity: none); per partition once pruned. */
  private completeFrom = Infinity;
  private readonly prunedFrom = new Map<number, number>();
  private keeping = false;

  /** Whether events are kept now (between keep() and letGo()). */
  get kept(): boolean {
    return this.keeping;
  }

  constructor(
    /** How long an event is kept: longer than a lease TTL plus a takeover. */
    readonly windowMs: number,
    /** Most keys kept; past it the buffer starts afresh (and repairs fall back to a comparison). */
    private readonly maxKeys: number,
  ) {}

  /** Keeps the events added from `now` on, if it did not already. */
  keep(now: number): void {
    if (this.keeping) return;
    this.keeping = true;
    this.reset(now);
  }

  /** Forgets every event and keeps none until the next keep(): take() knows nothing meanwhile. */
  letGo(): void {
    this.keeping = false;
    this.reset(Infinity);
  }

  add(partition: number, key: Buffer, event: string, at: number): void {
    if (!this.keeping) return;
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

  /** Starts afresh: nothing before `now` is known any more (nothing at all while not kept). */
  reset(now: number): void {
    this.parts = new Map();
    this.prunedFrom.clear();
    this.count = 0;
    this.completeFrom = this.keeping ? now : Infinity;
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
