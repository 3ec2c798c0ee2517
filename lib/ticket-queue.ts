/**
 * The BullMQ queue that makes tickets. One job carries a coalesced batch of dirty keys of
 * one partition, so the per-job cost of BullMQ is shared by many keys. Keys travel as
 * base64 so any byte content survives BullMQ's JSON encoding.
 */
import { Queue, type ConnectionOptions } from 'bullmq';
import type { CoalescedKey } from './coalescer.js';
import { TICKET_QUEUE, type Keys } from './keys.js';

/** [key (base64), last event, seq, dirtyAt] */
export type TicketItem = [string, string, string, number];

export interface TicketJobData {
  partition: number;
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
 * Retries of a failing ticket job: a Redis outage or a sink that is down for minutes must
 * not exhaust them. A job that still fails stays in BullMQ's failed set for an operator.
 */
export const TICKET_JOB_ATTEMPTS = 100;
export const TICKET_JOB_BACKOFF_MS = 1000;

export class TicketQueue {
  readonly queue: Queue<TicketJobData>;

  constructor(connection: ConnectionOptions, keys: Keys) {
    this.queue = new Queue<TicketJobData>(TICKET_QUEUE, { connection, prefix: keys.queuePrefix() });
  }

  async enqueue(partition: number, items: readonly CoalescedKey[]): Promise<void> {
    await this.queue.add(
      'tickets',
      { partition, items: encodeItems(items) },
      {
        attempts: TICKET_JOB_ATTEMPTS,
        backoff: { type: 'fixed', delay: TICKET_JOB_BACKOFF_MS },
        removeOnComplete: true,
        removeOnFail: false,
      },
    );
  }

  close(): Promise<void> {
    return this.queue.close();
  }
}
