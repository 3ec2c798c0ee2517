/**
 * One ticket-generator worker: wires the keyspace subscriber, the dirty streams, the
 * leases and the ticket queue together. The process around it (signals, exit codes)
 * lives in workers/start.ts.
 */
import { hostname } from 'node:os';
import type { ConnectionOptions } from 'bullmq';
import { assign, slotsToHear } from './assignment.js';
import { BalanceLoop } from './balance-loop.js';
import type { Config } from './config.js';
import { encodeDisconnect, encodeOffer, parseDisconnect, parseOffer } from './control.js';
import { CLOCK_READ_MAX_MS, Coverage } from './coverage.js';
import { DirtyReader } from './dirty-reader.js';
import { DirtyWriter } from './dirty-writer.js';
import { StartAborted } from './errors.js';
import { keysOf, type Keys } from './keys.js';
import { announcesMembership, publishEvent } from './events.js';
import { startHttpServer, type HttpServer } from './http-server.js';
import { KeyspaceSubscriber } from './keyspace-subscriber.js';
import { LeaseKeeper, readLeases, type LeaseState } from './lease-keeper.js';
import { createLogger, type Logger } from './logger.js';
import { clockOffset, closeConnection, connect, nodeOfSlot, publishNear, refreshingRoutes, type RedisClient, type RedisTarget } from './redis.js';
import { printableKey, Reconciler } from './reconciler.js';
import { Scripts } from './scripts.js';
import { claimSinkLayout, loadSink, StreamSink, type Ticket } from './sink.js';
import { StartSteps } from './start-steps.js';
import { keySlot, partitionOfSlot, slotRangeOfPartition } from './slots.js';
import { TicketQueue } from './ticket-queue.js';
import { TicketWorker } from './ticket-worker.js';
import { newWorkerId } from './worker-id.js';
import type { WorkerSnapshot, WorkerStats, WorkerView } from './worker-view.js';
import { lookupKey, type KeyLocation } from './cluster-info.js';

/** How often owned dirty streams are read even without a local append (late appends of others). */
const SWEEP_INTERVAL_MS = 5000;

/**
 * Time between two looks at membership and leases while this worker does not hold its share (a
 * lease to wait for, an offer to make); settled, it looks as each lease renewal starts. Joins,
 * leaves and offers are announced, so they are looked at at once either way.
 */
const UNSETTLED_BALANCE_MS = 250;

/**
 * Most time between two reads of every lease while nothing changed: membership changes, offers
 * (announced on the control channel), a lease this worker lost and an unsettled assignment are
 * read at once.
 */
const LEASE_READ_INTERVAL_MS = 10_000;

/** Time for an append that left another worker to land, on top of how long it may have waited there. */
const LATE_APPEND_MARGIN_MS = 200;

/** A listener that has not proved for this long that it heard everything makes the worker unready. */
const READY_MAX_LAG_MS = 5000;

export interface WorkerOptions {
  workerId?: string;
  logger?: Logger;
}

export class GeneratorWorker implements WorkerView {
  readonly id: string;
  readonly logger: Logger;
  readonly keys: Keys;
  private client!: RedisClient;
  private target!: RedisTarget;
  private bullClient!: RedisClient;
  private control!: RedisClient;
  private scripts!: Scripts;
  private subscriber!: KeyspaceSubscriber;
  private writer!: DirtyWriter;
  private reader!: DirtyReader;
  private leases!: LeaseKeeper;
  private queue!: TicketQueue;
  private tickets!: TicketWorker;
  private reconciler!: Reconciler;
  private coverage!: Coverage;
  private http: HttpServer | undefined;
  /** 1 where this worker forwards the partition's events: the hot path's lookup. */
  private readonly forwarding: Uint8Array;
  private timers: NodeJS.Timeout[] = [];
  private readonly looks: BalanceLoop;
  private stopping = false;
  /** Set on a graceful stop: out of the member set, handing every partition over. */
  private leaving = false;
  /** What a graceful stop is doing (leftBehind, when it misses its deadline). */
  private stopStep = 'leaving, handing partitions over';
  private joined = false;
  /** Live members as last seen. */
  members: string[] = [];
  readonly stats: WorkerStats = { eventsReceived: 0, handovers: 0, takeovers: 0, redisReconnects: 0 };
  /** Whether the last look at the leases found this worker holding exactly its share. */
  private settled = false;
  /** Set when the leases must be read at the next look (an offer was announced). */
  private leasesStale = true;
  private leasesReadAt = 0;
  private started = false;
  /** Aborted by a stop asked for while the start still waits for Redis. */
  private readonly starting = new AbortController();

