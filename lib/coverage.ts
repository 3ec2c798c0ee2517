/**
 * What a worker heard, and what it repairs where it did not hear. Every window in which
 * nobody may have forwarded a partition's events (a crashed owner, a dropped subscriber
 * connection, a master that failed over, every worker down) ends in an exact repair of the
 * partition (lib/reconciler.ts), which compares Redis with the ticket index. Before it, the
 * shadow buffer replays a crashed owner's window from what this worker heard of it, a fast
 * path that the correctness never depends on.
 *
 * The shadow buffer is kept only while partitions may come to this worker: while the
 * assignment is unsettled, and for a shadow window after a member came or went. Kept always,
 * it was a map entry and a copy of the key for every event of every partition a worker listens
 * to without owning it: with six workers, 7–14 % of their CPU a write (two side-by-side runs),
 * for replays that a settled assignment never asks for. A crashed owner's window found while
 * settled is repaired by comparison alone.
 *
 * The coverage mark a lease renewal writes is never later than what the partition's
 * listeners heard (their last answered PING), so a lagging or cut listener never claims a
 * window it did not hear.
 */
import type { Keys } from './keys.js';
import { encodeGap, parseGap } from './control.js';
import type { KeyspaceSubscriber } from './keyspace-subscriber.js';
import type { Logger } from './logger.js';
import type { Reconciler } from './reconciler.js';
import { publishNear, type RedisClient } from './redis.js';
import type { Acquired, TakenOver } from './scripts.js';
import { ShadowBuffer } from './shadow-buffer.js';
import { keySlot, slotRangeOfPartition } from './slots.js';

/** Allowance for the difference between this machine's clock and Redis's. */
const CLOCK_MARGIN_MS = 1000;

/** Longest round trip of a clock-offset read that the margin covers (the offset is off by up to half of it). */
export const CLOCK_READ_MAX_MS = 2 * CLOCK_MARGIN_MS;

/** Most keys the shadow buffer holds before it starts afresh. */
const SHADOW_MAX_KEYS = 500_000;

export interface CoverageOptions {
  workerId: string;
  keys: Keys;
  partitions: number;
  leaseTtlMs: number;
  /** Ticket every existing key of a partition covered for the first time. */
  backfill: boolean;
  client: RedisClient;
  subscriber: KeyspaceSubscriber;
  reconciler: Reconciler;
  logger: Logger;
  /** Redis time minus local time, ms. */
  clockOffsetMs: number;
  /** Partitions this worker holds now. */
  held: () => Iterable<number>;
  markDirty: (partition: number, key: Buffer, event: string, at: number) => void;
}

export class Coverage {
  private readonly shadow: ShadowBuffer;
  /** Local ms until which the shadow buffer is kept, while it is. */
  private keepUntil = 0;
  /** Per master whose subscription dropped: the partitions this worker held on it then. */
  private readonly heldWhenDropped = new Map<string, Set<number>>();
  readonly stats = { gapsReplayed: 0, keysReplayed: 0 };

  constructor(private readonly opts: CoverageOptions) {
    this.shadow = new ShadowBuffer(2 * opts.leaseTtlMs + 5000, SHADOW_MAX_KEYS);
    opts.subscriber.on('dropped', (node: string) => {
      // The partitions held now are the ones this worker must repair, even if it loses them meanwhile.
      const held = this.partitionsOn(node);
      this.heldWhenDropped.set(node, new Set([...(this.heldWhenDropped.get(node) ?? []), ...held]));
    });
    opts.subscriber.on('confirmed', (node: string, gapSince: number | null) => {
      if (gapSince !== null) this.subscriptionGap(node, gapSince);
    });
    opts.subscriber.on('appeared', (node: string, since: number) => this.masterAppeared(node, since));
    // A master frozen after its replica took over answers nothing: a repair reading it would wait for its timeout.
    opts.subscriber.on('left', (node: string) => opts.reconciler.nodeLeft(node));
  }

  /** An event of a partition this worker does not forward. */
  heard(partition: number, key: Buffer, event: Buffer): void {
    if (this.shadow.kept) this.shadow.add(partition, key, event.toString('latin1'), Date.now());
  }

  /**
   * Partitions may come to this worker (the assignment is unsettled, a member came or went):
   * keeps the shadow buffer for a shadow window from now. It holds nothing from before the first
   * such call after it was let go.
   */
  unsettled(): void {
    const now = Date.now();
    this.shadow.keep(now);
    this.keepUntil = now + this.shadow.windowMs;
  }

  /** Forgets what is older than the shadow window; lets the buffer go once its keeping time is over. */
  prune(): void {
    const now = Date.now();
    if (this.shadow.kept && now >= this.keepUntil) this.shadow.letGo();
    this.shadow.prune(now);
  }

  /** Redis ms up to which this worker heard every event of the partition. */
  coverageMark(partition: number): number {
    const { first, last } = slotRangeOfPartition(partition, this.opts.partitions);
    return this.opts.subscriber.heardUpTo(first, last) + this.opts.clockOffsetMs;
  }

  /** Keys of a held partition heard since `since` (local ms) were dropped unappended: repair it from then. */
  dropped(partition: number, since: number): void {
    this.opts.reconciler.request(partition, 'repair', since + this.opts.clockOffsetMs - CLOCK_MARGIN_MS);
  }

