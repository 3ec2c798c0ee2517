/**
 * Where tickets go. By default every ticket is appended to a stream of the sink (one, or one
 * per shard: README, "The sink contract") with the fields of the sink contract, and recorded in the
 * ticket index in the same script call. A handler module (TG_HANDLER) can replace the default
 * sink or extend it: it receives each batch of tickets and the default sink, which it may call
 * or not; the ticket worker then records the index itself.
 */
import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';
import { ConfigError, HandlerError, messageOf } from './errors.js';
import { groupBy } from './group-by.js';
import { Keys } from './keys.js';
import type { Logger } from './logger.js';
import { wireArg, type RedisClient } from './redis.js';
import type { Scripts } from './scripts.js';

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

export interface Sink {
  write(tickets: readonly Ticket[]): Promise<void>;
  /** True when writing also records the tickets in the ticket index. */
  readonly indexes?: boolean;
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
    /** Trim each stream to about this many entries on append (MAXLEN ~): retention for consumers that keep up. */
    private readonly maxLen: number | null = null,
  ) {}

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
    throw new HandlerError(`TG_HANDLER: cannot load '${handler}': ${messageOf(err)}`);
  }
  const fn = typeof mod.handle === 'function' ? mod.handle : mod.default;
  if (typeof fn !== 'function') {
    throw new HandlerError(`TG_HANDLER: '${handler}' exports no function (export default or export function handle)`);
  }
  const handle = fn as TicketHandler;
  const context: HandlerContext = { sink: defaultSink, logger };
  return { write: async (tickets) => handle(tickets, context) };
}