  constructor(
    readonly config: Config,
    opts: WorkerOptions = {},
  ) {
    this.id = opts.workerId ?? newWorkerId();
    this.logger = opts.logger ?? createLogger(config.logLevel, this.id);
    this.keys = keysOf(config);
    this.forwarding = new Uint8Array(config.partitions);
    this.looks = new BalanceLoop(
      () => this.rebalance(),
      () => (this.settled && !this.leaving ? null : Math.min(UNSETTLED_BALANCE_MS, config.renewIntervalMs)),
      (err) => this.logger.warn('balancing failed', { err: String(err) }),
    );
  }

  /** Subscribed and hearing everything where its partitions live, holding its share, not leaving: ready for traffic. */
  ready(): boolean {
    if (!this.started || this.leaving || !this.settled) return false;
    return this.subscriber.status().every((n) => n.confirmed) && this.coverage.lag().every((l) => l.seconds * 1000 < READY_MAX_LAG_MS);
  }

  snapshot(): WorkerSnapshot {
    return {
      ...this.stats,
      dirtyKeysAppended: this.writer.appended,
      dirtyEntriesRead: this.reader.entriesRead,
      keysEnqueued: this.reader.enqueued,
      ticketJobsEnqueued: this.queue.added,
      ticketsMade: this.tickets.made,
      pendingInMemory: this.writer.backlog,
      partitionsOwned: this.leases.held.size,
      members: this.members.length,
      gapRepairs: this.reconciler.stats.repairs + this.coverage.stats.gapsReplayed,
      gapKeysMarked: this.reconciler.stats.keysMarked - this.reconciler.stats.divergent + this.coverage.stats.keysReplayed,
      gapRepairMs: this.reconciler.stats.repairMs,
      reconcilePasses: this.reconciler.stats.passes,
      reconcileKeysCompared: this.reconciler.stats.keysCompared,
      divergentKeys: this.reconciler.stats.divergent,
      partitions: this.config.partitions,
      ticketJobsFailed: this.tickets.exhausted,
      dirtyAppendFailures: this.writer.failedAppends,
      dirtyKeysShed: this.writer.shed,
      subscriberLag: this.coverage.lag(),
    };
  }

  /** Entries waiting in the dirty streams this worker owns (one XLEN each: bounded). */
  async ownedBacklog(): Promise<number> {
    const lengths = await Promise.all(this.ownedPartitions().map((p) => this.client.xlen(this.keys.dirty(p))));
    return lengths.reduce((a, b) => a + b, 0);
  }

  /** Latency of lease renewal rounds, ms, as they happen. */
  onRenewal(listener: (ms: number) => void): void {
    this.leases.on('renewed', listener);
  }

  onTicketsWritten(listener: (freshnessMs: number[]) => void): void {
    this.tickets.on('written', (tickets: Ticket[]) => listener(tickets.map((t) => t.createdAt - t.dirtyAt)));
  }

  lookup(key: string): Promise<KeyLocation> {
    return lookupKey(this.client, this.target, this.keys, this.config.partitions, key);
  }

  /** What a stop that missed its deadline leaves behind, and the state of Redis that may be why. */
  leftBehind(): { step: string; redis: string; partitionsNotHandedOver: number; keysNotAppended: number } {
    return { step: this.stopStep, redis: this.client?.status ?? 'never connected', partitionsNotHandedOver: this.leases?.held.size ?? 0, keysNotAppended: this.writer?.backlog ?? 0 };
  }

