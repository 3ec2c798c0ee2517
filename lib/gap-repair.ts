/**
 * Gap repair: when nobody listened to some slots for a while (a crashed owner, a dropped
 * subscriber, a restarted master), list the keys of those slots and mark dirty every
 * watched key touched within the gap, by OBJECT IDLETIME (reads reset it too, so this
 * over-approximates), or every key where idle time is not tracked (an LFU maxmemory
 * policy). A cluster is listed slot by slot (CLUSTER GETKEYSINSLOT) on the node that
 * serves it; a standalone server by one SCAN for all pending partitions. Work goes in
 * bounded batches so live ingest keeps its turn.
 */
import type { Redis } from 'ioredis';
import { globMatcher } from './glob.js';
import type { Keys } from './keys.js';
import type { Logger } from './logger.js';
import { connectNode, type RedisTarget } from './redis.js';
import { keySlot, partitionOfSlot, slotRangeOfPartition } from './slots.js';

/** Added to every gap: idle time has one-second resolution, and clocks drift. */
export const REPAIR_MARGIN_MS = 2000;
const BATCH = 500;

export interface GapRepairOptions {
  target: RedisTarget;
  keys: Keys;
  watch: string;
  partitions: number;
  logger: Logger;
  /** The master serving a slot, as `host:port`. */
  nodeOfSlot: (slot: number) => string | undefined;
  markDirty: (partition: number, key: Buffer) => void;
}

export interface RepairStats {
  repairs: number;
  keysScanned: number;
  keysMarked: number;
  ms: number;
}

export class GapRepairer {
  /** Partition -> longest gap (ms) asked for. */
  private pending = new Map<number, number>();
  private running: Promise<void> | undefined;
  private readonly conns = new Map<string, Redis>();
  private readonly matches: (key: Buffer) => boolean;
  readonly stats: RepairStats = { repairs: 0, keysScanned: 0, keysMarked: 0, ms: 0 };

  constructor(private readonly opts: GapRepairOptions) {
    this.matches = globMatcher(opts.watch);
  }

  /** Asks for a repair of a partition's slots over the last `gapMs`. */
  request(partition: number, gapMs: number): void {
    this.pending.set(partition, Math.max(this.pending.get(partition) ?? 0, gapMs));
    this.kick();
  }

  private kick(): void {
    // A request that arrives between the end of a run and its cleanup must start the next one.
    this.running ??= this.run().finally(() => {
      this.running = undefined;
      if (this.pending.size > 0) this.kick();
    });
  }

  /** Resolves when no repair is pending or running. */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  /** Finishes the repairs asked for (their marks may be all that is left of a gap), then disconnects. */
  async close(): Promise<void> {
    await this.idle();
    for (const c of this.conns.values()) c.disconnect();
    this.conns.clear();
  }

  private async run(): Promise<void> {
    while (this.pending.size > 0) {
      const batch = this.pending;
      this.pending = new Map();
      const started = Date.now();
      const before = { ...this.stats };
      try {
        if (this.opts.target.cluster) {
          for (const [partition, gapMs] of batch) await this.repairClusterPartition(partition, gapMs);
        } else {
          await this.repairStandalone(batch);
        }
      } catch (err) {
        this.opts.logger.warn('gap repair failed; retrying', { partitions: batch.size, err: String(err) });
        for (const [p, g] of batch) this.pending.set(p, Math.max(this.pending.get(p) ?? 0, g + (Date.now() - started)));
        await new Promise((r) => setTimeout(r, 1000));
        continue;
      }
      const ms = Date.now() - started;
      this.stats.repairs += batch.size;
      this.stats.ms += ms;
      this.opts.logger.info('gap repaired', {
        partitions: batch.size,
        gapMs: Math.max(...batch.values()),
        keysScanned: this.stats.keysScanned - before.keysScanned,
        keysMarked: this.stats.keysMarked - before.keysMarked,
        ms,
      });
    }
  }

  private conn(name: string): Redis {
    let c = this.conns.get(name);
    if (!c) {
      const [host, port] = [name.slice(0, name.lastIndexOf(':')), Number(name.slice(name.lastIndexOf(':') + 1))];
      c = connectNode(this.opts.target, { host, port }, { maxRetriesPerRequest: 3, connectionName: 'tg-repair' });
      c.on('error', () => undefined);
      this.conns.set(name, c);
    }
    return c;
  }

  private async repairClusterPartition(partition: number, gapMs: number): Promise<void> {
    const { first, last } = slotRangeOfPartition(partition, this.opts.partitions);
    for (let slot = first; slot <= last; slot++) {
      const node = this.opts.nodeOfSlot(slot);
      if (!node) throw new Error(`no master known for slot ${slot}`);
      const keys = await this.keysInSlot(this.conn(node), slot);
      for (let i = 0; i < keys.length; i += BATCH) await this.check(this.conn(node), keys.slice(i, i + BATCH), () => partition, gapMs);
    }
  }

  /**
   * Every key of a slot. GETKEYSINSLOT has no cursor and keys keep arriving under load, so a
   * count read first could cut some off: ask for more than there are until fewer come back.
   */
  private async keysInSlot(c: Redis, slot: number): Promise<Buffer[]> {
    let want = (await c.cluster('COUNTKEYSINSLOT', slot)) * 2 + 100;
    for (;;) {
      const keys = (await c.callBuffer('CLUSTER', 'GETKEYSINSLOT', slot, want)) as Buffer[];
      if (keys.length < want) return keys;
      want *= 2;
    }
  }

  private async repairStandalone(batch: Map<number, number>): Promise<void> {
    const c = this.conn(this.opts.nodeOfSlot(0)!);
    const { partitions } = this.opts;
    const gapMs = Math.max(...batch.values());
    let cursor = '0';
    do {
      const [next, keys] = (await c.scanBuffer(cursor, 'MATCH', this.opts.watch, 'COUNT', 1000)) as unknown as [Buffer, Buffer[]];
      cursor = next.toString();
      const wanted = keys.filter((k) => batch.has(partitionOfSlot(keySlot(k), partitions)));
      await this.check(c, wanted, (k) => partitionOfSlot(keySlot(k), partitions), gapMs);
    } while (cursor !== '0');
  }

  /** Marks dirty the watched keys of a batch idle no longer than the gap. */
  private async check(c: Redis, keys: Buffer[], partitionOf: (key: Buffer) => number, gapMs: number): Promise<void> {
    const watched = keys.filter((k) => !this.opts.keys.isOwn(k) && this.matches(k));
    this.stats.keysScanned += watched.length;
    if (watched.length === 0) return;
    const pipeline = c.pipeline();
    for (const k of watched) pipeline.object('IDLETIME', k);
    const replies = (await pipeline.exec()) ?? [];
    const limitSeconds = Math.ceil((gapMs + REPAIR_MARGIN_MS) / 1000);
    watched.forEach((key, i) => {
      const [err, idle] = replies[i] ?? [null, null];
      // LFU policies do not track idle time; a key gone meanwhile gave its own event.
      const touched = err ? /LFU/i.test(String(err)) : idle !== null && (idle as number) <= limitSeconds;
      if (touched) {
        this.opts.markDirty(partitionOf(key), key);
        this.stats.keysMarked++;
      }
    });
  }
}
