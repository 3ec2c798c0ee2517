/**
 * The owner side of a dirty stream: the owner of a partition reads its stream through a
 * consumer group, coalesces the entries per key, enqueues one ticket job for them and
 * only then acknowledges (and trims) the entries. Entries a previous owner read but never
 * acknowledged are claimed on takeover. One pump runs per partition at a time.
 */
import type { Logger } from './logger.js';
import { coalesceEntries, type DirtyEntry } from './coalescer.js';
import { DIRTY_FIELDS } from './dirty-writer.js';
import { DIRTY_GROUP, type Keys } from './keys.js';
import { backoff, bufferCommand, type RedisClient } from './redis.js';
import type { Scripts } from './scripts.js';
import type { TicketQueue } from './ticket-queue.js';

export interface DirtyReaderOptions {
  client: RedisClient;
  scripts: Scripts;
  keys: Keys;
  queue: TicketQueue;
  consumer: string;
  batchSize: number;
  logger: Logger;
}

type RawEntry = [Buffer, Buffer[]];

function parseEntries(raw: readonly RawEntry[]): DirtyEntry[] {
  const entries: DirtyEntry[] = [];
  for (const [id, fields] of raw) {
    if (!fields) continue; // an entry deleted while pending
    let key: Buffer | undefined;
    let event = '';
    let at = 0;
    for (let i = 0; i + 1 < fields.length; i += 2) {
      const name = fields[i]!.toString();
      if (name === DIRTY_FIELDS.key) key = fields[i + 1];
      else if (name === DIRTY_FIELDS.event) event = fields[i + 1]!.toString();
      else if (name === DIRTY_FIELDS.at) at = Number(fields[i + 1]!.toString());
    }
    if (key) entries.push({ id: id.toString(), key, event, at });
  }
  return entries;
}

export class DirtyReader {
  private readonly owned = new Set<number>();
  /** Partitions whose entries of earlier consumers are still to be claimed. */
  private readonly toClaim = new Set<number>();
  private readonly running = new Map<number, Promise<void>>();
  private readonly again = new Set<number>();
  /** Keys handed to ticket jobs, and the dirty entries they came from (counters for logs and metrics). */
  enqueued = 0;
  entriesRead = 0;

  constructor(private readonly opts: DirtyReaderOptions) {}

  /** Starts reading a partition just acquired. */
  async own(partition: number): Promise<void> {
    try {
      await this.opts.client.xgroup('CREATE', this.opts.keys.dirty(partition), DIRTY_GROUP, '0', 'MKSTREAM');
    } catch (err) {
      if (!String(err).includes('BUSYGROUP')) throw err;
    }
    this.owned.add(partition);
    this.toClaim.add(partition);
    this.poke(partition);
  }

  /** Stops reading a partition (a pump in flight finishes its batch). */
  disown(partition: number): void {
    this.owned.delete(partition);
    this.toClaim.delete(partition);
  }

  /** Something was appended to the partition's stream. */
  poke(partition: number): void {
    if (!this.owned.has(partition)) return;
    if (this.running.has(partition)) {
      this.again.add(partition);
      return;
    }
    const run = this.pump(partition).finally(() => {
      this.running.delete(partition);
      if (this.again.delete(partition)) this.poke(partition);
    });
    this.running.set(partition, run);
  }

  /** Reads every owned stream (catches other workers' late appends). */
  sweep(): void {
    for (const p of this.owned) this.poke(p);
  }

  /** Resolves when no pump is running. */
  async idle(): Promise<void> {
    while (this.running.size > 0) await Promise.all(this.running.values());
  }

  private async pump(partition: number): Promise<void> {
    let failures = 0;
    while (this.owned.has(partition)) {
      try {
        const entries = this.toClaim.has(partition) ? await this.claim(partition) : await this.read(partition);
        if (entries === null) {
          this.toClaim.delete(partition);
          continue;
        }
        if (entries.length === 0) return;
        const items = coalesceEntries(parseEntries(entries));
        if (items.length > 0) await this.opts.queue.enqueue(partition, items);
        await this.opts.scripts.ackDirty(partition, DIRTY_GROUP, entries.map(([id]) => id.toString()));
        this.enqueued += items.length;
        this.entriesRead += entries.length;
        failures = 0;
      } catch (err) {
        failures++;
        this.opts.logger.warn('dirty stream read failed; retrying', { partition, err: String(err) });
        await new Promise((r) => setTimeout(r, backoff(failures)));
      }
    }
  }

  /** New entries, [] when there are none. */
  private async read(partition: number): Promise<RawEntry[]> {
    const { client, keys, consumer, batchSize } = this.opts;
    const reply = (await bufferCommand(client, 'xreadgroup')('GROUP', DIRTY_GROUP, consumer, 'COUNT', batchSize, 'STREAMS', keys.dirty(partition), '>')) as [Buffer, RawEntry[]][] | null;
    return reply?.[0]?.[1] ?? [];
  }

  /** Entries pending for any consumer (a previous owner), null once none is left. */
  private async claim(partition: number): Promise<RawEntry[] | null> {
    const { client, keys, consumer, batchSize } = this.opts;
    const [, claimed] = (await bufferCommand(client, 'xautoclaim')(keys.dirty(partition), DIRTY_GROUP, consumer, 0, '0-0', 'COUNT', batchSize)) as [Buffer, RawEntry[], Buffer[]];
    return claimed.length > 0 ? claimed : null;
  }
}