  /** Partitions whose events this worker forwards now. */
  ownedPartitions(): number[] {
    return [...this.leases.held.keys()].sort((a, b) => a - b);
  }

  async start(): Promise<void> {
    const { config, logger, keys } = this;
    const steps = new StartSteps(config.connectTimeoutMs, this.starting.signal, logger);
    const target = (this.target = await steps.target(config.redis));
    logger.info('starting', { redis: config.redis.display, cluster: target.cluster, partitions: config.partitions, watch: config.watch });
    // The subscriber's topology reads refresh its slot map (lib/keyspace-subscriber.ts). No
    // auto-pipelining: the hot path already batches one script call a node, and each auto-pipeline
    // is an ioredis Pipeline that copies every defined script onto itself (BENCHMARKS.md).
    this.client = connect(target, { connectionName: `tg-${this.id}`, periodicSlotsRefresh: false, autoPipelining: false, commandTimeoutMs: config.commandTimeoutMs });
    // BullMQ duplicates this client for each blocking connection: none refreshes the slot map on a timer (the subscriber's reads do).
    this.bullClient = connect(target, { maxRetriesPerRequest: null, connectionName: `tg-${this.id}-bull`, autoPipelining: false, periodicSlotsRefresh: false, commandTimeoutMs: config.commandTimeoutMs });
    this.client.on('error', (err: Error) => logger.debug('redis error', { err: err.message }));
    this.client.on('reconnecting', () => this.stats.redisReconnects++);
    this.bullClient.on('error', (err: Error) => logger.debug('redis error (queue)', { err: err.message }));

    this.control = connect(target, { connectionName: `tg-${this.id}-control`, periodicSlotsRefresh: false });
    this.control.on('error', (err: Error) => logger.debug('redis error (control)', { err: err.message }));
    steps.routeBy(this.client, this.control);
    const scripts = (this.scripts = new Scripts(this.client, keys));
    await steps.ask('sink layout', () => claimSinkLayout(this.client, scripts, keys));
    const sink = await loadSink(config.handler, new StreamSink(scripts, keys, config.sinkMaxLen), logger);
    const connection = this.bullClient as unknown as ConnectionOptions;
    this.queue = new TicketQueue(connection, keys, { attempts: config.jobAttempts, backoffMs: config.jobBackoffMs }, config.queueShards);
    this.tickets = new TicketWorker({
      connection,
      queue: this.queue,
      keys,
      scripts,
      sink,
      workerId: this.id,
      partitions: config.partitions,
      concurrency: config.concurrency,
      logger,
      lockDurationMs: Math.max(5000, config.leaseTtlMs * 2),
      watch: config.watch,
    });
    this.reader = new DirtyReader({ client: this.client, scripts, keys, queue: this.queue, consumer: this.id, batchSize: config.batchSize, roundIntervalMs: config.readIntervalMs, lateAppendMs: config.flushMaxWaitMs + LATE_APPEND_MARGIN_MS, logger });
    this.writer = new DirtyWriter({
      client: this.client,
      scripts,
      keys,
      timing: { intervalMs: config.flushIntervalMs, batchKeys: config.flushKeys, maxWaitMs: config.flushMaxWaitMs },
      logger,
      onAppended: (p, entries) => this.reader.appended(p, entries),
      maxPending: config.maxPendingKeys,
      holds: (p) => this.leases.held.has(p),
      onShed: (p, since) => this.coverage.dropped(p, since),
      nextRead: () => this.subscriber?.nextReadAt ?? 0,
    });
    this.leases = new LeaseKeeper({
      scripts,
      workerId: this.id,
      ttlMs: config.leaseTtlMs,
      renewIntervalMs: config.renewIntervalMs,
      logger,
      coverageMark: (p) => this.coverage.coverageMark(p),
      nodeOf: (p) => nodeOfSlot(this.client, keySlot(keys.lease(p))),
    });
    this.leases.on('lost', (p: number) => {
      this.stopForwarding(p);
      this.writer.flushNow();
      this.leasesStale = true;
    });
    // One timer a renewal interval: the pings the next renewal reads, a settled look, a look for jobs now and then.
    this.leases.on('tick', () => {
      this.subscriber.ping();
      this.looks.tick();
      this.tickets.tick();
    });
    const clockOffsetMs = await steps.ask('server time', () => clockOffset(this.client, CLOCK_READ_MAX_MS));
    this.reconciler = new Reconciler({
      target,
      client: this.client,
      keys,
      watch: config.watch,
      partitions: config.partitions,
      logger,
      nodeOfSlot: (slot) => this.subscriber.nodeOfSlot(slot),
      commandTimeoutMs: config.commandTimeoutMs,
      owned: () => this.ownedPartitions(),
      ratePerSecond: config.reconcileRate,
      minPassMs: config.reconcileIntervalMs,
      graceMs: config.reconcileGraceMs,
      redisNow: () => Date.now() + clockOffsetMs,
      markDirty: (p, key, event) => this.writer.add(p, key, event),
      onDivergent: (d) => logger.warn('divergent key: its newest ticket is not what Redis holds', { partition: d.partition, key: printableKey(d.key), indexedSeq: d.indexed?.seq ?? null, exists: d.digest !== '' }),
    });
    this.subscriber = new KeyspaceSubscriber({
      target,
      client: this.client,
      // The control connection's subscriber is one node of its slot map: a frozen one is left once the map is.
      followers: [this.bullClient, this.control],
      watch: config.watch,
      configureNotifications: config.configureNotifications,
      checkNotifications: config.checkNotifications,
      evictionPolicy: config.evictionPolicy,
      logger,
      onEvent: (key, event) => this.onEvent(key, event),
      readPause: () => this.writer.listenPause(config.listenPauseMs),
      afterPausedRead: (nextReadAt) => this.writer.afterPausedRead(nextReadAt),
    });
    this.coverage = new Coverage({
      workerId: this.id,
      keys,
      partitions: config.partitions,
      leaseTtlMs: config.leaseTtlMs,
      backfill: config.backfill,
      client: this.client,
      subscriber: this.subscriber,
      reconciler: this.reconciler,
      logger,
      clockOffsetMs,
      held: () => this.leases.held.keys(),
      markDirty: (p, key, event, at) => this.writer.add(p, key, event, at),
    });

    this.control.on('message', (channel: string, message: string) => {
      if (channel === keys.gapsChannel()) this.coverage.gapNotice(message).catch((err: unknown) => logger.warn('gap notice not checked', { err: String(err) }));
      else if (channel === keys.eventsChannel()) {
        // A join or a leave: look now rather than at the next tick (what it says is read from Redis,
        // not believed). Not before the start's own first look: that one reads membership anyway,
        // and a look then would ask the subscriber for other masters while it still subscribes.
        if (!announcesMembership(message, this.id)) return;
        this.leasesStale = true;
        // A worker that left may have left ticket jobs waiting, or stalled.
        this.tickets.membersChanged();
        if (this.started) void this.looks.now();
      } else if (parseOffer(message, config.partitions)) {
        this.leasesStale = true;
        void this.looks.now();
      } else {
        const d = parseDisconnect(message, config.partitions);
        if (!d) logger.warn('ignored a malformed control message', { raw: message.slice(0, 200) });
        else this.leases.disconnected(d).catch((err: unknown) => logger.warn('disconnect message not checked; the lease renewal will tell', { partition: d.partition, err: String(err) }));
      }
    });

    this.subscriber.on('dropped', () => this.stats.redisReconnects++);
    await steps.run('keyspace subscriptions', () => this.subscriber.start());
    // After the subscriber's start: its topology reads are what moves the control connection off a frozen master.
    await steps.ask('control channels', () => this.control.subscribe(keys.controlChannel(this.id), keys.gapsChannel(), keys.eventsChannel()));
    if (config.httpPort !== null) this.http = await startHttpServer(this, config.httpPort, config.httpHost, logger);
    await steps.ask('member info', () => this.client.hset(keys.memberInfo(), this.id, JSON.stringify({ host: hostname(), pid: process.pid, startedAt: Date.now(), httpPort: this.http?.port ?? null })));
    this.leases.start();
    this.tickets.start();
    this.reconciler.start();
    await this.looks.now();
    this.looks.start();
    this.timers.push(
      setInterval(() => {
        this.reader.sweep();
        this.coverage.prune();
      }, SWEEP_INTERVAL_MS),
    );
    this.started = true;
    logger.info('started', { owned: this.leases.held.size });
  }

