/**
 * Exact repair and reconciliation: compares what Redis holds with what the tickets say (the
 * ticket index) and marks dirty every watched key whose newest ticket is not its value:
 * changed keys, keys the index lacks, and indexed keys that are gone (they get their
 * deletion ticket). Nothing here guesses from access times, so it holds during a BGSAVE,
 * under LFU policies, with CLIENT NO-TOUCH, and after a failover that reverted writes.
 *
 * A pass over partitions goes two ways, in bounded batches: forward, the keys Redis lists
 * for the partitions' slots looked up in the index, the unknown ones digested; backward, the
 * index (HSCAN) with the digest of what each indexed key holds now. What it reads of the
 * keyspace, it reads one script call a node (lib/keyspace-reads.ts).
 *
 * Modes: 'repair' after a window nobody heard (marks every difference at once), 'backfill'
 * for a partition covered the first time (the same: every existing key gets a ticket),
 * 'adopt' for a first coverage without backfill (keys the index lacks are recorded as they
 * are, without a ticket, stamped with the Redis time of adoption: a repair of a window that
 * began before that stamp trusts no such entry, as the value adopted may be the window's
 * unheard change), and 'reconcile', the continuous pass at a bounded rate: a
 * difference counts as divergent only if it still stands, unchanged, after a grace period
 * (a key whose ticket is merely in flight changes its index entry meanwhile).
 */
import { globMatcher } from './glob.js';
import { groupBy, perGroup, sizedGroups } from './group-by.js';
import type { Keys } from './keys.js';
import { KeyspaceReads } from './keyspace-reads.js';
import type { Logger } from './logger.js';
import { silentLogger } from './logger.js';
import { masters, slotNodes, type RedisClient, type RedisTarget } from './redis.js';
import { Scripts } from './scripts.js';
import { keySlot, partitionOfSlot, slotRangeOfPartition } from './slots.js';
import { adoptedAt, adoptedSeq, needsTicket, seqMs, TicketIndex, type IndexEntry } from './ticket-index.js';

export type PassMode = 'repair' | 'backfill' | 'adopt' | 'reconcile';

/** Keys a batch compares. */
const BATCH = 500;

/** Partitions a step of the continuous pass compares: their counts and index sizes are read together. */
const STEP_PARTITIONS = 16;

/** The continuous pass runs ahead of its rate by up to this much before it waits (each wait is a wake-up). */
const PACE_SLACK_MS = 20;

/** Tombstones older than this are forgotten: no ticket job lives that long. */
export const TOMBSTONE_RETENTION_MS = 3_600_000;

/** Most differences waiting for their grace period; past it they are marked at once. */
const MAX_CANDIDATES = 100_000;

export interface Divergence {
  partition: number;
  key: Buffer;
  /** What the index says (undefined: nothing), and the digest of what Redis holds ('' gone). */
  indexed: IndexEntry | undefined;
  digest: string;
}

export interface ReconcilerOptions {
  target: RedisTarget;
  /** Command connection (cluster-aware): the index. */
  client: RedisClient;
  keys: Keys;
  watch: string;
  partitions: number;
  logger: Logger;
  /** The master serving a slot, as `host:port`. */
  nodeOfSlot: (slot: number) => string | undefined;
  /**
   * A read of a master not answered within this many ms fails the pass, which is asked again on
   * the topology as it is then (0 or none: wait for ever). A master frozen after its replica took
   * over answers nothing and closes nothing: without it, every repair after it waited for ever.
   */
  commandTimeoutMs?: number;
  /** Partitions the continuous pass goes over. */
  owned: () => number[];
  /** Keys per second of the continuous pass; 0: no continuous pass. */
  ratePerSecond: number;
  /** Shortest time between the starts of two continuous passes. */
  minPassMs: number;
  graceMs: number;
  /** Redis time now, ms. */
  redisNow: () => number;
  /** A key needs a ticket (repair, backfill, or a divergence that stood its grace). */
  markDirty: (partition: number, key: Buffer, event: string) => void;
  /** A difference found by the continuous pass stood its grace period. */
  onDivergent?: (d: Divergence) => void;
}

export interface ReconcileStats {
  /** Requested passes done (repair, backfill, adopt). */
  repairs: number;
  /** Continuous passes over every owned partition completed. */
  passes: number;
  keysCompared: number;
  keysMarked: number;
  keysAdopted: number;
  divergent: number;
  tombstonesPruned: number;
  /** Time spent in requested passes, ms. */
  repairMs: number;
}

