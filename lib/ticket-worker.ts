/**
 * The BullMQ worker that makes tickets: for every dirty key of a job it reads the key's
 * value at that moment (atomically with its type) and hands the tickets to the sink.
 * Values are read only after the job's `seq` was fixed (the dirty entry id), so of two
 * tickets of one key the one with the larger seq always read later: after quiescence the
 * greatest seq carries the final value, however jobs interleave.
 *
 * Jobs are fetched without blocking reads. BullMQ's own loop waits on a blocking read of the
 * queue's marker, and every move to active adds the marker back, so each job would wake a
 * blocked reader somewhere to find nothing. Instead the worker that adds a job fetches it
 * (take), which also keeps a job with the owner of its keys. Jobs it did not add are fetched when
 * they may be there: BullMQ's stalled check moved some back to wait, one of its own jobs' retry
 * is due, or a lease renewal round starts (tick: each one for a while after a member came or
 * went, else every 5 s for what nothing announced, such as another worker's retry). A job's lock
 * is extended while it runs.
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
import { BULLMQ_CONNECTION, decodeItem, type TicketJobData, type TicketQueue } from './ticket-queue.js';
import { FAILED_DIGEST } from './ticket-index.js';
import { formatValue } from './values.js';

/** After a retry's backoff: the delayed job is fetchable once BullMQ's clock says so. */
const RETRY_LOOK_MARGIN_MS = 50;

/** Longest time between two looks for jobs nothing announced (another worker's retries). */
const LOOK_INTERVAL_MS = 5000;

export interface TicketWorkerOptions {
  connection: ConnectionOptions;
  /** The queue this worker adds its jobs to, one BullMQ worker a shard (lib/shards.ts): it runs each job as it is added (take). */
  queue: TicketQueue;
  keys: Keys;
  scripts: Scripts;
  sink: Sink;
  workerId: string;
  partitions: number;
  concurrency: number;
  logger: Logger;
  /** Lock of an active job; a crashed worker's jobs are retried once it lapses. */
  lockDurationMs: number;
  /** Glob of the watched keys: a job naming any other key (a forged one) gets no ticket for it. */
  watch: string;
}

/** Emits 'written' (tickets) once a job's tickets are in the sink. */
export class TicketWorker extends EventEmitter {
  /** One BullMQ worker a queue shard, sharing the concurrency. */
  readonly workers: Worker<TicketJobData, number>[];
  /** Jobs a shard may run at once, and the fetching loops running per shard. */
  private readonly perShard: number;
  private readonly fetching: number[];
  private readonly loops = new Set<Promise<void>>();
  /** Until when every lease renewal looks for jobs, and when the last look was (ms). */
  private lookUntil = 0;
  private lookedAt = 0;
  /** Per shard, the look due when a retry of this worker's job may be fetched. */
  private readonly retryLooks: (NodeJS.Timeout | undefined)[];
  private started = false;
  private closing = false;
  /** Settles when close() is called: what a loop still waits for then is not waited for. */
  private readonly closed: Promise<undefined>;
  private markClosed!: () => void;
  /** Tickets written so far. */
  made = 0;
  /** Jobs that failed their last attempt: their keys converge through reconciliation. */
  exhausted = 0;
  private readonly watched: (key: Buffer) => boolean;

  constructor(private readonly opts: TicketWorkerOptions) {
    super();
    this.closed = new Promise((resolve) => (this.markClosed = () => resolve(undefined)));
    const matches = globMatcher(opts.watch);
    this.watched = (key) => !opts.keys.isOwn(key) && matches(key);
    const tags = queueShardTags(opts.queue.queues.length);
    this.perShard = Math.max(1, Math.ceil(opts.concurrency / tags.length));
    this.fetching = tags.map(() => 0);
    this.retryLooks = tags.map(() => undefined);
    this.workers = tags.map(
      (tag) =>
        new Worker<TicketJobData, number>(TICKET_QUEUE, (job) => this.process(job), {
          connection: opts.connection,
          prefix: opts.keys.queuePrefix(tag),
          concurrency: this.perShard,
          lockDuration: opts.lockDurationMs,
          stalledInterval: opts.lockDurationMs,
          maxStalledCount: 1000,
          autorun: false,
          ...BULLMQ_CONNECTION,
        }),
    );
    this.workers.forEach((worker, shard) => {
      worker.on('failed', (job, err) => this.failed(shard, job, err));
      worker.on('stalled', () => this.take(shard));
      worker.on('error', (err) => opts.logger.warn('ticket worker error', { err: err.message }));
    });
  }

