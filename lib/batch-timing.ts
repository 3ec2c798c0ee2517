/**
 * When a worker appends the keyspace events it gathered: the first stage of the pipeline sets
 * the size of every later batch (an owner reads its streams right after its own appends, and a
 * reading round makes the ticket jobs), and each batch costs about the same whatever its size
 * (a script call a node, BullMQ's scripts a job, a value read and a sink append a node). A
 * worker carries only its partitions' share of the writes: with a fixed interval, more workers
 * would make more, smaller batches of the same writes. So a batch waits until `batchKeys` keys
 * wait, but never longer than `maxWaitMs` after its first key, nor less than `intervalMs` after
 * the last batch (a Kafka producer's batch.size and linger.ms).
 *
 * The listeners feeding a batch pace their reads the same way (readPause): reading more often
 * than a batch can fill only costs wake-ups.
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

/**
 * How long a keyspace listener stops reading after a chunk (lib/read-pacing.ts): about the time
 * `batchKeys` keys take to come at the rate keys are forwarded now, but at least `minMs` (0: never
 * paused) and at most half of `maxWaitMs`, so a key is read well before its batch is due. A worker
 * carrying a small share of the writes reads a few times per batch instead of `1000 / minMs`
 * times a second.
 */
export function readPause(t: BatchTiming, minMs: number, keysPerMs: number): number {
  if (minMs <= 0) return 0;
  const longest = Math.max(minMs, t.maxWaitMs / 2);
  return keysPerMs > 0 ? Math.min(longest, Math.max(minMs, t.batchKeys / keysPerMs)) : longest;
}
