/**
 * The owner side of a dirty stream: the owner of a partition reads its stream through a
 * consumer group, coalesces the entries per key, enqueues one ticket job for them and
 * only then acknowledges (and deletes) the entries. Entries a previous owner read but never
 * acknowledged are claimed on takeover. One pump runs per partition at a time.
 *
 * What the owner appended itself it already holds, ids included: those entries are enqueued from
 * memory and deleted, without a read back (a round trip a master a round). Left unread in the
 * stream until then, they are what a reader of the stream would get next, so a crash, a lost
 * partition or a failed round leaves them to the next read, by whoever owns the partition.
 */
import type { Logger } from './logger.js';
import { coalesceEntries, type DirtyEntry } from './coalescer.js';
import { DIRTY_FIELDS } from './dirty-writer.js';
import { DIRTY_GROUP, type Keys } from './keys.js';
import { backoff, bufferCommand, byNode, followFailover, perNode, type RedisClient } from './redis.js';
import { keySlot } from './slots.js';
import type { Scripts } from './scripts.js';
import type { TicketQueue } from './ticket-queue.js';

export interface DirtyReaderOptions {
  client: RedisClient;
  scripts: Scripts;
  keys: Keys;
  queue: TicketQueue;
  consumer: string;
  batchSize: number;
  /** Shortest time between the starts of two reading rounds (TG_READ_INTERVAL_MS). */
  roundIntervalMs: number;
  /** Longest another worker may still append to a stream after handing it over (it gathers keys up to TG_FLUSH_MAX_WAIT_MS). */
  lateAppendMs: number;
  logger: Logger;
}

type RawEntry = [Buffer, Buffer[]];

