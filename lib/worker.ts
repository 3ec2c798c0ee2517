/**
 * One ticket-generator worker: wires the keyspace subscriber, the dirty streams, the
 * leases and the ticket queue together. The process around it (signals, exit codes)
 * lives in workers/start.ts.
 */
import { nanoid } from 'nanoid';
import type { ConnectionOptions } from 'bullmq';
import type { Config } from './config.js';
import { DirtyReader } from './dirty-reader.js';
import { DirtyWriter } from './dirty-writer.js';
import { RedisUnavailableError } from './errors.js';
import { Keys } from './keys.js';
import { KeyspaceSubscriber } from './keyspace-subscriber.js';
import { LeaseKeeper } from './lease-keeper.js';
import { createLogger, type Logger } from './logger.js';
import { backoff, connect, detectTarget, type RedisClient, type RedisTarget } from './redis.js';
import { Scripts } from './scripts.js';
import { loadSink, StreamSink } from './sink.js';
import { keySlot, partitionOfSlot, slotRangeOfPartition } from './slots.js';
import { TicketQueue } from './ticket-queue.js';
import { TicketWorker } from './ticket-worker.js';

/** How often owned dirty streams are read even without a local append (late appends of others). */
const SWEEP_INTERVAL_MS = 1000;

export interface WorkerOptions {
  workerId?: string;
  logger?: Logger;
}

/** Waits for the first reachable seed, with backoff, up to the configured deadline. */
async function waitForRedis(config: Config, logger: Logger): Promise<RedisTarget> {
  const deadline = Date.now() + config.connectTimeoutMs;
  for (let attempt = 0; ; attempt++) {
    try {
      return await detectTarget(config.redis);
    } catch (err) {
      if (!(err instanceof RedisUnavailableError) || Date.now() >= deadline) throw err;
      logger.warn('Redis unreachable; retrying', { url: config.redis.display, err: err.message });
      await new Promise((r) => setTimeout(r, Math.min(backoff(attempt), Math.max(0, deadline - Date.now()))));
    }
  }
}

export class GeneratorWorker {
  readonly id: string;
  readonly logger: Logger;
  readonly keys: Keys;
  private client!: RedisClient;
  private bullClient!: RedisClient;
  private subscriber!: KeyspaceSubscriber;
  private writer!: DirtyWriter;
  private reader!: DirtyReader;
  private leases!: LeaseKeeper;
  private queue!: TicketQueue;
  private tickets!: TicketWorker;
  /** 1 where this worker forwards the partition's events: the hot path's lookup. */
  private readonly forwarding: Uint8Array;
  private timers: NodeJS.Timeout[] = [];
  private balancing: Promise<void> | undefined;
  private stopping = false;
  /** Keyspace events received (a counter for logs and metrics). */
  eventsReceived = 0;

  constructor(
    readonly config: Config,
    opts: WorkerOptions = {},
  ) {
    this.id = opts.workerId ?? nanoid();
    this.logger = opts.logger ?? createLogger(config.logLevel, this.id);
    this.keys = new Keys(config.prefix);
    this.forwarding = new Uint8Array(config.partitions);
  }

  /** Partitions whose events this worker forwards now. */
  ownedPartitions(): number[] {
    return [...this.leases.held.keys()].sort((a, b) => a - b);
  }

