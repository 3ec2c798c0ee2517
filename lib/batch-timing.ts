/**
 * When a worker appends the keyspace events it gathered: the first stage of the pipeline sets
 * the size of every later batch (an owner reads its streams right after its own appends, and a
 * reading round makes the ticket jobs), and each batch costs about the same whatever its size
 * (a script call a node, BullMQ's scripts a job, a value read and a sink append a node). A
 * worker carries only its partitions' share of the writes: with a fixed interval, more workers
 * would make more, smaller batches of the same writes. So a batch waits until `batchKeys` keys
 * wait, but never longer than `maxWaitMs` after its first key, nor less than `intervalMs` after
 * the last batch (a Kafka producer's batch.size and linger.ms).
 */

export interface BatchTiming {
  /** Shortest time between two batches (TG_FLUSH_INTERVAL_MS). */
  intervalMs: number;
  /** Keys waiting that make a batch go at once (TG_FLUSH_KEYS). */
  batchKeys: number;
  /** Longest a key waits for the batch to fill (TG_FLUSH_MAX_WAIT_MS). */
  maxWaitMs: number;
}

export interface BatchState {
  now: number;
  /** When the last batch went (ms; 0 before the first). */
  lastBatch: number;
  /** Keys waiting, and since when the first of them waits (ms). */
  waiting: number;
  waitingSince: number;
}

/** Ms until the waiting keys go. */
export function batchDelay(t: BatchTiming, s: BatchState): number {
  const floor = s.lastBatch + t.intervalMs - s.now;
  if (s.waiting >= t.batchKeys) return Math.max(0, floor);
  return Math.max(0, floor, s.waitingSince + t.maxWaitMs - s.now);
}
