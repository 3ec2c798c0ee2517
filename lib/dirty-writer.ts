/**
 * The subscriber side of a dirty stream: keyspace events of forwarded partitions are
 * coalesced in memory for a few milliseconds and appended (XADD, auto-pipelined) to their
 * partition's stream. Appends never overlap, so under load batches simply grow. Entries
 * seen while a partition was forwarded are appended even after it moved: late appends
 * are duplicates at worst, while dropping them could lose the last change (DESIGN.md).
 *
 * Memory stays bounded when Redis refuses the appends (OOM, a long outage): past `maxPending`
 * keys, the held partition with the most waiting keys is dropped from memory and handed to an
 * exact repair, which finds its changes in Redis itself once Redis takes writes again.
 */
import { Coalescer, type DirtyKey } from './coalescer.js';
import type { Keys } from './keys.js';
import type { Logger } from './logger.js';
import { backoff, byNode, wireArg, type RedisClient } from './redis.js';
import type { Scripts } from './scripts.js';
import { keySlot } from './slots.js';

export interface DirtyWriterOptions {
  client: RedisClient;
  scripts: Scripts;
  keys: Keys;
  flushIntervalMs: number;
  logger: Logger;
  /** Called after entries were appended to a partition's stream. */
  onAppended: (partition: number, entries: number) => void;
  /** Most keys kept in memory (TG_MAX_PENDING_KEYS). */
  maxPending: number;
  /** Whether this worker holds the partition (only a held partition's keys can be left to its repair). */
  holds: (partition: number) => boolean;
  /** A held partition's waiting keys were dropped: repair it from `since` (local ms). */
  onShed: (partition: number, since: number) => void;
}

/** Field names of a dirty entry: key, event, time seen. */
export const DIRTY_FIELDS = { key: 'k', event: 'e', at: 't' } as const;

/** Appends one dirty key to its partition's stream (the owner makes its ticket). */
export function appendDirty(client: RedisClient, keys: Keys, partition: number, d: { key: Buffer; event: string; at: number }): Promise<unknown> {
  return client.xadd(keys.dirty(partition), '*', DIRTY_FIELDS.key, wireArg(d.key), DIRTY_FIELDS.event, d.event, DIRTY_FIELDS.at, d.at);
}

export class DirtyWriter {
  private readonly pending = new Coalescer();
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  private failures = 0;
  /** Keys appended so far, appends Redis refused, keys dropped from memory (counters for logs and metrics). */
  appended = 0;
  failedAppends = 0;
  shed = 0;

  constructor(private readonly opts: DirtyWriterOptions) {}

  /** `at`: when the change was seen, if earlier than now (a replayed gap). */
  add(partition: number, key: Buffer, event: string, at = Date.now()): void {
    this.pending.add(partition, key, event, at);
    this.bound();
    this.schedule();
  }

  /** Drops held partitions' keys, most first, until at most maxPending keys wait. */
  private bound(): void {
    while (this.pending.size > this.opts.maxPending) {
      const held = [...this.pending.sizes()].filter(([p]) => this.opts.holds(p)).sort((a, b) => b[1] - a[1]);
      if (held.length === 0) return;
      const partition = held[0]![0];
      const { count, since } = this.pending.drop(partition);
      this.shed += count;
      this.opts.logger.warn('dirty keys dropped from memory, past TG_MAX_PENDING_KEYS; the partition will be repaired', { partition, keys: count });
      this.opts.onShed(partition, since);
    }
  }

  /** Number of keys waiting to be appended. */
  get backlog(): number {
    return this.pending.size;
  }

  /** Appends everything gathered, retrying until it is all in Redis. */
  async drain(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    for (;;) {
      await this.flushing;
      if (this.pending.size === 0) return;
      await this.flush();
    }
  }

  private schedule(delay = this.opts.flushIntervalMs): void {
    if (this.timer || this.flushing) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, delay);
  }

  private flush(): Promise<void> {
    this.flushing ??= this.append().finally(() => {
      this.flushing = undefined;
      if (this.pending.size > 0) this.schedule(this.failures > 0 ? backoff(this.failures) : this.opts.flushIntervalMs);
    });
    return this.flushing;
  }

  private async append(): Promise<void> {
    const batch = this.pending.drain();
    const { client, keys, scripts } = this.opts;
    const one = async ([partition, dirty]: [number, DirtyKey[]]) => {
      await Promise.all(dirty.map((d) => appendDirty(client, keys, partition, d)));
    };
    const done = new Map<number, PromiseSettledResult<void>>();
    const settle = async (entry: [number, DirtyKey[]]) => void done.set(entry[0], (await Promise.allSettled([one(entry)]))[0]!);
    await Promise.all(
      byNode(client, batch, ([partition]) => keySlot(keys.dirty(partition))).map(async (group) => {
        if (group.length === 1) return settle(group[0]!);
        // One call a node; where it is refused (a slot moved, Redis out of memory), stream by stream.
        try {
          await scripts.appendDirty(DIRTY_FIELDS, group.map(([partition, dirty]) => ({ partition, dirty })));
          for (const [partition] of group) done.set(partition, { status: 'fulfilled', value: undefined });
        } catch {
          await Promise.all(group.map(settle));
        }
      }),
    );
    let failed = 0;
    for (const [partition, dirty] of batch) {
      const result = done.get(partition)!;
      if (result.status === 'fulfilled') {
        this.appended += dirty.length;
        this.opts.onAppended(partition, dirty.length);
      } else {
        failed++;
        this.failedAppends++;
        // Some XADDs of the batch may have landed: appending them again is a harmless duplicate.
        this.pending.restore(partition, dirty);
        if (failed === 1) this.opts.logger.warn('dirty append failed; retrying', { partition, err: String(result.reason) });
      }
    }
    this.failures = failed > 0 ? this.failures + 1 : 0;
    this.bound();
  }
}