/** Sweeps between two claims of entries left pending by any consumer. */
const CLAIM_EVERY_SWEEPS = 6;

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
  /** Partitions whose pending entries (of earlier consumers, or of a failed round) are to be claimed. */
  private readonly toClaim = new Set<number>();
  /** Owned partitions with entries to read. */
  private readonly dirty = new Set<number>();
  /** Per owned partition: entries this worker appended, for the next round to take as they are. */
  private readonly appendedHere = new Map<number, DirtyEntry[]>();
  private running: Promise<void> | undefined;
  /** Per partition just acquired: the second look for its previous owner's late appends. */
  private readonly secondLooks = new Map<number, NodeJS.Timeout>();
  private sweeps = 0;
  private lastRound = 0;
  /** Keys handed to ticket jobs, and the dirty entries they came from, read or appended here (counters for logs and metrics). */
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
    clearTimeout(this.secondLooks.get(partition));
    this.secondLooks.set(
      partition,
      setTimeout(() => {
        this.secondLooks.delete(partition);
        this.poke(partition);
      }, this.opts.lateAppendMs),
    );
  }

  /** Stops reading a partition (a round in flight finishes its batch). */
  disown(partition: number): void {
    clearTimeout(this.secondLooks.get(partition));
    this.secondLooks.delete(partition);
    this.owned.delete(partition);
    this.toClaim.delete(partition);
    this.dirty.delete(partition);
    // Unread in the stream, they are the next owner's.
    this.appendedHere.delete(partition);
  }

  /** This worker appended entries to the partition's stream: its owner takes them as they are. */
  appended(partition: number, entries: readonly DirtyEntry[]): void {
    if (!this.owned.has(partition)) return;
    const held = this.appendedHere.get(partition);
    if (held) held.push(...entries);
    else this.appendedHere.set(partition, [...entries]);
    this.kick();
  }

  /** The partition's stream may hold entries to read (another worker's appends, a claim, a sweep). */
  private poke(partition: number): void {
    if (!this.owned.has(partition)) return;
    this.dirty.add(partition);
    this.kick();
  }

  private kick(): void {
    // Work that arrives between the end of a loop and its cleanup must start the next one. The
    // loop starts after the current task: an append hands over its partitions one by one, and a
    // round started at the first would carry that partition alone (a ticket job for a key or two)
    // and leave the others to a second round.
    this.running ??= Promise.resolve().then(() => this.loop()).finally(() => {
      this.running = undefined;
      if (this.hasWork()) this.kick();
    });
  }

  private hasWork(): boolean {
    return this.dirty.size > 0 || this.appendedHere.size > 0;
  }

  /**
   * Reads every owned stream (catches other workers' late appends); every few sweeps also
   * claims what any consumer read but never acknowledged (a previous owner that stalled).
   */
  sweep(): void {
    if (++this.sweeps % CLAIM_EVERY_SWEEPS === 0) for (const p of this.owned) this.toClaim.add(p);
    for (const p of this.owned) this.poke(p);
  }

  /** Resolves once no reading round runs or waits. */
  async settled(): Promise<void> {
    while (this.running) await this.running;
  }

  /** Reads every owned stream a last time, then stops reading. */
  async close(): Promise<void> {
    this.sweep();
    await this.settled();
    for (const partition of [...this.owned]) this.disown(partition);
  }

  private async loop(): Promise<void> {
    let failures = 0;
    while (this.hasWork()) {
      // Rounds start at most every roundIntervalMs: under a light load a round would carry a key
      // or two, and a ticket job's fixed cost would be paid per key; under a heavy one rounds take
      // longer than that anyway.
      const wait = this.lastRound + this.opts.roundIntervalMs - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      this.lastRound = Date.now();
      try {
        await this.round();
        failures = 0;
      } catch (err) {
        failures++;
        this.opts.logger.warn('dirty stream read failed; retrying', { err: String(err) });
        await new Promise((r) => setTimeout(r, backoff(failures)));
      }
    }
  }

  /**
   * One round over every partition with news: read (or claim) a batch of each, and take what this
   * worker appended, fold them per key, enqueue them as jobs of up to batchSize keys whatever
   * their partition (so the number of jobs follows the load, not the number of partitions), then
   * acknowledge.
   */
  private async round(): Promise<void> {
    const { batchSize, queue, scripts } = this.opts;
    const partitions = [...this.dirty].filter((p) => this.owned.has(p));
    this.dirty.clear();
    const got: { partition: number; entries: DirtyEntry[]; ids: string[] }[] = [];
    for (const [partition, entries] of this.appendedHere) got.push({ partition, entries, ids: entries.map((e) => e.id) });
    this.appendedHere.clear();
    const reads = await this.takeAll(partitions);
    let readError: unknown;
    reads.forEach((r, i) => {
      const partition = partitions[i]!;
      if (r.status === 'rejected') {
        readError = r.reason;
        this.dirty.add(partition);
      } else if (r.value.length > 0) {
        // Acknowledged by every id read, entries deleted while pending (no fields) included.
        got.push({ partition, entries: parseEntries(r.value), ids: r.value.map(([id]) => id.toString()) });
        // A full batch may have more behind it; a claim goes on until nothing is pending.
        if (r.value.length >= batchSize || this.toClaim.has(partition)) this.dirty.add(partition);
      }
    });
    if (got.length > 0) {
      try {
        const items = got.flatMap((g) => coalesceEntries(g.entries));
        await queue.enqueue(items, batchSize);
        await Promise.all(
          this.byNode(got, (g) => g.partition).map(async (group) => {
            const acks = group.map((g) => ({ partition: g.partition, ids: g.ids }));
            // One call a node; where it is refused (a slot moved), stream by stream.
            if (acks.length > 1 && (await this.routed(acks[0]!.partition, scripts.ackDirties(DIRTY_GROUP, acks)).then(() => true, () => false))) return;
            await Promise.all(acks.map((a) => this.routed(a.partition, scripts.ackDirty(a.partition, DIRTY_GROUP, a.ids))));
          }),
        );
        this.enqueued += items.length;
        this.entriesRead += got.reduce((n, g) => n + g.ids.length, 0);
      } catch (err) {
        // Entries read stay pending for this consumer: claim them again rather than read past
        // them. Entries appended here were never read: the next read finds them.
        for (const g of got) {
          if (!this.owned.has(g.partition)) continue;
          this.toClaim.add(g.partition);
          this.dirty.add(g.partition);
        }
        throw err;
      }
    }
    if (readError !== undefined) throw readError;
  }

  /** The reply of a command on the partition's stream, or a LateAnswer once its master was replaced while it went unanswered. */
  private routed<T>(partition: number, reply: Promise<T>): Promise<T> {
    return followFailover(this.opts.client, keySlot(this.opts.keys.dirty(partition)), reply);
  }

  /** Partitions (or items of them) grouped by the Redis node that serves their dirty stream. */
  private byNode<T>(items: readonly T[], partitionOf: (item: T) => number): T[][] {
    return byNode(this.opts.client, items, (item) => keySlot(this.opts.keys.dirty(partitionOf(item))));
  }

  /**
   * What take() gives for each partition, in order, one call a Redis node for each step: the
   * claims first, then a read of the streams that had nothing to claim and of the others (stream
   * by stream where a call is refused: claims as they are, reads claim first).
   */
  private async takeAll(partitions: readonly number[]): Promise<PromiseSettledResult<RawEntry[]>[]> {
    const { scripts, consumer, batchSize } = this.opts;
    const results = new Map<number, PromiseSettledResult<RawEntry[]>>();
    const settle = async (p: number, read: Promise<RawEntry[]>) => void results.set(p, (await Promise.allSettled([read]))[0]!);
    const claiming = partitions.filter((p) => this.toClaim.has(p));
    const claims = await perNode(
      this.opts.client,
      claiming,
      (p) => keySlot(this.opts.keys.dirty(p)),
      async (group) => (await scripts.claimDirty(group, DIRTY_GROUP, consumer, batchSize)).map((value): PromiseSettledResult<RawEntry[]> => ({ status: 'fulfilled', value })),
      async (p) => (await Promise.allSettled([this.claim(p)]))[0]!,
    );
    claiming.forEach((p, i) => {
      const claim = claims[i]!;
      // Nothing pending: the stream is read with the others.
      if (claim.status === 'fulfilled' && claim.value.length === 0) this.toClaim.delete(p);
      else results.set(p, claim);
    });
    const fresh = partitions.filter((p) => !results.has(p));
    await Promise.all(
      this.byNode(fresh, (p) => p).map(async (group) => {
        if (group.length === 1) return settle(group[0]!, this.read(group[0]!));
        try {
          const replies = await this.routed(group[0]!, scripts.readDirty(group, DIRTY_GROUP, consumer, batchSize));
          group.forEach((p, i) => results.set(p, { status: 'fulfilled', value: replies[i] ?? [] }));
        } catch {
          // A call refused midway may have delivered some streams' entries: claim them first.
          for (const p of group) this.toClaim.add(p);
          await Promise.all(group.map((p) => settle(p, this.take(p))));
        }
      }),
    );
    return partitions.map((p) => results.get(p)!);
  }

  /** Claimed entries while any are pending, else new ones; [] when there are none. */
  private async take(partition: number): Promise<RawEntry[]> {
    if (this.toClaim.has(partition)) {
      const claimed = await this.claim(partition);
      if (claimed.length > 0) return claimed;
      this.toClaim.delete(partition);
    }
    return this.read(partition);
  }

  /** New entries, [] when there are none. */
  private async read(partition: number): Promise<RawEntry[]> {
    const { client, keys, consumer, batchSize } = this.opts;
    const reply = (await this.routed(partition, bufferCommand(client, 'xreadgroup')('GROUP', DIRTY_GROUP, consumer, 'COUNT', batchSize, 'STREAMS', keys.dirty(partition), '>'))) as [Buffer, RawEntry[]][] | null;
    return reply?.[0]?.[1] ?? [];
  }

  /** Entries pending for any consumer (a previous owner, or this one after a failed round). */
  private async claim(partition: number): Promise<RawEntry[]> {
    const { client, keys, consumer, batchSize } = this.opts;
    const [, claimed] = (await this.routed(partition, bufferCommand(client, 'xautoclaim')(keys.dirty(partition), DIRTY_GROUP, consumer, 0, '0-0', 'COUNT', batchSize))) as [Buffer, RawEntry[], Buffer[]];
    return claimed;
  }
}
