/**
 * The BullMQ queue that makes tickets. One job carries a coalesced batch of dirty keys
 * (of any partitions the worker owns), so the per-job cost of BullMQ is shared by many keys. Keys travel as
 * base64 so any byte content survives BullMQ's JSON encoding.
 */
import { Queue, type ConnectionOptions } from 'bullmq';
import type { CoalescedKey } from './coalescer.js';
import { TICKET_QUEUE, type Keys } from './keys.js';

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

export class TicketQueue {
  readonly queue: Queue<TicketJobData>;

  constructor(
    connection: ConnectionOptions,
    keys: Keys,
    private readonly retry: RetryPolicy,
  ) {
    this.queue = new Queue<TicketJobData>(TICKET_QUEUE, { connection, prefix: keys.queuePrefix() });
  }

  /** Enqueues the items as jobs of at most `perJob` keys, in one round trip. */
  async enqueue(items: readonly CoalescedKey[], perJob: number): Promise<void> {
    const jobs = [];
    for (let i = 0; i < items.length; i += perJob) {
      jobs.push({
        name: 'tickets',
        data: { items: encodeItems(items.slice(i, i + perJob)) },
        opts: {
          attempts: this.retry.attempts,
          backoff: { type: 'fixed' as const, delay: this.retry.backoffMs },
          removeOnComplete: true,
          removeOnFail: false,
        },
      });
    }
    await this.queue.addBulk(jobs);
  }

  close(): Promise<void> {
    return this.queue.close();
  }
}