  private failed(shard: number, job: Job<TicketJobData, number> | undefined, err: Error): void {
    const { logger, scripts, partitions } = this.opts;
    const final = job !== undefined && job.attemptsMade >= (job.opts.attempts ?? 1);
    const detail = { job: job?.id, keys: job?.data.items.length, attempt: job?.attemptsMade, err: err.message };
    if (!final) {
      // Retried after the queue's backoff, by whoever fetches it first: look once it is due.
      clearTimeout(this.retryLooks[shard]);
      this.retryLooks[shard] = setTimeout(() => this.take(shard), this.opts.queue.retry.backoffMs + RETRY_LOOK_MARGIN_MS);
      return void logger.warn('ticket job failed', detail);
    }
    this.exhausted++;
    logger.error('ticket job failed for good; reconciliation will make its tickets', detail);
    // Recorded as failed (newer than an adoption, older than any later ticket), so the next
    // reconciliation pass finds these keys whatever the index said of them before.
    const failed = job.data.items.map(decodeItem).filter((i) => this.watched(i.key)).map((i) => ({ partition: partitionOfSlot(keySlot(i.key), partitions), key: i.key, seq: i.seq, digest: FAILED_DIGEST }));
    scripts.recordTickets(failed).catch((e: unknown) => logger.warn('could not record failed tickets in the index', { job: job.id, err: String(e) }));
  }

  start(): void {
    for (const worker of this.workers) worker.startStalledCheckTimer().catch((err: unknown) => this.opts.logger.warn('stalled job check not started', { err: String(err) }));
    this.opts.queue.on('added', (shard: number) => this.take(shard));
    this.started = true;
  }

  /** Looks in every shard for jobs this worker did not add. */
  private look(): void {
    this.lookedAt = Date.now();
    this.workers.forEach((_, shard) => this.take(shard));
  }

  /**
   * A member joined or left: look now, and at every lease renewal (tick) until a crashed member's
   * jobs have lost their locks and been found stalled, and its retries have come due.
   */
  membersChanged(): void {
    this.lookUntil = Date.now() + 3 * this.opts.lockDurationMs;
    this.look();
  }

  /** A lease renewal round starts: a look while the membership changed lately, else every LOOK_INTERVAL_MS. */
  tick(): void {
    const now = Date.now();
    if (now < this.lookUntil || now - this.lookedAt >= LOOK_INTERVAL_MS) this.look();
  }

  /** A job was added to the shard (or may wait there): fetch and run jobs until none is left, within the shard's concurrency. */
  private take(shard: number): void {
    if (this.closing || !this.started || this.fetching[shard]! >= this.perShard) return;
    this.fetching[shard]!++;
    const loop: Promise<void> = this.runJobs(shard)
      .catch((err: unknown) => void this.opts.logger.warn('ticket jobs not fetched', { shard, err: String(err) }))
      .finally(() => {
        this.fetching[shard]!--;
        this.loops.delete(loop);
      });
    this.loops.add(loop);
  }

  private async runJobs(shard: number): Promise<void> {
    const worker = this.workers[shard]!;
    const token = nanoid();
    // Completing a job fetches the next one in the same call, as BullMQ's own loop does. A fetch
    // still waiting when the worker closes (its master frozen) is left: a job it moves to active
    // has no lock extended and is found stalled and run elsewhere.
    let job: Job<TicketJobData, number> | void = await Promise.race([worker.getNextJob(token, { block: false }), this.closed]);
    while (job) {
      const running = job;
      const extend = setInterval(() => void running.extendLock(token, this.opts.lockDurationMs).catch(() => undefined), this.opts.lockDurationMs / 2);
      try {
        job = await worker.processJob(running, token, () => !this.closing);
      } finally {
        clearInterval(extend);
      }
    }
  }

  /** Stops taking jobs and waits for the active ones. */
  async close(): Promise<void> {
    this.closing = true;
    this.markClosed();
    this.retryLooks.forEach(clearTimeout);
    while (this.loops.size > 0) await Promise.all([...this.loops]);
    // Forced: no job of BullMQ's own loop to wait for (this worker's loops ran them all), and its
    // idle blocking connection is dropped rather than sent a QUIT that a frozen master never answers.
    await Promise.all(this.workers.map((w) => w.close(true)));
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
