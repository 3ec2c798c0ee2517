/**
 * The subscriber side of a dirty stream: keyspace events of forwarded partitions are
 * coalesced in memory for a few milliseconds and appended to their partition's stream (one
 * script call a Redis node, or XADDs where a node gets one partition's keys). Appends never
 * overlap, so under load batches simply grow. Entries seen while a partition was forwarded are
 * appended even after it moved: late appends are duplicates at worst, while dropping them could
 * lose the last change (DESIGN.md).
 *
 * Memory stays bounded when Redis refuses the appends (OOM, a long outage): past `maxPending`
 * keys, the held partition with the most waiting keys is dropped from memory and handed to an
 * exact repair, which finds its changes in Redis itself once Redis takes writes again.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { batchDelay, flushAfterRead, intervalLeft, readPause, type BatchState, type BatchTiming } from './batch-timing.js';
import { Coalescer, type DirtyEntry, type DirtyKey } from './coalescer.js';
import type { Keys } from './keys.js';
import type { Logger } from './logger.js';
import { backoff, byNode, followFailover, refreshRouting, unanswered, wireArg, type RedisClient } from './redis.js';
import type { Scripts } from './scripts.js';
import { keySlot } from './slots.js';

export interface DirtyWriterOptions {
  client: RedisClient;
  scripts: Scripts;
  keys: Keys;
  /** When gathered keys are appended (TG_FLUSH_INTERVAL_MS, TG_FLUSH_KEYS, TG_FLUSH_MAX_WAIT_MS). */
  timing: BatchTiming;
  logger: Logger;
  /** Called after entries were appended to a partition's stream, with their ids. */
  onAppended: (partition: number, entries: DirtyEntry[]) => void;
  /** Most keys kept in memory (TG_MAX_PENDING_KEYS). */
  maxPending: number;
  /** Whether this worker holds the partition (only a held partition's keys can be left to its repair). */
  holds: (partition: number) => boolean;
  /** A held partition's waiting keys were dropped: repair it from `since` (local ms). */
  onShed: (partition: number, since: number) => void;
  /** When the listeners feeding this writer read next after a pause (ms; 0: none is paused). */
  nextRead?: () => number;
}

/** Field names of a dirty entry: key, event, time seen. */
export const DIRTY_FIELDS = { key: 'k', event: 'e', at: 't' } as const;

/** Appends one dirty key to its partition's stream (the owner makes its ticket); the entry's id. */
export async function appendDirty(client: RedisClient, keys: Keys, partition: number, d: { key: Buffer; event: string; at: number }): Promise<string> {
  return (await client.xadd(keys.dirty(partition), '*', DIRTY_FIELDS.key, wireArg(d.key), DIRTY_FIELDS.event, d.event, DIRTY_FIELDS.at, d.at))!;
}

export class DirtyWriter {
  private readonly pending = new Coalescer();
  private timer: NodeJS.Timeout | undefined;
  /** When the armed timer fires (ms). */
  private timerDue = 0;
  private flushing: Promise<void> | undefined;
  private failures = 0;
  /** When the last append started, and since when the first key waiting now waits (ms; 0: none waits). */
  private lastFlush = 0;
  private waitingSince = 0;
  /** The keys waiting go with a paced read (afterPausedRead, or their timer came due with one pending): appended as soon as the interval allows. */
  private dueWithRead = false;
  /** Keys added since `rateFrom` (ms), and the rate of the keys added, smoothed over the reads of it. */
  private added = 0;
  private rateFrom = Date.now();
  private keysPerMs = 0;
  /** Keys appended so far, appends Redis refused, keys dropped from memory (counters for logs and metrics). */
  appended = 0;
  failedAppends = 0;
  shed = 0;

  constructor(private readonly opts: DirtyWriterOptions) {}

  /** `at`: when the change was seen, if earlier than now (a replayed gap). */
  add(partition: number, key: Buffer, event: string, at = Date.now()): void {
    if (this.waitingSince === 0) this.waitingSince = Date.now();
    this.added++;
    this.pending.add(partition, key, event, at);
    this.bound();
    this.schedule();
  }

  /** Appends what waits without waiting for the batch to fill (a partition just moved: its late keys should land before its new owner reads). */
  flushNow(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pending.size > 0) void this.flush();
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

  /**
   * How long the listeners feeding this writer may stop reading after a chunk, at least `minMs`:
   * about the time a batch takes to fill at the rate keys were added lately (readPause).
   */
  listenPause(minMs: number, now = Date.now()): number {
    const ms = now - this.rateFrom;
    if (ms >= 1) {
      this.keysPerMs = (this.keysPerMs + this.added / ms) / 2;
      this.added = 0;
      this.rateFrom = now;
    }
    const dueIn = this.pending.size > 0 && !this.flushing ? batchDelay(this.opts.timing, this.state(now)) : Infinity;
    return readPause(this.opts.timing, minMs, this.keysPerMs, dueIn);
  }