  async start(): Promise<void> {
    const { config, logger, keys } = this;
    const target = await waitForRedis(config, logger);
    logger.info('starting', { redis: config.redis.display, cluster: target.cluster, partitions: config.partitions, watch: config.watch });
    this.client = connect(target, { connectionName: `tg-${this.id}` });
    this.bullClient = connect(target, { maxRetriesPerRequest: null, connectionName: `tg-${this.id}-bull`, autoPipelining: false });
    this.client.on('error', (err: Error) => logger.debug('redis error', { err: err.message }));
    this.bullClient.on('error', (err: Error) => logger.debug('redis error (queue)', { err: err.message }));

    const scripts = new Scripts(this.client, keys);
    const sink = await loadSink(config.handler, new StreamSink(this.client, keys), logger);
    const connection = this.bullClient as unknown as ConnectionOptions;
    this.queue = new TicketQueue(connection, keys);
    this.tickets = new TicketWorker({
      connection,
      keys,
      scripts,
      sink,
      workerId: this.id,
      partitions: config.partitions,
      concurrency: config.concurrency,
      logger,
      lockDurationMs: Math.max(5000, config.leaseTtlMs * 2),
    });
    this.reader = new DirtyReader({ client: this.client, scripts, keys, queue: this.queue, consumer: this.id, batchSize: config.batchSize, logger });
    this.writer = new DirtyWriter({ client: this.client, keys, flushIntervalMs: config.flushIntervalMs, logger, onAppended: (p) => this.reader.poke(p) });
    this.leases = new LeaseKeeper({ scripts, workerId: this.id, ttlMs: config.leaseTtlMs, renewIntervalMs: config.renewIntervalMs, logger });
    this.leases.on('lost', (p: number) => this.stopForwarding(p));
    this.subscriber = new KeyspaceSubscriber({
      target,
      client: this.client,
      watch: config.watch,
      configureNotifications: config.configureNotifications,
      logger,
      onEvent: (key, event) => this.onEvent(key, event),
    });

    await this.subscriber.start();
    this.leases.start();
    this.tickets.start();
    await this.balance();
    this.timers.push(
      setInterval(() => void this.balance(), config.renewIntervalMs),
      setInterval(() => this.reader.sweep(), SWEEP_INTERVAL_MS),
    );
    logger.info('started', { owned: this.leases.held.size });
  }

  private onEvent(key: Buffer, event: Buffer): void {
    this.eventsReceived++;
    if (this.keys.isOwn(key)) return;
    const partition = partitionOfSlot(keySlot(key), this.config.partitions);
    if (this.forwarding[partition] === 1) this.writer.add(partition, key, event.toString('latin1'));
  }

  /** Partitions this worker should own. */
  private desired(): number[] {
    return Array.from({ length: this.config.partitions }, (_, p) => p);
  }

  private balance(): Promise<void> {
    this.balancing ??= this.acquireDesired()
      .catch((err: unknown) => void this.logger.warn('balancing failed', { err: String(err) }))
      .finally(() => (this.balancing = undefined));
    return this.balancing;
  }

  private async acquireDesired(): Promise<void> {
    if (this.stopping) return;
    const { partitions } = this.config;
    const wanted = this.desired().filter((p) => {
      if (this.leases.held.has(p)) return false;
      const { first, last } = slotRangeOfPartition(p, partitions);
      // A partition is taken only once its events are certain to reach this worker.
      return this.subscriber.coversRange(first, last);
    });
    await Promise.all(
      wanted.map(async (p) => {
        const got = await this.leases.acquire(p);
        if (!got || this.stopping) return;
        this.forwarding[p] = 1;
        await this.reader.own(p);
        this.logger.debug('partition acquired', { partition: p, token: got.token });
      }),
    );
  }

  private stopForwarding(partition: number): void {
    this.forwarding[partition] = 0;
    this.reader.disown(partition);
  }

  /**
   * Graceful stop: no new events are forwarded, what was gathered is appended and
   * enqueued, active ticket jobs finish, leases are released. The caller races it
   * against the shutdown deadline.
   */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.timers.forEach(clearInterval);
    await this.balancing;
    this.logger.info('stopping', { owned: this.leases.held.size });
    await this.subscriber.stop();
    await this.writer.drain();
    this.reader.sweep();
    await this.reader.idle();
    await this.tickets.close();
    await this.leases.stop();
    await Promise.all([...this.leases.held.keys()].map((p) => this.leases.release(p).catch(() => undefined)));
    this.forwarding.fill(0);
    await this.queue.close();
    await Promise.all([this.client.quit().catch(() => undefined), this.bullClient.quit().catch(() => undefined)]);
    this.logger.info('stopped', { eventsReceived: this.eventsReceived, appended: this.writer.appended, enqueued: this.reader.enqueued, tickets: this.tickets.made });
  }
}
