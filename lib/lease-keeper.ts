/**
 * Holds the leases of the partitions a worker owns: acquires them through the Lua
 * scripts, renews them on a timer that never overlaps itself, and reports a partition
 * lost the moment it can no longer be sure of holding it (a refused renewal, or no
 * successful renewal within the TTL), like redis-semaphore's onLockLost.
 */
import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import type { Disconnect } from './control.js';
import { groupBy } from './group-by.js';
import type { Logger } from './logger.js';
import type { Keys } from './keys.js';
import type { RedisClient } from './redis.js';
import { Scripts, type Acquired, type TakenOver } from './scripts.js';

export interface LeaseKeeperOptions {
  scripts: Scripts;
  workerId: string;
  ttlMs: number;
  renewIntervalMs: number;
  logger: Logger;
  /** Redis ms up to which the worker heard every event of a partition: the coverage mark a renewal writes. */
  coverageMark: (partition: number) => number;
  /** The Redis node that serves a partition's lease, as far as the client knows: leases are renewed a node at a time. */
  nodeOf: (partition: number) => string;
}

export interface HeldLease {
  token: number;
  /** Local monotonic time (performance.now) until which the lease is certainly ours. */
  deadline: number;
}

export type LossReason = 'superseded' | 'expired' | 'handed-over';

/** A lease as read from Redis. */
export interface LeaseState {
  owner: string | null;
  token: number;
  /** Worker the owner offered the lease to, or null. */
  offer: string | null;
}

/** Reads the lease of every partition: one script call a Redis node. */
export async function readLeases(client: RedisClient, keys: Keys, partitions: number, scripts = new Scripts(client, keys)): Promise<LeaseState[]> {
  const read = await scripts.readLeases([...Array(partitions).keys()]);
  return read.map(([owner, token, offer]) => ({ owner: owner ?? null, token: Number(token ?? 0), offer: offer || null }));
}

/**
 * Emits 'tick' as each renewal round starts (what else runs once a renewal interval runs on it: one
 * timer wakes the worker), 'lost' (partition, reason) and 'renewed' (ms the round took).
 */
export class LeaseKeeper extends EventEmitter {
  readonly held = new Map<number, HeldLease>();
  private timer: NodeJS.Timeout | undefined;
  private round: Promise<void> | undefined;
  private stopped = false;

  constructor(private readonly opts: LeaseKeeperOptions) {
    super();
  }

  /**
   * The deadline is counted from before the request was sent, and shortened by a small
   * drift allowance, so a slow reply never makes the lease look longer than Redis keeps it.
   */
  private deadlineFrom(sentAt: number): number {
    return sentAt + this.opts.ttlMs * 0.98 - 2;
  }

  async acquire(partition: number): Promise<Acquired | null> {
    const sentAt = performance.now();
    const got = await this.opts.scripts.acquireLease(partition, this.opts.workerId, this.opts.ttlMs);
    if (got) this.held.set(partition, { token: got.token, deadline: this.deadlineFrom(sentAt) });
    return got;
  }

  start(): void {
    const loop = () => {
      if (this.stopped) return;
      this.timer = setTimeout(() => {
        this.emit('tick');
        this.round = this.renewAll().finally(loop);
      }, this.opts.renewIntervalMs);
    };
    loop();
  }