  private onEvent(key: Buffer, event: Buffer): void {
    this.stats.eventsReceived++;
    if (this.keys.isOwn(key)) return;
    const partition = partitionOfSlot(keySlot(key), this.config.partitions);
    if (this.forwarding[partition] === 1) this.writer.add(partition, key, event.toString('latin1'));
    else this.coverage.heard(partition, key, event);
  }

  /**
   * One look at membership and leases, then the moves this worker makes: offer what the
   * assignment gives to another, take what it gives to this worker once it is free or
   * offered to it. Every worker runs this; they agree because they compute the same
   * assignment from the same Redis state.
   */
  private async rebalance(): Promise<void> {
    const { config, keys, scripts, id } = this;
    let live: string[];
    if (this.leaving) {
      live = (await this.client.zrange(keys.members(), 0, -1)).filter((m) => m !== id);
    } else {
      const beat = await scripts.heartbeat(id, config.leaseTtlMs);
      live = beat.live;
      for (const worker of beat.dropped) {
        void publishEvent(this.client, keys, { type: 'left', worker, reason: 'silent' }).catch(() => undefined);
        void this.client.hdel(keys.memberInfo(), worker).catch(() => undefined);
      }
      if (!this.joined) {
        this.joined = true;
        void publishEvent(this.client, keys, { type: 'joined', worker: id }).catch(() => undefined);
      }
    }
    live.sort();
    const membersChanged = live.join() !== this.members.join();
    this.members = live;
    if (live.length === 0) return;
    // Settled and nothing announced: the leases need only the periodic look (O(1) commands a tick).
    const due = Date.now() - this.leasesReadAt >= LEASE_READ_INTERVAL_MS;
    if (this.settled && !membersChanged && !this.leasesStale && !this.leaving && !due) return;
    this.leasesStale = false;
    this.leasesReadAt = Date.now();
    const leases = await readLeases(this.client, keys, config.partitions, scripts);
    const target = assign({ partitions: config.partitions, members: live, owners: leases.map((l) => l.owner) });
    this.settled = target.every((to, p) => (to === id) === this.leases.held.has(p));
    if (!this.settled || membersChanged) this.coverage.unsettled();
    // Every listener receives every event of its master: listen only where it is needed.
    this.subscriber.want(slotsToHear(target, this.id, this.leases.held, this.leaving, config.partitions));
    await Promise.all(target.map((to, p) => this.move(p, leases[p]!, to)));
  }

