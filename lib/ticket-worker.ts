/**
 * The BullMQ worker that makes tickets: for every dirty key of a job it reads the key's
 * value at that moment (atomically with its type) and hands the tickets to the sink.
 * Values are read only after the job's `seq` was fixed (the dirty entry id), so of two
 * tickets of one key the one with the larger seq always read later: after quiescence the
 * greatest seq carries the final value, however jobs interleave.
 */
import { EventEmitter } from 'node:events';
import { Worker, type ConnectionOptions, type Job } from 'bullmq';
import { nanoid } from 'nanoid';
import { TICKET_QUEUE, type Keys } from './keys.js';
import type { Logger } from './logger.js';
import type { Scripts } from './scripts.js';
import type { Sink, Ticket } from './sink.js';
import { keySlot, partitionOfSlot } from './slots.js';
import { globMatcher } from './glob.js';
import { queueShardTags } from './shards.js';
import { decodeItem, type TicketJobData } from './ticket-queue.js';
import { FAILED_DIGEST } from './ticket-index.js';
import { formatValue } from './values.js';

export interface TicketWorkerOptions {
  connection: ConnectionOptions;
  keys: Keys;
  scripts: Scripts;
  sink: Sink;
  workerId: string;
  partitions: number;
  concurrency: number;
  logger: Logger;
  /** Lock of an active job; a crashed worker's jobs are retried once it lapses. */
  lockDurationMs: number;
  /** Queue shards (lib/shards.ts). */
  shards: number;
  /** Glob of the watched keys: a job naming any other key (a forged one) gets no ticket for it. */
  watch: string;
}

/**
 * Emits 'written' (tickets) once a job's tickets are in the sink. Consumes only the queue shards
 * its partitions' keys go to (consume()): with every worker on every shard, each job woke them
 * all, and that herd grew with the workers.
 */
export class TicketWorker extends EventEmitter {
  /** The BullMQ worker of each queue shard consumed now, sharing the concurrency. */
  private readonly workers = new Map<number, Worker<TicketJobData, number>>();
  /** Workers of shards given up, finishing their active jobs. */
  private readonly closing = new Set<Promise<void>>();
  private readonly tags: string[];
  private stopped = false;
  /** Tickets written so far. */
  made = 0;
  /** Jobs that failed their last attempt: their keys converge through reconciliation. */
  exhausted = 0;
  private readonly watched: (key: Buffer) => boolean;

  constructor(private readonly opts: TicketWorkerOptions) {
    super();
    const matches = globMatcher(opts.watch);
    this.watched = (key) => !opts.keys.isOwn(key) && matches(key);
    this.tags = queueShardTags(opts.shards);
  }

  /** Queue shards consumed now. */
  get consumed(): number[] {
    return [...this.workers.keys()].sort((a, b) => a - b);
  }

  /**
   * Consumes exactly these queue shards: the ones the keys of the partitions this worker holds
   * go to. A shard given up finishes its active jobs; what waits in it goes to the shard's other
   * consumers, the holders of its partitions.
   */
  consume(shards: Iterable<number>): void {
    if (this.stopped) return;
    const wanted = new Set(shards);
    for (const [shard, worker] of this.workers) {
      if (wanted.has(shard)) continue;
      this.workers.delete(shard);
      const closed = worker.close().catch((err: unknown) => {
        this.opts.logger.warn('ticket worker close failed', { shard, err: String(err) });
      });
      this.closing.add(closed);
      void closed.finally(() => this.closing.delete(closed));
    }
    for (const shard of wanted) if (!this.workers.has(shard)) this.workers.set(shard, this.run(shard));
  }

  private run(shard: number): Worker<TicketJobData, number> {
    const { opts } = this;
    const worker = new Worker<TicketJobData, number>(TICKET_QUEUE, (job) => this.process(job), {
      connection: opts.connection,
      prefix: opts.keys.queuePrefix(this.tags[shard]),
      concurrency: Math.max(1, Math.ceil(opts.concurrency / this.tags.length)),
      lockDuration: opts.lockDurationMs,
      stalledInterval: opts.lockDurationMs,
      maxStalledCount: 1000,
    });
    worker.on('failed', (job, err) => this.failed(job, err));
    worker.on('error', (err) => opts.logger.warn('ticket worker error', { shard, err: err.message }));
    return worker;
  }

  private failed(job: Job<TicketJobData, number> | undefined, err: Error): void {
    const { logger, scripts, partitions } = this.opts;
    const final = job !== undefined && job.attemptsMade >= (job.opts.attempts ?? 1);
    const detail = { job: job?.id, keys: job?.data.items.length, attempt: job?.attemptsMade, err: err.message };
    if (!final) return void logger.warn('ticket job failed', detail);
    this.exhausted++;
    logger.error('ticket job failed for good; reconciliation will make its tickets', detail);
    // Recorded as failed (newer than an adoption, older than any later ticket), so the next
    // reconciliation pass finds these keys whatever the index said of them before.
    const failed = job.data.items.map(decodeItem).filter((i) => this.watched(i.key)).map((i) => ({ partition: partitionOfSlot(keySlot(i.key), partitions), key: i.key, seq: i.seq, digest: FAILED_DIGEST }));
    scripts.recordTickets(failed).catch((e: unknown) => logger.warn('could not record failed tickets in the index', { job: job.id, err: String(e) }));
  }

  /** Stops taking jobs and waits for the active ones. */
  async close(): Promise<void> {
    this.stopped = true;
    const open = [...this.workers.values()];
    this.workers.clear();
    await Promise.all([...open.map((w) => w.close()), ...this.closing]);
  }

  private async process(job: Job<TicketJobData, number>): Promise<number> {
    const { scripts, workerId, partitions } = this.opts;
    const items = job.data.items.map(decodeItem);
    const foreign = items.filter((i) => !this.watched(i.key));
    // Only a forged job names such keys: their values must not reach the sink.
    if (foreign.length > 0) this.opts.logger.warn('ticket job names keys that are not watched; skipped', { job: job.id, keys: foreign.length });
    const watched = items.filter((i) => this.watched(i.key));
    const reads = await scripts.readValues(watched.map((i) => i.key));
    const tickets = watched.map((item, i): Ticket => {
      const slot = keySlot(item.key);
      const read = reads[i]!;
      const { type, value } = formatValue(read);
      return {
        id: nanoid(),
        key: item.key,
        event: item.event,
        type,
        value,
        digest: read.digest,
        seq: item.seq,
        partition: partitionOfSlot(slot, partitions),
        slot,
        worker: workerId,
        dirtyAt: item.at,
        createdAt: Date.now(),
      };
    });
    await this.opts.sink.write(tickets);
    // Only once the sink has them (the default sink records them itself, in the same step): a
    // job that never gets there leaves the index behind, and reconciliation makes its tickets again.
    if (!this.opts.sink.indexes) await scripts.recordTickets(tickets.map((t) => ({ partition: t.partition, key: t.key, seq: t.seq, digest: t.digest })));
    this.made += tickets.length;
    this.emit('written', tickets);
    return tickets.length;
  }
}
