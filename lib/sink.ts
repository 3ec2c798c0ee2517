/**
 * Where tickets go. By default every ticket is appended to a stream of the sink (one, or one
 * per shard: README, "The sink contract") with the fields of the sink contract, and recorded in the
 * ticket index in the same script call. A handler module (TG_HANDLER) can replace the default
 * sink or extend it: it receives each batch of tickets and the default sink, which it may call
 * or not; the ticket worker then records the index itself.
 */
import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';
import { ConfigError, HandlerError } from './errors.js';
import { groupBy } from './group-by.js';
import { Keys } from './keys.js';
import type { Logger } from './logger.js';
import { nodeOfSlot, wireArg, type RedisClient } from './redis.js';
import type { Scripts, TicketRequest, ValueRead } from './scripts.js';
import { keySlot } from './slots.js';

export interface Ticket {
  id: string;
  key: Buffer;
  event: string;
  /** Redis type when the ticket was made; 'none' when the key does not exist. */
  type: string;
  value?: Buffer | string;
  /** Digest of the value as the ticket index records it ('' when the key does not exist). */
  digest: string;
  seq: string;
  partition: number;
  slot: number;
  worker: string;
  dirtyAt: number;
  createdAt: number;
}

/** What a sink made of ticket requests itself, and what it left to the caller. */
export interface Made {
  written: number;
  /** Read, for the caller to format and write. */
  read: { request: TicketRequest; read: ValueRead }[];
  /** Not read, for the caller to read and write. */
  unread: TicketRequest[];
}

export interface Sink {
  write(tickets: readonly Ticket[]): Promise<void>;
  /** True when writing also records the tickets in the ticket index. */
  readonly indexes?: boolean;
  /** Reads keys and writes their tickets in the same call, where it can. */
  make?(worker: string, requests: readonly TicketRequest[], createdAt: number): Promise<Made>;
}

/** What a handler module's default export (or its `handle` export) is called with. */
export interface HandlerContext {
  /** The default sink; call it to extend rather than replace it. */
  sink: Sink;
  logger: Logger;
}

export type TicketHandler = (tickets: readonly Ticket[], context: HandlerContext) => Promise<void> | void;

/** A ticket's stream fields and values, as the sink contract names them. */
export function ticketFields(t: Ticket): (string | Buffer | number)[] {
  const fields: (string | Buffer | number)[] = ['id', t.id, 'key', wireArg(t.key), 'event', t.event, 'type', t.type];
  if (t.value !== undefined) fields.push('value', Buffer.isBuffer(t.value) ? wireArg(t.value) : t.value);
  fields.push('seq', t.seq, 'partition', t.partition, 'slot', t.slot, 'worker', t.worker, 'dirtyAt', t.dirtyAt, 'createdAt', t.createdAt);
  return fields;
}

export class StreamSink implements Sink {
  readonly indexes = true;

  constructor(
    private readonly scripts: Scripts,
    private readonly keys: Keys,
    /** The connection the scripts run on: its slot map tells which keys a shard's node serves. */
    private readonly client: RedisClient,
    /** Trim each stream to about this many entries on append (MAXLEN ~): retention for consumers that keep up. */
    private readonly maxLen: number | null = null,
  ) {}

  /**
   * Makes the tickets of the keys the node of their shard serves in one call a shard (a read
   * and an append fewer a node for each ticket job): with masters serving contiguous slot
   * ranges, that is every key but those of a partition astride two masters. Leaves the rest,
   * and every key of a call Redis refused (which wrote nothing), to the caller.
   */
  async make(worker: string, requests: readonly TicketRequest[], createdAt: number): Promise<Made> {
    const made: Made = { written: 0, read: [], unread: [] };
    const nodeOf = (slot: number) => nodeOfSlot(this.client, slot);
    await Promise.all(
      [...groupBy(requests, (r) => this.keys.sinkShardOf(r.partition))].map(async ([shard, group]) => {
        const node = nodeOf(keySlot(this.keys.tickets(shard)));
        const here = group.filter((r) => nodeOf(r.slot) === node);
        if (here.length < group.length) made.unread.push(...group.filter((r) => nodeOf(r.slot) !== node));
        if (here.length === 0) return;
        try {
          const { appended, left } = await this.scripts.makeTickets(shard, worker, createdAt, here, this.maxLen);
          made.written += appended;
          for (const { at, read } of left) made.read.push({ request: here[at]!, read });
        } catch {
          made.unread.push(...here);
        }
      }),
    );
    return made;
  }

  async write(tickets: readonly Ticket[]): Promise<void> {
    // A handler may hand on tickets of several workers: one call a shard and worker.
    const groups = groupBy(tickets, (t) => `${this.keys.sinkShardOf(t.partition)} ${t.worker}`);
    await Promise.all([...groups.values()].map((batch) => this.scripts.appendTickets(this.keys.sinkShardOf(batch[0]!.partition), batch[0]!.worker, batch, this.maxLen)));
  }
}

/**
 * Checks that this worker writes the sink where the prefix's other workers do: the first one
 * lists the streams (`<prefix>:sink-streams`), and a different TG_SINK_SHARDS is refused rather
 * than splitting the tickets and the index between two layouts.
 */
export async function claimSinkLayout(client: RedisClient, scripts: Scripts, keys: Keys): Promise<void> {
  const mine = keys.sinkStreams();
  const unsharded = new Keys(keys.prefix).tickets();
  if (mine.length > 1 && (await client.exists(keys.sinkLayout())) === 0 && (await client.exists(unsharded)) === 1) {
    throw new ConfigError([
      `TG_SINK_SHARDS=${mine.length}: prefix '${keys.prefix}' has tickets in the unsharded sink stream ${unsharded} ` +
        `(written before sink shards existed); set TG_SINK_SHARDS=1 to keep writing there, or use a new TG_PREFIX`,
    ]);
  }
  const theirs = await scripts.claimSinkLayout();
  if (theirs.join('\n') !== mine.join('\n')) {
    throw new ConfigError([
      `TG_SINK_SHARDS=${mine.length}: prefix '${keys.prefix}' already writes its sink to ${theirs.length} stream(s) ` +
        `(${theirs.join(', ')}; listed in ${keys.sinkLayout()}); set TG_SINK_SHARDS=${theirs.length}, or use a new TG_PREFIX`,
    ]);
  }
}

/** Loads the handler module named in the configuration; the default sink when none is. */
export async function loadSink(handler: string | null, defaultSink: Sink, logger: Logger): Promise<Sink> {
  if (handler === null) return defaultSink;
  const url = handler.startsWith('file:') ? handler : pathToFileURL(resolve(handler)).href;
  let mod: { default?: unknown; handle?: unknown };
  try {
    mod = (await import(url)) as typeof mod;
  } catch (err) {
    throw new HandlerError(`TG_HANDLER: cannot load '${handler}': ${err instanceof Error ? err.message : String(err)}`);
  }
  const fn = typeof mod.handle === 'function' ? mod.handle : mod.default;
  if (typeof fn !== 'function') {
    throw new HandlerError(`TG_HANDLER: '${handler}' exports no function (export default or export function handle)`);
  }
  const handle = fn as TicketHandler;
  const context: HandlerContext = { sink: defaultSink, logger };
  return { write: async (tickets) => handle(tickets, context) };
}