  private async move(partition: number, lease: LeaseState, to: string): Promise<void> {
    const { id, leases } = this;
    if (leases.held.has(partition)) {
      if (to !== id && lease.owner === id && lease.offer !== to && (await leases.offer(partition, to))) {
        await publishNear(this.client, keySlot(this.keys.lease(partition)), this.keys.controlChannel(to), encodeOffer({ partition, from: id }));
      }
      return;
    }
    if (to !== id || this.leaving || this.stopping) return;
    const { first, last } = slotRangeOfPartition(partition, this.config.partitions);
    // A partition changes hands only once its events are certain to reach this worker.
    if (!this.subscriber.coversRange(first, last)) return;
    if (lease.owner === null || lease.owner === id) {
      const got = await leases.acquire(partition);
      if (!got) return;
      this.startForwarding(partition, got.previousOwner, got.token, 'acquired');
      if (got.previousOwner !== null && got.previousOwner !== id) this.stats.takeovers++;
      this.coverage.acquired(partition, got);
    } else if (lease.offer === id) {
      const got = await leases.takeOver(partition, lease.owner);
      if (!got) return;
      this.startForwarding(partition, lease.owner, got.token, 'taken-over');
      this.stats.handovers++;
      this.coverage.takenOver(partition, got);
      await publishNear(this.client, keySlot(this.keys.lease(partition)), this.keys.controlChannel(lease.owner), encodeDisconnect({ partition, token: got.token, owner: id }));
    }
  }

