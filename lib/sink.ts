/**
 * Where tickets go. By default every ticket is appended to the stream `<prefix>:tickets`
 * with the fields of the sink contract (DESIGN.md); other programs read that stream. A
 * handler module (TG_HANDLER) can replace the default sink or extend it: it receives each
 * batch of tickets and the default sink, which it may call or not.
 */
import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';
import { HandlerError } from './errors.js';
import type { Keys } from './keys.js';
import type { Logger } from './logger.js';
import { wireArg, type RedisClient } from './redis.js';

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
}

/** What a handler module's default export (or its `handle` export) is called with. */
export interface HandlerContext {
  /** The default sink; call it to extend rather than replace it. */
  sink: Sink;
  logger: Logger;
}

export type TicketHandler = (tickets: readonly Ticket[], context: HandlerContext) => Promise<void> | void;

export class StreamSink implements Sink {
  constructor(
    private readonly client: RedisClient,
    private readonly keys: Keys,
    /** Trim to about this many entries on append (MAXLEN ~): retention for consumers that keep up. */
    private readonly maxLen: number | null = null,
  ) {}

  async write(tickets: readonly Ticket[]): Promise<void> {
    const stream = this.keys.tickets();
    await Promise.all(
      tickets.map((t) => {
        const fields: (string | Buffer | number)[] = ['id', t.id, 'key', wireArg(t.key), 'event', t.event, 'type', t.type];
        if (t.value !== undefined) fields.push('value', Buffer.isBuffer(t.value) ? wireArg(t.value) : t.value);
        fields.push('seq', t.seq, 'partition', t.partition, 'slot', t.slot, 'worker', t.worker, 'dirtyAt', t.dirtyAt, 'createdAt', t.createdAt);
        return this.maxLen === null ? this.client.xadd(stream, '*', ...fields) : this.client.xadd(stream, 'MAXLEN', '~', this.maxLen, '*', ...fields);
      }),
    );
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
