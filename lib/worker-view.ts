/**
 * What the HTTP endpoints and the metrics see of a worker: a narrow view, so that neither imports
 * the worker; the worker imports them, never the other way round.
 */
import type { KeyLocation } from './cluster-info.js';

export interface WorkerStats {
  eventsReceived: number;
  /** Partitions taken over from a live owner (graceful handover). */
  handovers: number;
  /** Partitions acquired after another owner's lease expired. */
  takeovers: number;
  /** Connections to Redis lost and opened again. */
  redisReconnects: number;
}

/** Every counter of a worker, for metrics. */
export interface WorkerSnapshot extends WorkerStats {
  dirtyKeysAppended: number;
  dirtyEntriesRead: number;
  keysEnqueued: number;
  ticketJobsEnqueued: number;
  ticketsMade: number;
  pendingInMemory: number;
  partitionsOwned: number;
  members: number;
  gapRepairs: number;
  gapKeysMarked: number;
  gapRepairMs: number;
  reconcilePasses: number;
  reconcileKeysCompared: number;
  divergentKeys: number;
  /** Partitions of the prefix (TG_PARTITIONS). */
  partitions: number;
  ticketJobsFailed: number;
  /** Batches of dirty keys Redis refused to append (OOM, an outage), retried since. */
  dirtyAppendFailures: number;
  /** Dirty keys dropped from memory past TG_MAX_PENDING_KEYS, left to their partition's repair. */
  dirtyKeysShed: number;
  /** Seconds since each master's listener last proved it heard everything. */
  subscriberLag: { node: string; seconds: number }[];
}

export interface WorkerView {
  readonly id: string;
  snapshot(): WorkerSnapshot;
  /** Subscribed and hearing everything where its partitions live, holding its share, not leaving. */
  ready(): boolean;
  /** Entries waiting in the dirty streams the worker owns. */
  ownedBacklog(): Promise<number>;
  /** Latency of lease renewal rounds, ms, as they happen. */
  onRenewal(listener: (ms: number) => void): void;
  /** Change seen → ticket written, ms, of each ticket of a job, once the sink has them. */
  onTicketsWritten(listener: (freshnessMs: number[]) => void): void;
  /** Where a key lives: slot, partition, owner, Redis node. */
  lookup(key: string): Promise<KeyLocation>;
}
