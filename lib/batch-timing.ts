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
 * than a batch can fill only costs wake-ups. And a batch goes right after a paced read rather
 * than on its own timer (flushAfterRead).
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
  const floor = intervalLeft(t, s);
  return s.waiting >= t.batchKeys ? floor : Math.max(floor, s.waitingSince + t.maxWaitMs - s.now);
}

/** Ms until `intervalMs` since the last batch is over: the soonest the next one may go. */
export function intervalLeft(t: BatchTiming, s: BatchState): number {
  return Math.max(0, s.lastBatch + t.intervalMs - s.now);
}

/**
 * How long a keyspace listener stops reading after a chunk (lib/read-pacing.ts): about the time
 * `batchKeys` keys take to come at the rate keys are forwarded now, but at least `minMs` (0: never
 * paused) and at most `maxWaitMs`. A worker carrying a small share of the writes reads once per
 * batch instead of `1000 / minMs` times a second, and appends right after that read (flushAfterRead).
 * Each pause costs a wake-up more than its timer: a stopped socket stays in the event loop's
 * epoll set until the next packet arrives on it (libuv removes it then), so fewer pauses are fewer
 * wake-ups, and on a virtual machine a wake-up costs about as much as a dozen keys (BENCHMARKS.md,
 * eleventh pass).
 *
 * A pause ends no later than the waiting keys are due (`batchDueInMs`) when that is at least `minMs`
 * away: the read that ends it then comes before their batch goes, and what came meanwhile (the rest
 * of a burst) joins it. Sooner than `minMs`, the batch goes on its own and the pause is not shortened.
 */
export function readPause(t: BatchTiming, minMs: number, keysPerMs: number, batchDueInMs = Infinity): number {
  if (minMs <= 0) return 0;
  const longest = Math.max(minMs, t.maxWaitMs);
  const pause = keysPerMs > 0 ? Math.min(longest, Math.max(minMs, t.batchKeys / keysPerMs)) : longest;
  return batchDueInMs >= minMs ? Math.min(pause, batchDueInMs) : pause;
}

/**
 * Whether the waiting keys go right after a listener's paced read, which just added what arrived
 * during the pause: yes when they would otherwise go before the next read (at `nextReadAt`, ms) is
 * half a pause old. Their own timer would cost a wake-up of its own, or hold the next read's keys
 * out of their batch. That is every read of a worker whose share of the writes does not fill a
 * batch in a pause (its pause is then `maxWaitMs`, its keys' wait); a busier worker's batches go on
 * size as before. A batch goes up to a pause early; its keys never wait longer.
 */
export function flushAfterRead(t: BatchTiming, s: BatchState, nextReadAt: number): boolean {
  return s.waiting > 0 && s.now + batchDelay(t, s) <= nextReadAt + (nextReadAt - s.now) / 2;
}