  /**
   * The listeners feeding this writer have just read what came during their pause, and read next at
   * `nextReadAt` (ms; 0: none is paused). The waiting keys go now, or as soon as an append in flight
   * and TG_FLUSH_INTERVAL_MS allow, if they go with this read (flushAfterRead) or their timer came
   * due while it was pending; else they keep their timer.
   */
  afterPausedRead(nextReadAt: number, now = Date.now()): void {
    const state = this.state(now);
    if (!this.dueWithRead && !(nextReadAt > 0 && flushAfterRead(this.opts.timing, state, nextReadAt))) return;
    this.dueWithRead = true;
    if (!this.flushing && intervalLeft(this.opts.timing, state) === 0) this.flushNow();
    else this.schedule();
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
      // Refused at once (out of memory, a closed connection), the appends wait a backoff: a tight loop
      // would also starve every timer, the shutdown deadline's included.
      if (this.failures > 0) await sleep(backoff(this.failures));
      await this.flush();
    }
  }

  /** Arms the append for the keys waiting (batchDelay, or the interval's end once a paced read sent them), at least `atLeastMs` from now; a batch that fills brings an armed append forward. */
  private schedule(atLeastMs = 0): void {
    if (this.flushing || this.pending.size === 0) return;
    const now = Date.now();
    const state = this.state(now);
    const due = this.dueWithRead ? intervalLeft(this.opts.timing, state) : batchDelay(this.opts.timing, state);
    const delay = Math.max(atLeastMs, due);
    if (this.timer) {
      if (now + delay >= this.timerDue) return;
      clearTimeout(this.timer);
    }
    const timerDue = now + delay;
    this.timerDue = timerDue;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      // A paced read due by now brings what came during its pause (the rest of a burst): the batch
      // goes right after it (afterPausedRead), not a moment before without those keys.
      const readAt = this.opts.nextRead?.() ?? 0;
      if (readAt > 0 && readAt <= timerDue) {
        this.dueWithRead = true;
        return;
      }
      void this.flush();
    }, delay);
  }

  private state(now: number): BatchState {
    return { now, lastBatch: this.lastFlush, waiting: this.pending.size, waitingSince: this.waitingSince };
  }

  private flush(): Promise<void> {
    this.flushing ??= this.append().finally(() => {
      this.flushing = undefined;
      this.schedule(this.failures > 0 ? backoff(this.failures) : 0);
    });
    return this.flushing;
  }

  private async append(): Promise<void> {
    this.lastFlush = Date.now();
    const batch = this.pending.drain();
    this.waitingSince = 0;
    this.dueWithRead = false;
    const { client, keys, scripts } = this.opts;
    const slotOf = (partition: number) => keySlot(keys.dirty(partition));
    const one = ([partition, dirty]: [number, DirtyKey[]]) => followFailover(client, slotOf(partition), Promise.all(dirty.map((d) => appendDirty(client, keys, partition, d))));
    const done = new Map<number, PromiseSettledResult<string[]>>();
    const settle = async (entry: [number, DirtyKey[]]) => void done.set(entry[0], (await Promise.allSettled([one(entry)]))[0]!);
    await Promise.all(
      byNode(client, batch, ([partition]) => slotOf(partition)).map(async (group) => {
        if (group.length === 1) return settle(group[0]!);
        // One call a node; where it is refused (a slot moved, Redis out of memory) or its master was
        // replaced while it went unanswered, stream by stream.
        try {
          const ids = await followFailover(client, slotOf(group[0]![0]), scripts.appendDirty(DIRTY_FIELDS, group.map(([partition, dirty]) => ({ partition, dirty }))));
          group.forEach(([partition], i) => done.set(partition, { status: 'fulfilled', value: ids[i]! }));
        } catch {
          await Promise.all(group.map(settle));
        }
      }),
    );
    let failed = 0;
    let silent = false;
    for (const [partition, dirty] of batch) {
      const result = done.get(partition)!;
      if (result.status === 'fulfilled') {
        this.appended += dirty.length;
        const ids = result.value;
        this.opts.onAppended(partition, dirty.map((d, i) => ({ id: ids[i]!, key: d.key, event: d.event, at: d.at })));
      } else {
        failed++;
        this.failedAppends++;
        silent ||= unanswered(result.reason);
        // Some XADDs of the batch may have landed: appending them again is a harmless duplicate.
        this.pending.restore(partition, dirty);
        if (failed === 1) this.opts.logger.warn('dirty append failed; retrying', { partition, err: String(result.reason) });
      }
    }
    // Keys put back wait since this append started, not since whatever comes next.
    if (this.pending.size > 0 && this.waitingSince === 0) this.waitingSince = this.lastFlush;
    this.failures = failed > 0 ? this.failures + 1 : 0;
    // A frozen master sends no MOVED once its replica took over: the retry goes where a new read of
    // the map says (a stopping worker's drain has no topology reads to bring it in line any more).
    if (silent) refreshRouting(client);
    this.bound();
  }
}