  /** Seconds since each master's listener last proved it had heard everything. */
  lag(now = Date.now()): { node: string; seconds: number }[] {
    return this.opts.subscriber.status().map((n) => ({ node: n.node, seconds: n.heardAt > 0 ? Math.max(0, now - n.heardAt) / 1000 : Infinity }));
  }

  /** A partition acquired from a free lease: repair the window since its last coverage. */
  acquired(partition: number, got: Acquired): void {
    if (got.previouslyCovered < 0) {
      this.shadow.drop(partition);
      this.opts.reconciler.request(partition, this.opts.backfill ? 'backfill' : 'adopt');
      return;
    }
    if (got.previouslyCovered >= got.now) return;
    const gap = { partition, from: got.previouslyCovered, to: got.now, by: this.opts.workerId };
    // Through the lease key's master, which just answered: a keyless publish may wait on a frozen one and be lost.
    void publishNear(this.opts.client, keySlot(this.opts.keys.lease(partition)), this.opts.keys.gapsChannel(), encodeGap(gap)).catch(() => undefined);
    this.replay(partition, gap.from - this.opts.clockOffsetMs - CLOCK_MARGIN_MS);
    this.opts.reconciler.request(partition, 'repair', gap.from);
  }

  /**
   * A partition taken over from a live owner. The old owner forwarded what it heard, but it may
   * not have heard everything since its last coverage mark (a listener cut it has not noticed
   * yet): what this worker heard of the partition since then is appended, and where it did not
   * hear all of it, the partition is repaired from the mark.
   */
  takenOver(partition: number, got: TakenOver): void {
    const since = got.previouslyCovered < 0 ? got.now : got.previouslyCovered;
    if (!this.replay(partition, since - this.opts.clockOffsetMs - CLOCK_MARGIN_MS)) this.opts.reconciler.request(partition, 'repair', since);
  }

  /**
   * Another worker announced a crashed owner's window: append what this worker heard of it.
   * Believed only when the lease agrees (the announcer holds it, acquired at the window's end):
   * a forged notice would otherwise empty the shadow buffer of the partition.
   */
  async gapNotice(message: string): Promise<void> {
    const gap = parseGap(message, this.opts.partitions);
    if (!gap) {
      this.opts.logger.warn('ignored a malformed gap notice', { raw: message.slice(0, 200) });
      return;
    }
    if (gap.by === this.opts.workerId || [...this.opts.held()].includes(gap.partition)) return;
    const [owner, since] = await this.opts.client.hmget(this.opts.keys.lease(gap.partition), 'owner', 'since');
    if (owner !== gap.by || Number(since) !== gap.to) {
      this.opts.logger.warn('ignored a gap notice the lease does not confirm', { partition: gap.partition, claimedBy: gap.by.slice(0, 200) });
      return;
    }
    this.replay(gap.partition, gap.from - this.opts.clockOffsetMs - CLOCK_MARGIN_MS);
  }

  /** Appends what this worker heard of a partition since `since` (local ms); false when it did not hear all of it. */
  private replay(partition: number, since: number): boolean {
    const { first, last } = slotRangeOfPartition(partition, this.opts.partitions);
    const heard = this.opts.subscriber.coveredSince(first, last) <= since ? this.shadow.take(partition, since) : null;
    if (heard === null) {
      this.shadow.drop(partition);
      return false;
    }
    for (const k of heard) this.opts.markDirty(partition, k.key, k.event, k.at);
    this.stats.gapsReplayed++;
    this.stats.keysReplayed += heard.length;
    if (heard.length > 0) this.opts.logger.info('gap replayed from the shadow buffer', { partition, sinceMs: Date.now() - since, keys: heard.length });
    return true;
  }

  /** Held partitions with a slot on the node. */
  private partitionsOn(node: string): number[] {
    return [...this.opts.held()].filter((p) => {
      const { first, last } = slotRangeOfPartition(p, this.opts.partitions);
      for (let s = first; s <= last; s++) if (this.opts.subscriber.nodeOfSlot(s) === node) return true;
      return false;
    });
  }

  /** A subscription was down: the partitions held on that node, then or now, missed its events. */
  private subscriptionGap(node: string, since: number): void {
    // Events of other partitions on that node were missed too: the shadow buffer is incomplete.
    this.shadow.reset(Date.now());
    const affected = new Set([...(this.heldWhenDropped.get(node) ?? []), ...this.partitionsOn(node)]);
    this.heldWhenDropped.delete(node);
    this.opts.logger.info('repairing an unheard window', { node, unheardMs: Date.now() - since, partitions: affected.size });
    for (const p of affected) this.opts.reconciler.request(p, 'repair', since + this.opts.clockOffsetMs);
  }

  /**
   * A master new since the start (a failover, a resharding) served slots nobody may have heard,
   * and may have lost writes to the queue, the dirty streams or the sink it now serves: every
   * held partition is compared.
   */
  private masterAppeared(node: string, since: number): void {
    this.shadow.reset(Date.now());
    const held = [...this.opts.held()];
    this.opts.logger.info('repairing an unheard window', { node, unheardMs: Date.now() - since, partitions: held.length, newMaster: true });
    for (const p of held) this.opts.reconciler.request(p, 'repair', since + this.opts.clockOffsetMs);
  }
}
