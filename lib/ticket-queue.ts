/**
 * The BullMQ queues that make tickets, one a shard (lib/shards.ts). One job carries a
 * coalesced batch of dirty keys, so the per-job cost of BullMQ is shared by many keys. Keys
 * travel as base64 so any byte content survives BullMQ's JSON encoding.
 */
import { EventEmitter } from 'node:events';
import { Queue, type ConnectionOptions, type JobsOptions, type JobType } from 'bullmq';
import { Cluster } from 'ioredis';
import type { CoalescedKey } from './coalescer.js';
import { TICKET_QUEUE, type Keys } from './keys.js';
import { followFailover } from './redis.js';
import { queueShardTags } from './shards.js';
import { keySlot } from './slots.js';

/** [key (base64), last event, seq, dirtyAt] */
export type TicketItem = [string, string, string, number];

export interface TicketJobData {
  items: TicketItem[];
}

export function encodeItems(items: readonly CoalescedKey[]): TicketItem[] {
  return items.map((i) => [i.key.toString('base64'), i.event, i.seq, i.at]);
}

export function decodeItem(item: TicketItem): CoalescedKey {
  const [key, event, seq, at] = item;
  return { key: Buffer.from(key, 'base64'), event, seq, at };
}

/**
 * Retries of a failing ticket job (TG_JOB_ATTEMPTS, TG_JOB_BACKOFF_MS): a Redis outage or a
 * sink that is down for minutes should not exhaust them. A job that still fails stays in
 * BullMQ's failed set for an operator, and its keys converge through reconciliation.
 */
export interface RetryPolicy {
  attempts: number;
  backoffMs: number;
}

/**
 * BullMQ asks each new queue's or worker's connection for INFO (its version check), keyless, so of
 * a random master; one that times out (a master frozen, its replica not yet promoted) fails that
 * queue's every later call at once, for good. The start checks Redis itself.
 */
export const BULLMQ_CONNECTION = { skipVersionCheck: true } as const;

/** The queues of these shard tags (queueShardTags), for readers of their depth too (tg info, the load test). */
export function openShards(connection: ConnectionOptions, keys: Keys, tags: readonly string[]): Queue<TicketJobData>[] {
  return tags.map((tag) => new Queue<TicketJobData>(TICKET_QUEUE, { connection, prefix: keys.queuePrefix(tag), ...BULLMQ_CONNECTION }));
}

/** Jobs by state, summed over the shards. */
export async function jobCounts(queues: readonly Queue[], ...states: JobType[]): Promise<Record<string, number>> {
  const sum: Record<string, number> = Object.fromEntries(states.map((s) => [s, 0]));
  for (const counts of await Promise.all(queues.map((q) => q.getJobCounts(...states)))) for (const s of states) sum[s]! += counts[s] ?? 0;
  return sum;
}

/** Emits 'added' (shard index) once jobs were added to a shard. */
export class TicketQueue extends EventEmitter {
  readonly queues: Queue<TicketJobData>[];
  /** The shard the next job goes to. */
  private turn = 0;
  /** Jobs added so far (a counter for metrics: keys per job is what BullMQ's cost is shared by). */
  added = 0;
  /** Each shard's slot, where the connection is a cluster client (its adds follow a failover). */
  private readonly slots: number[];
  private readonly cluster: Cluster | undefined;

  constructor(
    connection: ConnectionOptions,
    keys: Keys,
    readonly retry: RetryPolicy,
    shards: number,
  ) {
    super();
    const tags = queueShardTags(shards);
    this.queues = openShards(connection, keys, tags);
    this.cluster = connection instanceof Cluster ? connection : undefined;
    this.slots = tags.map((tag) => keySlot(keys.queuePrefix(tag)));
  }

  /**
   * Enqueues the items as jobs of at most `perJob` keys, each job in the next shard in turn: one
   * round trip a shard used. A job's keys may live on any master (its values are read one call a
   * node): what BullMQ costs a job is paid once a batch, not once a shard, and the turns spread
   * the jobs evenly over the shards' masters.
   */
  async enqueue(items: readonly CoalescedKey[], perJob: number): Promise<void> {
    const byShard = this.queues.map(() => [] as { name: string; data: TicketJobData; opts: JobsOptions }[]);
    for (let at = 0; at < items.length; at += perJob) {
      byShard[this.turn]!.push({
        name: 'tickets',
        data: { items: encodeItems(items.slice(at, at + perJob)) },
        opts: {
          attempts: this.retry.attempts,
          backoff: { type: 'fixed' as const, delay: this.retry.backoffMs },
          removeOnComplete: true,
          removeOnFail: false,
        },
      });
      this.turn = (this.turn + 1) % this.queues.length;
    }
    // A lone job goes with add: addBulk builds an ioredis pipeline, which copies every script
    // defined on the client (BullMQ's and ours) for one command.
    await Promise.all(
      byShard.map(async (jobs, i) => {
        const queue = this.queues[i]!;
        if (jobs.length === 0) return;
        const added: Promise<unknown> = jobs.length === 1 ? queue.add(jobs[0]!.name, jobs[0]!.data, jobs[0]!.opts) : queue.addBulk(jobs);
        await (this.cluster ? followFailover(this.cluster, this.slots[i]!, added) : added);
        this.emit('added', i);
      }),
    );
    this.added += Math.ceil(items.length / perJob);
  }

  async close(): Promise<void> {
    await Promise.all(this.queues.map((q) => q.close()));
  }
}