interface Request {
  mode: Exclude<PassMode, 'reconcile'>;
  since: number;
}

/** Adoptions this close before a window began are not trusted either (clocks of workers differ). */
const ADOPTION_MARGIN_MS = 1000;

interface Candidate extends Divergence {
  due: number;
}

export class Reconciler {
  private readonly index: TicketIndex;
  private readonly matches: (key: Buffer) => boolean;
  private readonly reads: KeyspaceReads;
  /** Requested passes: partition -> mode (repair wins over adopt) and since when (Redis ms) nothing was heard. */
  private requests = new Map<number, Request>();
  private candidates: Candidate[] = [];
  private running: Promise<void> | undefined;
  private closed = false;
  private wake: (() => void) | undefined;
  /** Continuous pass: what is left of the current round, and the pace's start. */
  private round: number[] = [];
  private roundStarted = 0;
  private paceFrom = 0;
  private paced = 0;
  readonly stats: ReconcileStats = { repairs: 0, passes: 0, keysCompared: 0, keysMarked: 0, keysAdopted: 0, divergent: 0, tombstonesPruned: 0, repairMs: 0 };

  constructor(private readonly opts: ReconcilerOptions) {
    this.index = new TicketIndex(opts.client, opts.keys);
    this.matches = globMatcher(opts.watch);
    this.reads = new KeyspaceReads(opts.target, opts.keys, opts.nodeOfSlot, opts.commandTimeoutMs);
  }

  /**
   * Asks for a pass over a partition: after a window nobody heard since `since` (Redis ms), or
   * a first coverage.
   */
  request(partition: number, mode: Request['mode'], since = Number.MAX_SAFE_INTEGER): void {
    const had = this.requests.get(partition);
    const next = had === undefined || had.mode === 'adopt' ? mode : had.mode;
    this.requests.set(partition, { mode: next, since: Math.min(since, had?.since ?? since) });
    this.start();
  }

  /** Runs requested passes, and the continuous pass when a rate is set, until closed. */
  start(): void {
    if (this.closed) return;
    this.running ??= this.loop().finally(() => (this.running = undefined));
    this.wake?.();
  }

  /** A master left the topology (a failover, a resharding): a read still waiting on it fails now. */
  nodeLeft(name: string): void {
    this.reads.forget(name);
  }

  /** Resolves when no requested pass is waiting (the continuous pass may go on). */
  async idle(): Promise<void> {
    while (this.requests.size > 0 && this.running) await new Promise((r) => setTimeout(r, 20));
  }

  /** Finishes the requested passes (their marks may be all that is left of a gap), then stops. */
  async close(): Promise<void> {
    await this.idle();
    this.closed = true;
    this.wake?.();
    await this.running;
    this.reads.close();
  }

  /**
   * One reconciliation of the given partitions, unpaced unless a rate is set, waiting out the
   * grace period of what it found: for `tg reconcile`. Returns the divergences.
   */
  async reconcileOnce(partitions: readonly number[]): Promise<Divergence[]> {
    const found: Divergence[] = [];
    const onDivergent = this.opts.onDivergent;
    this.opts.onDivergent = (d) => {
      found.push(d);
      onDivergent?.(d);
    };
    try {
      await this.compare(partitions, 'reconcile');
      while (this.candidates.length > 0) {
        await sleep(Math.max(0, this.candidates[0]!.due - Date.now()));
        await this.recheck(true);
      }
    } finally {
      this.opts.onDivergent = onDivergent;
      this.reads.close();
    }
    return found;
  }

  private async loop(): Promise<void> {
    let failures = 0;
    while (!this.closed) {
      try {
        if (this.requests.size > 0) await this.runRequests();
        else if (this.opts.ratePerSecond > 0 && this.opts.owned().length > 0) await this.continuousStep();
        else await new Promise<void>((r) => (this.wake = r));
        failures = 0;
      } catch (err) {
        if (this.closed) break;
        failures++;
        this.opts.logger.warn('reconciliation failed; retrying', { err: String(err), requested: this.requests.size });
        await sleep(Math.min(10_000, 500 * failures));
      }
    }
  }

