/**
 * Every Redis key and channel name the project writes, built here and nowhere else.
 *
 * The keys of one partition share the hash tag `{p<n>}` so a Lua script can touch a
 * partition's lease, fencing token, coverage mark and dirty stream atomically in a cluster.
 * Everything lives under `<prefix>:`, which is also how the worker recognises its own
 * (and BullMQ's) writes and never tickets them.
 */
import { shardOfSlot, shardTags } from './shards.js';
import { slotRangeOfPartition } from './slots.js';

/** How the default sink is split: its shard count and the partition count that maps partitions to shards. */
export interface SinkLayout {
  shards: number;
  partitions: number;
}

/** The keys of a configuration: its prefix and its sink layout. */
export function keysOf(config: { prefix: string; sinkShards: number; partitions: number }): Keys {
  return new Keys(config.prefix, { shards: config.sinkShards, partitions: config.partitions });
}

export class Keys {
  readonly ownPrefix: Buffer;
  private readonly sinkTags: string[];

  constructor(
    readonly prefix: string,
    readonly sink: SinkLayout = { shards: 1, partitions: 271 },
  ) {
    this.ownPrefix = Buffer.from(`${prefix}:`);
    // One shard keeps the stream name of the unsharded sink, and its slot.
    this.sinkTags = sink.shards === 1 ? [`${prefix}:tickets`] : shardTags('t', sink.shards);
  }

  private partitionKey(partition: number, name: string): string {
    return `${this.prefix}:{p${partition}}:${name}`;
  }

  /** Hash {owner, token, since}, with a TTL: the right to own the partition. */
  lease(partition: number): string {
    return this.partitionKey(partition, 'lease');
  }

  /** Fencing counter: never expires, so a token once used is never issued again. */
  token(partition: number): string {
    return this.partitionKey(partition, 'token');
  }

  /** Hash {at: Redis ms up to which the partition was known covered, owner}; never expires. */
  covered(partition: number): string {
    return this.partitionKey(partition, 'covered');
  }

  /** Stream of dirty keys waiting for a ticket job. */
  dirty(partition: number): string {
    return this.partitionKey(partition, 'dirty');
  }

  /**
   * Per partition, hash key -> '<seq> <digest>' of the key's newest ticket (digest '' for a
   * deletion). Tagged with the sink's slot: the index is written right after the sink, on the
   * same node, so a replica promoted after a crash never holds an index ahead of its sink.
   */
  index(partition: number): string {
    return `${this.prefix}:{${this.sinkTags[this.sinkShardOf(partition)]}}:index:${partition}`;
  }

  /**
   * Sink shard of a partition: the shard whose slot range holds the partition's first slot, so
   * with masters serving contiguous slot ranges a ticket is written on the master of its key.
   */
  sinkShardOf(partition: number): number {
    return shardOfSlot(slotRangeOfPartition(partition, this.sink.partitions).first, this.sink.shards);
  }

  /** A stream of the default sink: `<prefix>:tickets` unsharded, else `<prefix>:tickets:{t<i>.<n>}`. */
  tickets(shard = 0): string {
    return this.sink.shards === 1 ? `${this.prefix}:tickets` : `${this.prefix}:tickets:{${this.sinkTags[shard]}}`;
  }

  /** Every stream of the default sink, in shard order. */
  sinkStreams(): string[] {
    return Array.from({ length: this.sink.shards }, (_, i) => this.tickets(i));
  }

  /** List of the sink's stream names, written by the first worker: how readers find them all. */
  sinkLayout(): string {
    return `${this.prefix}:sink-streams`;
  }

  /** Sorted set of live workers scored by their last heartbeat (Redis ms). */
  members(): string {
    return `${this.prefix}:members`;
  }

  /** Hash worker id -> JSON {host, pid, startedAt, httpPort}: what operators see of a member. */
  memberInfo(): string {
    return `${this.prefix}:member-info`;
  }

  /** Membership and migration events, for any client to follow. */
  eventsChannel(): string {
    return `${this.prefix}:events`;
  }

  /** Handover control messages (disconnect requests), one channel per worker. */
  controlChannel(workerId: string): string {
    return `${this.prefix}:control:${workerId}`;
  }

  /** Gap announcements: every worker that heard all of the window replays what it heard of the partition. */
  gapsChannel(): string {
    return `${this.prefix}:gaps`;
  }

  /** BullMQ key prefix of a queue (shard): hash-tagged so each stays in one cluster slot. */
  queuePrefix(tag = 'q'): string {
    return `${this.prefix}:{${tag}}`;
  }

  /** True for the project's own keys, BullMQ's included. */
  isOwn(key: Buffer): boolean {
    return key.length >= this.ownPrefix.length && this.ownPrefix.compare(key, 0, this.ownPrefix.length) === 0;
  }
}

/** Name of the consumer group through which the owner reads a dirty stream. */
export const DIRTY_GROUP = 'owner';

/** Name of the BullMQ queue that makes tickets. */
export const TICKET_QUEUE = 'tickets';
