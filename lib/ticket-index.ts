/**
 * The ticket index: per partition, what the newest ticket of each key says, its seq and a
 * digest of its value (lua/includes/value-digest.lua). Ticket jobs record it right after
 * the sink (lua/record-tickets.lua, monotonic in seq); exact repair and reconciliation
 * compare it with what Redis holds. Parsing and the comparison are pure.
 */
import type { Keys } from './keys.js';
import type { RedisClient } from './redis.js';
import { bufferCommand } from './redis.js';

export interface IndexEntry {
  seq: string;
  /** '' for a deletion (a tombstone); FAILED_DIGEST where the job of that seq failed for good. */
  digest: string;
}

/** Digest of an entry whose ticket job failed for good: it matches no value, so reconciliation makes the ticket. */
export const FAILED_DIGEST = '-';

/**
 * Seq of an entry adopted from Redis without a ticket, `0-<Redis ms of the adoption>`: older
 * than any ticket's, and telling when the value was taken as known.
 */
export function adoptedSeq(redisMs: number): string {
  return `0-${Math.floor(redisMs)}`;
}

/** Redis ms at which an entry was adopted; -1 for an entry a ticket wrote. */
export function adoptedAt(entry: IndexEntry): number {
  return entry.seq.startsWith('0-') ? Number(entry.seq.slice(2)) : -1;
}

export function parseIndexEntry(raw: Buffer | string | null | undefined): IndexEntry | undefined {
  if (raw === null || raw === undefined) return undefined;
  const text = raw.toString();
  const space = text.indexOf(' ');
  if (space < 0) return undefined;
  return { seq: text.slice(0, space), digest: text.slice(space + 1) };
}

/** Whether a key whose value has this digest now ('' when absent) needs a ticket. */
export function needsTicket(entry: IndexEntry | undefined, digest: string): boolean {
  return entry === undefined ? digest !== '' : entry.digest !== digest;
}

/** Epoch ms of a seq ('ms-n'). */
export function seqMs(seq: string): number {
  return Number(seq.slice(0, seq.indexOf('-')));
}

export class TicketIndex {
  constructor(
    private readonly client: RedisClient,
    private readonly keys: Keys,
  ) {}

  /** The entries of some keys of a partition, in order (undefined where none). */
  async lookup(partition: number, keys: readonly Buffer[]): Promise<(IndexEntry | undefined)[]> {
    if (keys.length === 0) return [];
    const raw = (await bufferCommand(this.client, 'hmget')(this.keys.index(partition), ...keys)) as (Buffer | null)[];
    return raw.map(parseIndexEntry);
  }

  /** Entries of each partition's index, tombstones included (an HLEN each, all sent at once). */
  async sizes(partitions: readonly number[]): Promise<number[]> {
    return Promise.all(partitions.map((p) => this.client.hlen(this.keys.index(p))));
  }

  /** One HSCAN page of a partition's index. */
  async scan(partition: number, cursor: string, count: number): Promise<{ cursor: string; entries: [Buffer, IndexEntry][] }> {
    const [next, flat] = (await bufferCommand(this.client, 'hscan')(this.keys.index(partition), cursor, 'COUNT', count)) as [Buffer, Buffer[]];
    const entries: [Buffer, IndexEntry][] = [];
    for (let i = 0; i + 1 < flat.length; i += 2) {
      const entry = parseIndexEntry(flat[i + 1]);
      if (entry) entries.push([flat[i]!, entry]);
    }
    return { cursor: next.toString(), entries };
  }
}