  private async runRequests(): Promise<void> {
    const batch = this.requests;
    this.requests = new Map();
    const started = Date.now();
    const before = { ...this.stats };
    const byMode = new Map<PassMode, { partitions: number[]; since: number }>();
    for (const [p, { mode, since }] of batch) {
      const group = byMode.get(mode) ?? { partitions: [], since };
      group.partitions.push(p);
      group.since = Math.min(group.since, since);
      byMode.set(mode, group);
    }
    try {
      for (const [mode, { partitions, since }] of byMode) await this.compare(partitions, mode, since);
    } catch (err) {
      for (const [p, r] of batch) this.request(p, r.mode, r.since);
      throw err;
    }
    const ms = Date.now() - started;
    this.stats.repairs += batch.size;
    this.stats.repairMs += ms;
    this.opts.logger.info('partitions compared with the ticket index', {
      partitions: batch.size,
      modes: [...byMode.keys()],
      keysCompared: this.stats.keysCompared - before.keysCompared,
      keysMarked: this.stats.keysMarked - before.keysMarked,
      keysAdopted: this.stats.keysAdopted - before.keysAdopted,
      ms,
    });
  }

  /** One partition of the continuous pass (one SCAN of everything owned when standalone). */
  private async continuousStep(): Promise<void> {
    if (this.round.length === 0) {
      // A small keyspace is gone over quickly: passes start no more often than the interval.
      const rest = this.roundStarted + this.opts.minPassMs - Date.now();
      if (rest > 0) {
        // Differences found late in the pass are checked again meanwhile, once their grace is over.
        const due = this.candidates[0]?.due;
        const wait = due === undefined ? rest : Math.min(rest, Math.max(0, due - Date.now()));
        await new Promise<void>((r) => {
          this.wake = r;
          setTimeout(r, wait);
        });
        if (this.candidates.length > 0 && this.candidates[0]!.due <= Date.now()) await this.recheck(false);
        return;
      }
      this.round = this.opts.owned();
      this.roundStarted = Date.now();
    }
    const owned = new Set(this.opts.owned());
    const next = this.opts.target.cluster ? this.round.splice(0, STEP_PARTITIONS) : this.round.splice(0);
    const still = next.filter((p) => owned.has(p));
    if (still.length > 0) await this.compare(still, 'reconcile');
    if (this.round.length === 0) {
      this.stats.passes++;
      this.opts.logger.info('reconciliation pass done', { ms: Date.now() - this.roundStarted, divergent: this.stats.divergent });
    }
  }

  /** Waits so the continuous pass keeps its rate; requested passes and due rechecks go first. */
  private async pace(keys: number, mode: PassMode): Promise<void> {
    if (mode !== 'reconcile' || this.opts.ratePerSecond <= 0) return;
    if (this.closed) throw new Error('reconciler closed');
    if (this.candidates.length > 0 && this.candidates[0]!.due <= Date.now()) await this.recheck(false);
    if (this.requests.size > 0 && this.running) await this.runRequests();
    const now = Date.now();
    if (now - this.paceFrom > 10_000) {
      this.paceFrom = now;
      this.paced = 0;
    }
    this.paced += keys;
    const ahead = this.paceFrom + (this.paced / this.opts.ratePerSecond) * 1000 - now;
    if (ahead > PACE_SLACK_MS) await sleep(ahead);
  }

  /**
   * Compares partitions with the index, both ways, and acts on every difference by mode;
   * entries adopted after `since` (Redis ms) count as unknown.
   */
  private async compare(partitions: readonly number[], mode: PassMode, since = Number.MAX_SAFE_INTEGER): Promise<void> {
    const untrusted = (e: IndexEntry | undefined) => e === undefined || e.digest === '' || adoptedAt(e) >= since - ADOPTION_MARGIN_MS;
    if (partitions.length === 0) return;
    if (this.opts.target.cluster) {
      // What is there to compare, for every partition at once: its slots' key counts (one call a
      // node) and its index's size. An empty partition then costs no round trip of its own.
      const ranges = partitions.map((p) => slotRangeOfPartition(p, this.opts.partitions));
      const [counts, indexed] = await Promise.all([this.reads.slotCounts(ranges), this.index.sizes(partitions)]);
      const held = (i: number) => {
        let n = indexed[i]!;
        for (let slot = ranges[i]!.first; slot <= ranges[i]!.last; slot++) n += counts.get(slot) ?? 0;
        return n;
      };
      // Partitions holding few keys are compared together, up to a batch's worth, and paced once:
      // a sparse keyspace holds a few dozen keys a partition, and one at a time each cost its own
      // round trips and pace, each a wake-up. One holding more is compared alone and paced a batch
      // at a time, so a pass holds about a batch or a partition.
      for (const group of sizedGroups([...partitions.keys()], held, BATCH)) {
        const alone = group.length === 1;
        const settled = await Promise.allSettled(group.map((i) => this.comparePartition(partitions[i]!, ranges[i]!, counts, indexed[i]! > 0, mode, untrusted, alone)));
        const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
        if (failed) throw failed.reason;
        if (!alone) await this.pace(group.reduce((n, i) => n + held(i), 0), mode);
      }
      return;
    }
    const wanted = new Set(partitions);
    let cursor = '0';
    do {
      const page = await this.reads.scan(cursor, this.opts.watch, BATCH);
      const keys = page.keys;
      cursor = page.cursor;
      const byPartition = groupBy(keys, (k) => partitionOfSlot(keySlot(k), this.opts.partitions));
      for (const [p, group] of byPartition) if (wanted.has(p)) await this.forward(p, group, mode, untrusted);
      await this.pace(Math.max(1, keys.length), mode);
    } while (cursor !== '0');
    for (const p of partitions) await this.backward(p, mode, untrusted);
  }

