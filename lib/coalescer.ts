/**
 * Coalescing of dirty keys. A key that changes many times before a ticket is made needs
 * one ticket, made after its last change: both the subscriber (before appending to a
 * dirty stream) and the owner reading a dirty stream (before enqueueing a job) fold
 * repeated keys with these pure functions.
 */

export interface DirtyKey {
  key: Buffer;
  /** Last keyspace event seen for the key. */
  event: string;
  /** Epoch ms when the earliest not yet ticketed change was seen. */
  at: number;
}

/** Binary-safe map key: latin1 maps every byte to one UTF-16 unit and back. */
export function keyId(key: Buffer): string {
  return key.toString('latin1');
}

/** Dirty keys gathered per partition between two appends. */
export class Coalescer {
  private pending = new Map<number, Map<string, DirtyKey>>();
  private count = 0;

  /** Number of distinct keys waiting. */
  get size(): number {
    return this.count;
  }

  add(partition: number, key: Buffer, event: string, at: number): void {
    let keys = this.pending.get(partition);
    if (!keys) this.pending.set(partition, (keys = new Map()));
    const id = keyId(key);
    const seen = keys.get(id);
    if (seen) {
      seen.event = event;
    } else {
      // A copy: the event's buffer is a slice of the socket's read buffer, which must not be pinned.
      keys.set(id, { key: Buffer.from(key), event, at });
      this.count++;
    }
  }

  /**
   * Puts back keys whose append failed. A key that changed again meanwhile keeps its
   * newer event but the older time, since the older change is still not ticketed.
   */
  restore(partition: number, keys: readonly DirtyKey[]): void {
    for (const k of keys) {
      const current = this.pending.get(partition)?.get(keyId(k.key));
      if (current) current.at = Math.min(current.at, k.at);
      else this.add(partition, k.key, k.event, k.at);
    }
  }

  /** Keys waiting per partition. */
  sizes(): Map<number, number> {
    return new Map([...this.pending].map(([p, keys]) => [p, keys.size]));
  }

  /** Forgets a partition's waiting keys; how many, and the earliest time one was seen (Infinity when none). */
  drop(partition: number): { count: number; since: number } {
    const keys = this.pending.get(partition);
    if (!keys) return { count: 0, since: Infinity };
    this.pending.delete(partition);
    this.count -= keys.size;
    let since = Infinity;
    for (const k of keys.values()) since = Math.min(since, k.at);
    return { count: keys.size, since };
  }

  /** Takes everything gathered so far. */
  drain(): Map<number, DirtyKey[]> {
    const out = new Map<number, DirtyKey[]>();
    for (const [partition, keys] of this.pending) out.set(partition, [...keys.values()]);
    this.pending = new Map();
    this.count = 0;
    return out;
  }
}

export interface DirtyEntry extends DirtyKey {
  /** Stream id of the dirty entry: the ticket's `seq`. */
  id: string;
}

export interface CoalescedKey extends DirtyKey {
  /** Greatest entry id of the key: taken before the value is read, so a larger seq reads later. */
  seq: string;
}

/** Compares two stream ids `ms-n` numerically. */
export function compareStreamIds(a: string, b: string): number {
  const [am, an] = a.split('-');
  const [bm, bn] = b.split('-');
  const ms = BigInt(am!) - BigInt(bm!);
  if (ms !== 0n) return ms < 0n ? -1 : 1;
  const n = BigInt(an ?? '0') - BigInt(bn ?? '0');
  return n === 0n ? 0 : n < 0n ? -1 : 1;
}

/** Folds dirty-stream entries (in stream order) into one item per key. */
export function coalesceEntries(entries: readonly DirtyEntry[]): CoalescedKey[] {
  const byKey = new Map<string, CoalescedKey>();
  for (const e of entries) {
    const id = keyId(e.key);
    const seen = byKey.get(id);
    if (!seen) {
      byKey.set(id, { key: e.key, event: e.event, at: e.at, seq: e.id });
    } else if (compareStreamIds(e.id, seen.seq) > 0) {
      seen.event = e.event;
      seen.seq = e.id;
      seen.at = Math.min(seen.at, e.at);
    } else {
      seen.at = Math.min(seen.at, e.at);
    }
  }
  return [...byKey.values()];
}
