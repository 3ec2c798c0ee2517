/**
 * Holds the leases of the partitions a worker owns: acquires them through the Lua
 * scripts, renews them on a timer that never overlaps itself, and reports a partition
 * lost the moment it can no longer be sure of holding it (a refused renewal, or no
 * successful renewal within the TTL), like redis-semaphore's onLockLost.
 */
import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import type { Logger } from './logger.js';
import type { Acquired, Scripts } from './scripts.js';

export interface LeaseKeeperOptions {
  scripts: Scripts;
  workerId: string;
  ttlMs: number;
  renewIntervalMs: number;
  logger: Logger;
}

export interface HeldLease {
  token: number;
  /** Local monotonic time (performance.now) until which the lease is certainly ours. */
  deadline: number;
}

/** Emits 'lost' (partition, reason: 'superseded' | 'expired'). */
export class LeaseKeeper extends EventEmitter {
  readonly held = new Map<number, HeldLease>();
  private timer: NodeJS.Timeout | undefined;
  private round: Promise<void> | undefined;
  private stopped = false;
  /** Latency of the last renewal round, ms. */
  lastRenewMs = 0;

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
        this.round = this.renewAll().finally(loop);
      }, this.opts.renewIntervalMs);
    };
    loop();
  }

  private async renewAll(): Promise<void> {
    const { scripts, workerId, ttlMs, logger } = this.opts;
    const sentAt = performance.now();
    let failed = 0;
    await Promise.all(
      [...this.held].map(async ([partition, lease]) => {
        try {
          const renewed = await scripts.renewLease(partition, workerId, lease.token, ttlMs);
          if (this.held.get(partition) !== lease) return;
          if (renewed === null) this.lose(partition, 'superseded');
          else lease.deadline = this.deadlineFrom(sentAt);
        } catch (err) {
          failed++;
          if (failed === 1) logger.warn('lease renewal failed', { partition, err: String(err) });
        }
      }),
    );
    this.lastRenewMs = performance.now() - sentAt;
    const now = performance.now();
    for (const [partition, lease] of this.held) if (now >= lease.deadline) this.lose(partition, 'expired');
  }

  private lose(partition: number, reason: 'superseded' | 'expired'): void {
    this.held.delete(partition);
    this.opts.logger.warn('lease lost', { partition, reason });
    this.emit('lost', partition, reason);
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
}
