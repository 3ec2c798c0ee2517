/**
 * The BullMQ queues that make tickets, one a shard (lib/shards.ts). One job carries a
 * coalesced batch of dirty keys of one shard, so the per-job cost of BullMQ is shared by many
 * keys. Keys travel as base64 so any byte content survives BullMQ's JSON encoding.
 */
import { Queue, type ConnectionOptions, type JobType } from 'bullmq';
import type { CoalescedKey } from './coalescer.js';
import { TICKET_QUEUE, type Keys } from './keys.js';
import { queueShardTags, shardOfSlot } from './shards.js';
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

/** The queues of these shard tags (queueShardTags), for readers of their depth too (tg info, the load test). */
export function openShards(connection: ConnectionOptions, keys: Keys, tags: readonly string[]): Queue<TicketJobData>[] {
  return tags.map((tag) => new Queue<TicketJobData>(TICKET_QUEUE, { connection, prefix: keys.queuePrefix(tag) }));
}

/** Jobs by state, summed over the shards. */
export async function jobCounts(queues: readonly Queue[], ...states: JobType[]): Promise<Record<string, number>> {
  const sum: Record<string, number> = Object.fromEntries(states.map((s) => [s, 0]));
  for (const counts of await Promise.all(queues.map((q) => q.getJobCounts(...states)))) for (const s of states) sum[s]! += counts[s] ?? 0;
  return sum;
}

export class TicketQueue {
  readonly queues: Queue<TicketJobData>[];

  constructor(
    connection: ConnectionOptions,
    keys: Keys,
    private readonly retry: RetryPolicy,
    shards: number,
  ) {
    this.queues = openShards(connection, keys, queueShardTags(shards));
  }

  /** Enqueues the items, each in its key's shard, as jobs of at most `perJob` keys: one round trip a shard. */
  async enqueue(items: readonly CoalescedKey[], perJob: number): Promise<void> {
    const byShard = this.queues.map(() => [] as CoalescedKey[]);
    for (const item of items) byShard[shardOfSlot(keySlot(item.key), this.queues.length)]!.push(item);
    await Promise.all(
      byShard.map((shard, i) => {
        if (shard.length === 0) return undefined;
        const jobs = [];
        for (let at = 0; at < shard.length; at += perJob) {
          jobs.push({
            name: 'tickets',
            data: { items: encodeItems(shard.slice(at, at + perJob)) },
            opts: {
              attempts: this.retry.attempts,
              backoff: { type: 'fixed' as const, delay: this.retry.backoffMs },
              removeOnComplete: true,
              removeOnFail: false,
            },
          });
        }
        return this.queues[i]!.addBulk(jobs);
      }),
    );
  }

  async close(): Promise<void> {
    await Promise.all(this.queues.map((q) => q.close()));
  }
}