  /** One partition of a cluster, both ways, its slots' key counts read; `paced`: keeps the pace itself. */
  private async comparePartition(
    partition: number,
    { first, last }: { first: number; last: number },
    counts: ReadonlyMap<number, number>,
    indexed: boolean,
    mode: PassMode,
    untrusted: (e: IndexEntry | undefined) => boolean,
    paced: boolean,
  ): Promise<void> {
    // Batches of the partition's keys, not of a slot's: a sparse keyspace holds a key or two a
    // slot, and each batch costs an index lookup and a pace (a wait costs a wake-up).
    const listed = (await this.reads.keysInSlots(first, last, (slot) => counts.get(slot) ?? 0)).flat();
    for (let at = 0; at === 0 || at < listed.length; at += BATCH) {
      const batch = listed.slice(at, at + BATCH);
      await this.forward(partition, batch, mode, untrusted);
      if (paced) await this.pace(Math.max(1, batch.length), mode);
    }
    if (indexed) await this.backward(partition, mode, untrusted, paced);
  }

  /** Keys Redis lists for a partition: those the index lacks, calls deleted or does not vouch for are compared. */
  private async forward(partition: number, listed: readonly Buffer[], mode: PassMode, untrusted: (e: IndexEntry | undefined) => boolean): Promise<void> {
    const keys = listed.filter((k) => !this.opts.keys.isOwn(k) && this.matches(k));
    if (keys.length === 0) return;
    const entries = await this.index.lookup(partition, keys);
    const unknown: Buffer[] = [];
    const unknownEntries: (IndexEntry | undefined)[] = [];
    keys.forEach((k, i) => {
      const e = entries[i];
      if (untrusted(e)) {
        unknown.push(k);
        unknownEntries.push(e);
      }
    });
    const digests = await this.reads.digests(unknown);
    // Known keys are compared by the backward half.
    await this.act(partition, unknown, unknownEntries, digests, mode, untrusted);
  }

  /** The index of a partition: every indexed key compared with what it holds now; old tombstones pruned. `paced`: keeps the pace itself. */
  private async backward(partition: number, mode: PassMode, untrusted: (e: IndexEntry | undefined) => boolean, paced = true): Promise<void> {
    let cursor = '0';
    do {
      const page = await this.index.scan(partition, cursor, BATCH);
      cursor = page.cursor;
      const live = page.entries.filter(([, e]) => e.digest !== '');
      const digests = await this.reads.digests(live.map(([k]) => k));
      await this.act(
        partition,
        live.map(([k]) => k),
        live.map(([, e]) => e),
        digests,
        mode,
        untrusted,
      );
      const cutoff = Date.now() - TOMBSTONE_RETENTION_MS;
      const old = page.entries.filter(([, e]) => e.digest === '' && seqMs(e.seq) < cutoff).map(([k]) => k);
      // Counted after the await: partitions are compared together, and `x += await` would add to a stale x.
      const pruned = old.length > 0 ? await this.scripts().pruneTombstones(partition, cutoff, old) : 0;
      this.stats.tombstonesPruned += pruned;
      if (paced) await this.pace(Math.max(1, page.entries.length), mode);
    } while (cursor !== '0');
  }