  /** One call a Redis node for the leases it serves; partition by partition where that call fails (a slot moved). */
  private async renewAll(): Promise<void> {
    const { scripts, workerId, ttlMs, logger, nodeOf } = this.opts;
    const sentAt = performance.now();
    let failed = 0;
    const renewed = (partition: number, lease: HeldLease, at: number | null) => {
      if (this.held.get(partition) !== lease) return;
      if (at === null) this.drop(partition, 'superseded');
      // An answer may come after a later round's (its node stalled): it never shortens the lease.
      else lease.deadline = Math.max(lease.deadline, this.deadlineFrom(sentAt));
    };
    const one = async ([partition, lease]: [number, HeldLease]) => {
      try {
        renewed(partition, lease, await scripts.renewLease(partition, workerId, lease.token, ttlMs, this.opts.coverageMark(partition)));
      } catch (err) {
        if (++failed === 1) logger.warn('lease renewal failed', { partition, err: String(err) });
      }
    };
    const nodes = Promise.all(
      [...groupBy(this.held, ([partition]) => nodeOf(partition)).values()].map(async (group) => {
        let replies: (number | null)[];
        try {
          replies = await scripts.renewLeases(group.map(([partition, lease]) => ({ partition, token: lease.token, heardUpTo: this.opts.coverageMark(partition) })), workerId, ttlMs);
        } catch (err) {
          logger.debug('lease renewal by node failed; renewing one by one', { partitions: group.length, err: String(err) });
          return void (await Promise.all(group.map(one)));
        }
        group.forEach(([partition, lease], i) => renewed(partition, lease, replies[i]!));
      }),
    );
    // A node that does not answer (a stopped or overloaded master) must not hold up the leases the
    // others serve, nor the check below: the round ends after a renewal interval, and the leases it
    // did not renew lapse like any other (a late answer still counts).
    let timer: NodeJS.Timeout | undefined;
    const answered = await Promise.race([nodes.then(() => true), new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), this.opts.renewIntervalMs)))]);
    clearTimeout(timer);
    if (!answered) logger.warn('lease renewal: a Redis node did not answer within the renewal interval; renewing the others', { held: this.held.size });
    if (this.held.size > 0) this.emit('renewed', performance.now() - sentAt);
    const now = performance.now();
    for (const [partition, lease] of this.held) if (now >= lease.deadline) this.drop(partition, 'expired');
  }

  /** Forgets a lease that is no longer this worker's. */
  drop(partition: number, reason: LossReason): void {
    if (!this.held.has(partition)) return;
    this.held.delete(partition);
    if (reason === 'handed-over') this.opts.logger.debug('lease handed over', { partition });
    else this.opts.logger.warn('lease lost', { partition, reason });
    this.emit('lost', partition, reason);
  }

  /**
   * A disconnect message (lib/control.ts) for a lease this worker holds: believed only when the
   * lease in Redis no longer names this worker with its token.
   */
  async disconnected(d: Disconnect): Promise<void> {
    const held = this.held.get(d.partition);
    if (!held) return;
    const [owner, token] = (await this.opts.scripts.readLeases([d.partition]))[0] ?? [];
    if (owner === this.opts.workerId && Number(token) === held.token) {
      this.opts.logger.warn('ignored a disconnect message the lease does not confirm', { partition: d.partition, claimedOwner: d.owner });
      return;
    }
    this.drop(d.partition, 'handed-over');
  }

  /** Offers a held lease to its next owner; false when it is not held (a refusal means it was already superseded). */
  async offer(partition: number, to: string): Promise<boolean> {
    const lease = this.held.get(partition);
    if (!lease) return false;
    const ok = await this.opts.scripts.offerLease(partition, this.opts.workerId, lease.token, to);
    if (!ok) this.drop(partition, 'superseded');
    return ok;
  }

  /** Takes over a lease offered to this worker; null when it is not offered (any more). */
  async takeOver(partition: number, from: string): Promise<TakenOver | null> {
    const sentAt = performance.now();
    const got = await this.opts.scripts.takeOverLease(partition, this.opts.workerId, from, this.opts.ttlMs);
    if (got) this.held.set(partition, { token: got.token, deadline: this.deadlineFrom(sentAt) });
    return got;
  }

  /** Gives one lease up (graceful). */
  async release(partition: number): Promise<void> {
    const lease = this.held.get(partition);
    if (!lease) return;
    this.held.delete(partition);
    await this.opts.scripts.releaseLease(partition, this.opts.workerId, lease.token);
  }

  /** Stops renewing; leases still held then expire unless released. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.round;
  }

  /** Stops renewing and releases every lease still held (one that fails to release lapses). */
  async releaseAll(): Promise<void> {
    await this.stop();
    await Promise.all([...this.held.keys()].map((p) => this.release(p).catch(() => undefined)));
  }
}
