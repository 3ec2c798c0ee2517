/**
 * Prometheus metrics of a worker (prom-client). Counters are read from the worker's
 * plain counters when scraped, so the hot path pays nothing for them; the only reads of
 * Redis are one XLEN per owned dirty stream.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { WorkerSnapshot, WorkerView } from './worker-view.js';

/**
 * How often the event loop's delay is sampled for the nodejs_eventloop_lag_* figures. prom-client
 * samples every 10 ms by default: a timer that woke a worker 100 times a second, more than all its
 * own work when idle, and 85 more wake-ups a second each for six workers under load (BENCHMARKS.md,
 * eighth pass). A stall long enough to matter here (a lease renewal is due every
 * TG_RENEW_INTERVAL_MS) still shows at this rate.
 */
const EVENT_LOOP_SAMPLE_MS = 1000;

const COUNTERS: [string, string, (s: WorkerSnapshot) => number][] = [
  ['tg_events_received_total', 'keyspace events received', (s) => s.eventsReceived],
  ['tg_dirty_keys_appended_total', 'dirty keys appended to dirty streams', (s) => s.dirtyKeysAppended],
  ['tg_dirty_entries_read_total', 'dirty-stream entries taken by the owner: read back, or appended by the owner itself', (s) => s.dirtyEntriesRead],
  ['tg_ticket_jobs_enqueued_total', 'ticket jobs enqueued (each carries up to TG_BATCH_SIZE coalesced keys; BullMQ costs about the same per job whatever its size)', (s) => s.ticketJobsEnqueued],
  ['tg_tickets_made_total', 'tickets written to the sink', (s) => s.ticketsMade],
  ['tg_tickets_coalesced_total', 'dirty entries folded into another of the same key before a job', (s) => s.dirtyEntriesRead - s.keysEnqueued],
  ['tg_handovers_total', 'partitions taken over from a live owner', (s) => s.handovers],
  ['tg_takeovers_total', "partitions acquired after another owner's lease expired", (s) => s.takeovers],
  ['tg_gap_repairs_total', 'gap repairs: shadow replays, and partitions compared with the ticket index after a window nobody heard', (s) => s.gapRepairs],
  ['tg_gap_keys_marked_total', 'keys marked dirty by gap repairs', (s) => s.gapKeysMarked],
  ['tg_reconcile_passes_total', 'continuous reconciliation passes over every owned partition', (s) => s.reconcilePasses],
  ['tg_reconcile_keys_compared_total', 'keys compared with the ticket index', (s) => s.reconcileKeysCompared],
  ['tg_reconcile_divergent_keys_total', 'keys whose newest ticket differed from Redis outside any known gap, found by reconciliation', (s) => s.divergentKeys],
  ['tg_ticket_jobs_failed_total', 'ticket jobs that failed their last attempt (their keys converge through reconciliation)', (s) => s.ticketJobsFailed],
  ['tg_dirty_append_failures_total', 'appends of dirty keys Redis refused (an OOM answer, an outage); retried until they land', (s) => s.dirtyAppendFailures],
  ['tg_dirty_keys_shed_total', 'dirty keys dropped from memory past TG_MAX_PENDING_KEYS; their partition is repaired instead', (s) => s.dirtyKeysShed],
  ['tg_redis_reconnects_total', 'Redis connections lost and reopened', (s) => s.redisReconnects],
];

export function createMetrics(worker: WorkerView): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ worker: worker.id });
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS });
  for (const [name, help, read] of COUNTERS) {
    let reported = 0;
    new Counter({
      name,
      help,
      registers: [registry],
      collect() {
        const now = read(worker.snapshot());
        if (now > reported) this.inc(now - reported);
        reported = now;
      },
    });
  }
  new Gauge({ name: 'tg_partitions_owned', help: 'partitions this worker owns', registers: [registry], collect() {
    this.set(worker.snapshot().partitionsOwned);
  } });
  new Gauge({ name: 'tg_partitions', help: 'partitions of the prefix (TG_PARTITIONS): what the workers owning them should add up to', registers: [registry], collect() {
    this.set(worker.snapshot().partitions);
  } });
  new Gauge({ name: 'tg_members', help: 'live workers this worker sees', registers: [registry], collect() {
    this.set(worker.snapshot().members);
  } });
  new Gauge({ name: 'tg_backlog', help: 'dirty keys waiting: in memory to be appended, and in owned dirty streams', registers: [registry], async collect() {
    this.set(worker.snapshot().pendingInMemory + (await worker.ownedBacklog()));
  } });
  new Gauge({ name: 'tg_subscriber_lag_seconds', help: "seconds since a master's keyspace listener last proved it had heard everything (its last answered PING)", labelNames: ['node'], registers: [registry], collect() {
    this.reset();
    for (const { node, seconds } of worker.snapshot().subscriberLag) this.set({ node }, Number.isFinite(seconds) ? seconds : -1);
  } });
  new Gauge({ name: 'tg_ready', help: '1 when subscribed everywhere and holding its share', registers: [registry], collect() {
    this.set(worker.ready() ? 1 : 0);
  } });
  const renew = new Histogram({ name: 'tg_lease_renew_seconds', help: 'time of a lease renewal round', buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1], registers: [registry] });
  worker.onRenewal((ms) => renew.observe(ms / 1000));
  const freshness = new Histogram({ name: 'tg_ticket_freshness_seconds', help: 'from a change seen to its ticket in the sink', buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60], registers: [registry] });
  worker.onTicketsWritten((ms) => ms.forEach((m) => freshness.observe(m / 1000)));
  return registry;
}

