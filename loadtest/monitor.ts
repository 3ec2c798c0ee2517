/**
 * Follows the sink of one prefix while a load runs: reads each new ticket once (so the
 * cost stays bounded however long the run), keeps the latest ticket per key, the
 * freshness of every ticket, and reads the backlog of dirty streams and ticket jobs.
 */
import type { ConnectionOptions, Queue } from 'bullmq';
import { keyId } from '../lib/coalescer.js';
import type { Keys } from '../lib/keys.js';
import { jobCounts, openShards } from '../lib/ticket-queue.js';
import { bufferCommand, type RedisClient } from '../lib/redis.js';
import { isLater, parseTicket, sinkStreams, type StoredTicket } from '../lib/ticket-reader.js';
import { ticketMatches, writtenAtOf, type FinalState } from './expectations.js';
import { percentiles } from './report.js';

export class SinkMonitor {
  readonly latest = new Map<string, StoredTicket>();
  /** write → ticket ms of every ticket whose value carries its write time. */
  readonly freshness: number[] = [];
  tickets = 0;
  /** Per sink stream, the id of the last ticket read. */
  private readonly lastIds = new Map<string, string>();
  private readonly queues: Queue[];

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
    private readonly partitions: number,
    /** Hash tags of the ticket queues to count (queueShardTags, or the baseline's one). */
    queueTags: readonly string[],
  ) {
    this.queues = openShards(redis as unknown as ConnectionOptions, keys, queueTags);
  }

  /** Reads the tickets made since the last call; returns the median and 99th percentile of their freshness. */
  async poll(): Promise<{ p50: number; p99: number } | null> {
    const fresh: number[] = [];
    const xrange = bufferCommand(this.redis, 'xrange');
    for (const stream of await sinkStreams(this.redis, this.keys.prefix)) await this.pollStream(xrange, stream, fresh);
    this.freshness.push(...fresh);
    if (fresh.length === 0) return null;
    const { p50, p99 } = percentiles(fresh);
    return { p50, p99 };
  }

  private async pollStream(xrange: ReturnType<typeof bufferCommand>, stream: string, fresh: number[]): Promise<void> {
    for (;;) {
      const last = this.lastIds.get(stream);
      const page = (await xrange(stream, last === undefined ? '-' : `(${last}`, '+', 'COUNT', 5000)) as [Buffer, Buffer[]][];
      for (const [id, flat] of page) {
        const t = parseTicket(id, flat);
        this.tickets++;
        const k = keyId(t.key);
        const seen = this.latest.get(k);
        if (!seen || isLater(t, seen)) this.latest.set(k, t);
        const w = writtenAtOf(t);
        if (w !== undefined) fresh.push(t.createdAt - w);
      }
      if (page.length > 0) this.lastIds.set(stream, page[page.length - 1]![0].toString());
      if (page.length < 5000) return;
    }
  }

  /** Dirty entries not yet trimmed plus ticket jobs waiting or running. */
  async backlog(): Promise<number> {
    const lengths = await Promise.all(Array.from({ length: this.partitions }, (_, p) => this.redis.xlen(this.keys.dirty(p))));
    const jobs = await jobCounts(this.queues, 'wait', 'active', 'delayed', 'prioritized');
    return lengths.reduce((a, b) => a + b, 0) + Object.values(jobs).reduce((a, b) => a + b, 0);
  }

  /** Keys whose latest ticket does not carry their final state. */
  lost(final: Record<string, FinalState>): string[] {
    return Object.entries(final)
      .filter(([k, state]) => !ticketMatches(state, this.latest.get(Buffer.from(k).toString('latin1'))))
      .map(([k]) => k);
  }

  async close(): Promise<void> {
    await Promise.all(this.queues.map((q) => q.close()));
  }
}
