/**
 * Reading the default sink back: every ticket of every stream the prefix's workers listed
 * (`<prefix>:sink-streams`, README "The sink"), and the latest one (greatest seq) of each key;
 * all tickets of a key are in one stream. The load test, the tests and operators verify final
 * values this way.
 */
import { compareStreamIds, keyId } from './coalescer.js';
import { Keys } from './keys.js';
import { bufferCommand, type RedisClient } from './redis.js';
import { Scripts } from './scripts.js';
import type { Ticket } from './sink.js';
import { formatValue } from './values.js';

/** A ticket as read back: the value always as bytes. */
export interface StoredTicket extends Omit<Ticket, 'value' | 'digest'> {
  /** Stream id of the ticket in the sink. */
  streamId: string;
  value?: Buffer;
}

/** A ticket from its stream id and flat field list, as XRANGE returns them. */
export function parseTicket(streamId: Buffer, flat: Buffer[]): StoredTicket {
  const f = new Map<string, Buffer>();
  for (let i = 0; i + 1 < flat.length; i += 2) f.set(flat[i]!.toString(), flat[i + 1]!);
  const str = (name: string) => f.get(name)?.toString() ?? '';
  return {
    streamId: streamId.toString(),
    id: str('id'),
    key: f.get('key') ?? Buffer.alloc(0),
    event: str('event'),
    type: str('type'),
    value: f.get('value'),
    seq: str('seq'),
    partition: Number(str('partition')),
    slot: Number(str('slot')),
    worker: str('worker'),
    dirtyAt: Number(str('dirtyAt')),
    createdAt: Number(str('createdAt')),
  };
}

/** The sink's streams as the prefix's workers listed them; the unsharded stream when none did yet. */
export async function sinkStreams(client: RedisClient, prefix: string): Promise<string[]> {
  const keys = new Keys(prefix);
  const listed = await client.lrange(keys.sinkLayout(), 0, -1);
  return listed.length > 0 ? listed : keys.sinkStreams();
}

/** The keys of a prefix with the sink layout its workers use (for the ticket index: `tg reconcile`, tests). */
export async function sinkKeys(client: RedisClient, prefix: string, partitions: number): Promise<Keys> {
  return new Keys(prefix, { shards: (await sinkStreams(client, prefix)).length, partitions });
}

/** Calls `each` for every ticket in the sink, stream after stream, each oldest first, reading in bounded pages. */
export async function forEachTicket(client: RedisClient, keys: Keys, each: (t: StoredTicket) => void, pageSize = 10000): Promise<number> {
  let count = 0;
  for (const stream of await sinkStreams(client, keys.prefix)) {
    for (let start = '-'; ; ) {
      const page = (await bufferCommand(client, 'xrange')(stream, start, '+', 'COUNT', pageSize)) as [Buffer, Buffer[]][];
      for (const [id, fields] of page) {
        each(parseTicket(id, fields));
        count++;
      }
      if (page.length < pageSize) break;
      start = `(${page[page.length - 1]![0].toString()}`;
    }
  }
  return count;
}

/** Whether ticket a supersedes ticket b of the same key. */
export function isLater(a: Pick<StoredTicket, 'seq'>, b: Pick<StoredTicket, 'seq'>): boolean {
  return compareStreamIds(a.seq, b.seq) > 0;
}

/** The latest ticket of each key (by seq), keyed by the key's binary-safe id. */
export async function latestTickets(client: RedisClient, keys: Keys): Promise<{ latest: Map<string, StoredTicket>; total: number }> {
  const latest = new Map<string, StoredTicket>();
  const total = await forEachTicket(client, keys, (t) => {
    const id = keyId(t.key);
    const seen = latest.get(id);
    if (!seen || isLater(t, seen)) latest.set(id, t);
  });
  return { latest, total };
}

/** What Redis holds now for each key, as a ticket shows it, keyed by binary-safe id (null: absent). */
export async function redisState(client: RedisClient, keys: Keys, names: readonly Buffer[]): Promise<Map<string, Buffer | null>> {
  const scripts = new Scripts(client, keys);
  const state = new Map<string, Buffer | null>();
  for (let i = 0; i < names.length; i += 1000) {
    const page = names.slice(i, i + 1000);
    const values = await Promise.all(page.map(async (k) => formatValue(await scripts.readValue(k, true)).value ?? null));
    page.forEach((k, j) => {
      const v = values[j]!;
      state.set(keyId(k), v === null ? null : Buffer.isBuffer(v) ? v : Buffer.from(v));
    });
  }
  return state;
}

/**
 * Keys (binary-safe ids) whose newest ticket is not what Redis holds now, absent keys included;
 * a key that does not exist and never had a ticket is fine. The check against Redis itself,
 * not against what a writer thinks it wrote.
 */
export async function keysOffRedis(client: RedisClient, keys: Keys, names: readonly Buffer[]): Promise<string[]> {
  const state = await redisState(client, keys, names);
  const { latest } = await latestTickets(client, keys);
  return [...state]
    .filter(([id, want]) => {
      const t = latest.get(id);
      if (want === null) return t !== undefined && t.value !== undefined;
      return t?.value === undefined || !t.value.equals(want);
    })
    .map(([id]) => id);
}