  /** Acts on the comparison of keys with their index entries, by mode. */
  private async act(
    partition: number,
    keys: readonly Buffer[],
    entries: readonly (IndexEntry | undefined)[],
    digests: readonly string[],
    mode: PassMode,
    untrusted: (e: IndexEntry | undefined) => boolean,
  ): Promise<void> {
    const adopt: Buffer[] = [];
    const adoptDigests: string[] = [];
    keys.forEach((key, i) => {
      const entry = entries[i];
      const digest = digests[i]!;
      this.stats.keysCompared++;
      // An entry adopted within the window may hold the window's unheard change: it gets its ticket.
      const adoptedInWindow = mode === 'repair' && entry !== undefined && adoptedAt(entry) >= 0 && untrusted(entry);
      if (!needsTicket(entry, digest) && !adoptedInWindow) return;
      if (mode === 'adopt') {
        // A partition never covered before has index entries only from tickets made since: one
        // that differs has its ticket in flight (a divergence is the continuous pass's to find).
        if (entry !== undefined) return;
        adopt.push(key);
        adoptDigests.push(digest);
      } else if (mode === 'reconcile') {
        if (this.candidates.length < MAX_CANDIDATES) this.candidates.push({ partition, key, indexed: entry, digest, due: Date.now() + this.opts.graceMs });
        else this.diverged({ partition, key, indexed: entry, digest });
      } else {
        this.mark(partition, key, mode === 'backfill' ? 'backfill' : 'repair');
      }
    });
    if (adopt.length > 0) {
      const seq = adoptedSeq(this.opts.redisNow());
      const adopted = await this.scripts().recordTickets(adopt.map((key, i) => ({ partition, key, seq, digest: adoptDigests[i]! })));
      this.stats.keysAdopted += adopted;
    }
  }

  private mark(partition: number, key: Buffer, event: string): void {
    this.stats.keysMarked++;
    this.opts.markDirty(partition, key, event);
  }

  private diverged(d: Divergence): void {
    this.stats.divergent++;
    this.opts.onDivergent?.(d);
    this.mark(d.partition, d.key, 'reconcile');
  }

  /**
   * Differences whose grace is over (all, when `all`): still the same index entry and the same
   * value, and still different, they are divergent; otherwise a ticket was in flight.
   */
  private async recheck(all: boolean): Promise<void> {
    const now = Date.now();
    const cut = all ? this.candidates.length : this.candidates.findIndex((c) => c.due > now);
    const due = this.candidates.splice(0, cut < 0 ? this.candidates.length : cut);
    for (let i = 0; i < due.length; i += BATCH) {
      const batch = due.slice(i, i + BATCH);
      const digests = await this.reads.digests(batch.map((c) => c.key));
      // Under load most of a pass's differences are tickets in flight: one lookup a partition, not a key.
      const entries = await perGroup(batch, (c) => c.partition, (group, partition) => this.index.lookup(partition, group.map((c) => c.key)));
      batch.forEach((c, j) => {
        const entry = entries[j];
        const same = entry?.seq === c.indexed?.seq && digests[j] === c.digest;
        if (same && needsTicket(entry, digests[j]!)) this.diverged(c);
      });
    }
  }

  /** Scripts on the command connection, for the index. */
  private indexScripts: Scripts | undefined;
  private scripts(): Scripts {
    return (this.indexScripts ??= new Scripts(this.opts.client, this.opts.keys));
  }
}

export type OfflineOptions = Omit<ReconcilerOptions, 'nodeOfSlot' | 'logger' | 'redisNow' | 'owned' | 'minPassMs'> & Partial<Pick<ReconcilerOptions, 'owned' | 'logger'>>;

/**
 * A reconciler outside a worker (`tg reconcile`, benchmarks, tests): the masters read once
 * from the topology, local time taken for Redis time, silent unless given a logger.
 */
export async function offlineReconciler(opts: OfflineOptions): Promise<Reconciler> {
  const slotNode = slotNodes(await masters(opts.client, opts.target));
  return new Reconciler({ owned: () => [], logger: silentLogger(), minPassMs: 0, ...opts, nodeOfSlot: (s) => slotNode[s], redisNow: () => Date.now() });
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** A key for logs: text when printable, else base64. */
export function printableKey(key: Buffer): string {
  const text = key.toString('utf8');
  return /^[\x20-\x7e]*$/.test(text) ? text : `base64:${key.toString('base64')}`;
}