  private startForwarding(partition: number, from: string | null, token: number, how: 'acquired' | 'taken-over'): void {
    this.forwarding[partition] = 1;
    this.reader.own(partition).catch((err: unknown) => this.logger.warn('dirty stream setup failed', { partition, err: String(err) }));
    this.logger.debug('partition acquired', { partition, token, from, how });
    void publishEvent(this.client, this.keys, { type: 'moved', partition, from, to: this.id, token, how }).catch(() => undefined);
  }

  private stopForwarding(partition: number): void {
    this.forwarding[partition] = 0;
    this.reader.disown(partition);
  }

  /**
   * Leaves the member set and keeps forwarding until every partition was taken over,
   * unless no other worker is alive, or half the shutdown deadline passed.
   */
  private async leave(): Promise<void> {
    this.leaving = true;
    const deadline = Date.now() + this.config.shutdownTimeoutMs / 2;
    try {
      await this.client.zrem(this.keys.members(), this.id);
      await this.client.hdel(this.keys.memberInfo(), this.id);
    } catch (err) {
      // Redis is away: the others will drop this member when its heartbeat ages out.
      this.logger.warn('could not leave the member set', { err: String(err) });
    }
    void publishEvent(this.client, this.keys, { type: 'left', worker: this.id, reason: 'graceful' }).catch(() => undefined);
    this.logger.info('leaving: handing partitions over', { owned: this.leases.held.size });
    while (this.leases.held.size > 0 && Date.now() < deadline) {
      await this.looks.now();
      if (this.members.length === 0) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    this.logger.info('left', { stillOwned: this.leases.held.size, members: this.members.length });
  }

  /** Ends a start that still waits for Redis (unreachable, or failing over): it rejects with a StartAborted. */
  abortStart(): void {
    this.starting.abort(new StartAborted());
  }

  /**
   * Graceful stop: after the handover, no new events are forwarded, what was gathered is
   * appended and enqueued, active ticket jobs finish, the leases left are released. The caller races it
   * against the shutdown deadline.
   */
  async stop(): Promise<void> {
    if (this.stopping || this.leaving) return;
    const routed = [this.client, this.bullClient];
    await refreshingRoutes(routed, this.leave());
    this.stopping = true;
    this.timers.forEach(clearInterval);
    await this.looks.stop();
    this.logger.info('stopping', { owned: this.leases.held.size });
    const steps: [string, () => Promise<unknown>][] = [
      ['closing the listeners', () => this.subscriber.stop()],
      ['closing the reconciler', () => this.reconciler.close()],
      ['appending the keys gathered', () => this.writer.drain()],
      ['closing the dirty-stream reader', () => this.reader.close()],
      ['finishing the active ticket jobs', () => this.tickets.close()],
      ['releasing the leases left', () => this.leases.releaseAll().then(() => this.forwarding.fill(0))],
      ['closing the queues', () => this.queue.close()],
      ['closing the connections', () => Promise.all([this.control, this.client, this.bullClient].map(closeConnection))],
      ['closing the HTTP server', async () => this.http?.close()],
    ];
    for (const [step, run] of steps) {
      this.stopStep = step;
      // The listeners' topology reads, which keep the maps in line, stop early in a stop.
      await refreshingRoutes(routed, run());
    }
    this.logger.info('stopped', { eventsReceived: this.stats.eventsReceived, appended: this.writer.appended, enqueued: this.reader.enqueued, tickets: this.tickets.made });
  }
}
