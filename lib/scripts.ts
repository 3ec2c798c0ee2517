/**
 * The Lua scripts of lua/, read once and registered on a connection with ioredis's
 * defineCommand (EVALSHA, falling back on EVAL after NOSCRIPT, cluster- and pipeline-
 * aware). Each script has one typed function here, so no caller can pass wrong KEYS or
 * ARGV. The key count of a script is part of its file name (BullMQ's convention).
 */
import { readFileSync } from 'node:fs';
import { isUtf8 } from 'node:buffer';
import { defineReadOnlyCommand, EXACT_KEY_READ, followFailover, perNode, wireArg, type RedisClient } from './redis.js';
import { keySlot } from './slots.js';
import type { Keys } from './keys.js';
import { LeaseCode } from './errors.js';
import { groupBy } from './group-by.js';

const LUA_DIR = new URL('../lua/', import.meta.url);

const SCRIPT_FILES = {
  acquireLease: 'acquire-lease-3.lua',
  renewLease: 'renew-lease-2.lua',
  renewLeases: 'renew-leases-1.lua',
  releaseLease: 'release-lease-2.lua',
  offerLease: 'offer-lease-1.lua',
  takeOverLease: 'take-over-lease-3.lua',
  heartbeat: 'heartbeat-1.lua',
  ackDirty: 'ack-dirty-1.lua',
  ackDirties: 'ack-dirties-1.lua',
  appendDirty: 'append-dirty-1.lua',
  readDirty: 'read-dirty-1.lua',
  claimDirty: 'claim-dirty-1.lua',
  readValue: 'read-value-1.lua',
  readValues: 'read-values-1.lua',
  readLeases: 'read-leases-1.lua',
  digestKeys: 'digest-keys-1.lua',
  recordTickets: 'record-tickets.lua',
  appendTickets: 'append-tickets.lua',
  claimSinkLayout: 'claim-sink-layout-1.lua',
  pruneTombstones: 'prune-tombstones-1.lua',
  slotKeyCounts: 'slot-key-counts-0.lua',
  keysInSlots: 'keys-in-slots-0.lua',
} as const;

type ScriptName = keyof typeof SCRIPT_FILES;

/** Shared pieces (`lua/includes/<name>.lua`) put in place of `--- @include "<name>"` lines, once, at load: BullMQ's way. */
function withIncludes(lua: string): string {
  return lua.replace(/^--- @include "([a-z-]+)"$/gm, (_line, name: string) => readFileSync(new URL(`includes/${name}.lua`, LUA_DIR), 'utf8').trimEnd());
}

/** numberOfKeys undefined: the script takes any number of keys, the count passed first. */
type Sources = Record<ScriptName, { lua: string; numberOfKeys?: number }>;

let sources: Sources | undefined;

function loadSources(): Sources {
  if (!sources) {
    const loaded = {} as Sources;
    for (const [name, file] of Object.entries(SCRIPT_FILES) as [ScriptName, string][]) {
      const count = /-(\d+)\.lua$/.exec(file)?.[1];
      loaded[name] = { lua: withIncludes(readFileSync(new URL(file, LUA_DIR), 'utf8')), numberOfKeys: count === undefined ? undefined : Number(count) };
    }
    sources = loaded;
  }
  return sources;
}

type Call = (...args: (string | number | Buffer)[]) => Promise<unknown>;

export interface Acquired {
  token: number;
  now: number;
  /** Coverage mark left by the previous owner; -1 when never covered. */
  previouslyCovered: number;
  /** Worker that covered the partition before, null when none. */
  previousOwner: string | null;
}

export interface TakenOver {
  token: number;
  now: number;
  /** Coverage mark the old owner's last renewal left (Redis ms); -1 when none. */
  previouslyCovered: number;
}

export interface ValueRead {
  type: string;
  /** Digest of the value (lua/includes/value-digest.lua); '' when the key does not exist. */
  digest: string;
  /** Raw reply: a Buffer for strings, an array of Buffers (nested for streams) otherwise. */
  value?: Buffer | unknown[];
}

/** One entry of the ticket index: the seq and value digest of a key's newest ticket. */
export interface IndexRecord {
  partition: number;
  key: Buffer;
  seq: string;
  digest: string;
}

/** What the default sink appends of a ticket (lib/sink.ts's Ticket, less its worker). */
export interface SinkRecord extends IndexRecord {
  id: string;
  event: string;
  type: string;
  /** Absent when the key does not exist. */
  value?: Buffer | string;
  slot: number;
  dirtyAt: number;
  createdAt: number;
}

/** The index hashes a script call names, each given its 1-based position in KEYS once. */
class IndexPositions {
  readonly names: string[] = [];
  private readonly at = new Map<number, number>();

  constructor(
    private readonly keys: Keys,
    private readonly first: number,
  ) {}

  of(partition: number): number {
    let at = this.at.get(partition);
    if (at === undefined) {
      at = this.first + this.names.length;
      this.at.set(partition, at);
      this.names.push(this.keys.index(partition));
    }
    return at;
  }
}

/** Scripts flagged `no-writes` run as EVALSHA_RO, which a user with read-only access to the keys may call. */
function defineScript(client: RedisClient, command: string, source: { lua: string; numberOfKeys?: number }): void {
  if (/^#!lua flags=\S*\bno-writes\b/.test(source.lua)) defineReadOnlyCommand(client, command, source);
  else client.defineCommand(command, source);
}

export class Scripts {
  private readonly call: Record<ScriptName, Call>;
  private readonly callBuffer: Record<ScriptName, Call>;
  /** readValue for keys that are not valid UTF-8, outside auto-pipelining (see EXACT_KEY_READ). */
  private readonly readExact: Call;

  constructor(
    private readonly client: RedisClient,
    private readonly keys: Keys,
  ) {
    const src = loadSources();
    const call = {} as Record<ScriptName, Call>;
    const callBuffer = {} as Record<ScriptName, Call>;
    for (const name of Object.keys(src) as ScriptName[]) {
      const command = `tg_${name}`;
      if (!(command in client)) defineScript(client, command, src[name]);
      const target = client as unknown as Record<string, Call>;
      call[name] = target[command]!.bind(client);
      callBuffer[name] = target[`${command}Buffer`]!.bind(client);
    }
    this.call = call;
    this.callBuffer = callBuffer;
    const target = client as unknown as Record<string, Call>;
    if (!(EXACT_KEY_READ in client)) defineScript(client, EXACT_KEY_READ, src.readValue);
    this.readExact = target[`${EXACT_KEY_READ}Buffer`]!.bind(client);
  }


  /** Takes a free lease; null when another worker holds it. */
  async acquireLease(partition: number, workerId: string, ttlMs: number): Promise<Acquired | null> {
    const k = this.keys;
    const reply = (await this.call.acquireLease(k.lease(partition), k.token(partition), k.covered(partition), workerId, ttlMs)) as number | [number, number, number, string];
    if (reply === LeaseCode.Held) return null;
    const [token, now, previouslyCovered, previousOwner] = reply as [number, number, number, string];
    return { token, now, previouslyCovered, previousOwner: previousOwner || null };
  }

  /** Extends the lease, the coverage mark up to `heardUpTo` (Redis ms); null when the token was superseded (the lease is lost). */
  async renewLease(partition: number, workerId: string, token: number, ttlMs: number, heardUpTo: number): Promise<number | null> {
    const k = this.keys;
    const reply = (await this.call.renewLease(k.lease(partition), k.covered(partition), workerId, token, ttlMs, Math.floor(heardUpTo))) as number;
    return reply === LeaseCode.Superseded ? null : reply;
  }

  /**
   * Renews held leases whose keys one Redis node serves, in one call (see renewLease); per
   * lease the renewal's Redis time, or null when it was superseded.
   */
  async renewLeases(leases: readonly { partition: number; token: number; heardUpTo: number }[], workerId: string, ttlMs: number): Promise<(number | null)[]> {
    if (leases.length === 0) return [];
    const k = this.keys;
    const args: (string | number)[] = [workerId, ttlMs];
    for (const l of leases) args.push(k.lease(l.partition), k.covered(l.partition), l.token, Math.floor(l.heardUpTo));
    const replies = (await this.call.renewLeases(k.lease(leases[0]!.partition), ...args)) as number[];
    return replies.map((r) => (r === LeaseCode.Superseded ? null : r));
  }

  /** Gives the lease up; false when the token was already superseded. */
  async releaseLease(partition: number, workerId: string, token: number): Promise<boolean> {
    const k = this.keys;
    const reply = (await this.call.releaseLease(k.lease(partition), k.covered(partition), workerId, token)) as number;
    return reply !== LeaseCode.Superseded;
  }

  /** Offers a held lease to another worker; false when the token was superseded. */
  async offerLease(partition: number, workerId: string, token: number, to: string): Promise<boolean> {
    const reply = (await this.call.offerLease(this.keys.lease(partition), workerId, token, to)) as number;
    return reply !== LeaseCode.Superseded;
  }

  /** Takes over a lease offered to this worker by `from`; null when it is not (or no longer) offered. */
  async takeOverLease(partition: number, workerId: string, from: string, ttlMs: number): Promise<TakenOver | null> {
    const k = this.keys;
    const reply = (await this.call.takeOverLease(k.lease(partition), k.token(partition), k.covered(partition), workerId, from, ttlMs)) as number | number[];
    if (reply === LeaseCode.NotOffered) return null;
    const [token, now, previouslyCovered] = reply as number[];
    return { token: token!, now: now!, previouslyCovered: previouslyCovered! };
  }

  /** Records a heartbeat; returns the live members and those just dropped for silence. */
  async heartbeat(workerId: string, memberTtlMs: number): Promise<{ live: string[]; dropped: string[] }> {
    const [live, dropped] = (await this.call.heartbeat(this.keys.members(), workerId, memberTtlMs)) as [string[], string[]];
    return { live, dropped };
  }

  /** Acknowledges dirty entries and deletes them. */
  async ackDirty(partition: number, group: string, ids: readonly string[]): Promise<number> {
    return (await this.call.ackDirty(this.keys.dirty(partition), group, ...ids)) as number;
  }

  /**
   * New entries of many partitions' dirty streams, all served by one Redis node, in one call
   * (XREADGROUP each); per partition, in order, [] when none.
   */
  async readDirty(partitions: readonly number[], group: string, consumer: string, count: number): Promise<[Buffer, Buffer[]][][]> {
    const streams = partitions.map((p) => this.keys.dirty(p));
    return (await this.callBuffer.readDirty(streams[0], group, consumer, count, ...streams)) as [Buffer, Buffer[]][][];
  }

  /** Claims the pending entries of many partitions' dirty streams, all served by one Redis node, in one call: per partition in order. */
  async claimDirty(partitions: readonly number[], group: string, consumer: string, count: number): Promise<[Buffer, Buffer[]][][]> {
    const streams = partitions.map((p) => this.keys.dirty(p));
    return (await this.callBuffer.claimDirty(streams[0], group, consumer, count, ...streams)) as [Buffer, Buffer[]][][];
  }

  /**
   * Appends dirty keys to many partitions' dirty streams, all served by one Redis node, in one
   * call; `fields` names the entry's fields. The new entries' ids, per partition in order.
   */
  async appendDirty(fields: { key: string; event: string; at: string }, appends: readonly { partition: number; dirty: readonly { key: Buffer; event: string; at: number }[] }[]): Promise<string[][]> {
    const args: (string | number | Buffer)[] = [fields.key, fields.event, fields.at];
    for (const a of appends) {
      args.push(this.keys.dirty(a.partition), a.dirty.length);
      for (const d of a.dirty) args.push(wireArg(d.key), d.event, d.at);
    }
    return (await this.call.appendDirty(this.keys.dirty(appends[0]!.partition), ...args)) as string[][];
  }

  /** Acknowledges entries of many partitions' dirty streams, all served by one Redis node, in one call (see ackDirty). */
  async ackDirties(group: string, acks: readonly { partition: number; ids: readonly string[] }[]): Promise<number> {
    const args: (string | number)[] = [group];
    for (const a of acks) args.push(this.keys.dirty(a.partition), a.ids.length, ...a.ids);
    return (await this.call.ackDirties(this.keys.dirty(acks[0]!.partition), ...args)) as number;
  }

  /**
   * Type and value of a key, read atomically, binary-safe. `unpipelined`: outside ioredis's
   * auto-pipelining, for a reader that checks many keys at once (lib/ticket-reader.ts): a load
   * test's run died once in ioredis's auto-pipeline callback (`results[i] is not iterable`) on
   * such a burst of script calls.
   */
  async readValue(key: Buffer, unpipelined = false): Promise<ValueRead> {
    const piped = isUtf8(key) && !unpipelined;
    const [type, digest, value] = (await (piped ? this.callBuffer.readValue(key.toString('utf8')) : this.readExact(key))) as [Buffer, Buffer, Buffer | unknown[] | undefined];
    return { type: type.toString(), digest: digest.toString(), value: value ?? undefined };
  }

  /**
   * Type and value of many keys (see readValue), one call a Redis node for the keys that are valid
   * UTF-8 (ioredis routes a call by its first argument as a string), key by key for the others and
   * wherever a node's call is refused (a slot moved).
   */
  async readValues(keys: readonly Buffer[]): Promise<ValueRead[]> {
    const out = new Array<ValueRead>(keys.length);
    const utf8 = [...keys.keys()].filter((i) => isUtf8(keys[i]!));
    const viaNodes = perNode(
      this.client,
      utf8,
      (i) => keySlot(keys[i]!),
      async (group) => {
        const names = group.map((i) => keys[i]!.toString('utf8'));
        const replies = (await this.callBuffer.readValues(names[0], ...names)) as [Buffer, Buffer, Buffer | unknown[] | undefined][];
        return replies.map(([type, digest, value]) => ({ type: type.toString(), digest: digest.toString(), value: value ?? undefined }));
      },
      (i) => this.readValue(keys[i]!),
    );
    await Promise.all([
      viaNodes.then((values) => utf8.forEach((i, j) => (out[i] = values[j]!))),
      ...keys.map(async (key, i) => {
        if (!isUtf8(key)) out[i] = await this.readValue(key);
      }),
    ]);
    return out;
  }

  /**
   * Owner, token and offer of each partition's lease (null where absent), one call a Redis node
   * (lua/read-leases-1.lua).
   */
  async readLeases(partitions: readonly number[]): Promise<(string | null)[][]> {
    const k = this.keys;
    return perNode(
      this.client,
      partitions,
      (p) => keySlot(k.lease(p)),
      async (group) => {
        const names = group.map((p) => k.lease(p));
        return (await this.call.readLeases(names[0]!, ...names)) as (string | null)[][];
      },
      (p) => this.client.hmget(k.lease(p), 'owner', 'token', 'offer'),
    );
  }

  /** Digests of what the keys hold now ('' for a missing key); in a cluster all served by the node this connection reaches. */
  async digestKeys(keys: readonly Buffer[]): Promise<string[]> {
    if (keys.length === 0) return [];
    const digests = (await this.callBuffer.digestKeys(keys[0]!, ...keys)) as Buffer[];
    return digests.map((d) => d.toString());
  }

  /**
   * Keys in each slot of [first, last] on the node this connection reaches (a cluster node's own
   * connection), the project's own keys not counted where a slot holds few.
   */
  async slotKeyCounts(first: number, last: number): Promise<number[]> {
    return (await this.call.slotKeyCounts(first, last, this.keys.ownPrefix)) as number[];
  }

  /** The keys of each slot, at most `count` of each, on the node this connection reaches (a cluster node's own connection). */
  async keysInSlots(slots: readonly { slot: number; count: number }[]): Promise<Buffer[][]> {
    if (slots.length === 0) return [];
    return (await this.callBuffer.keysInSlots(...slots.flatMap(({ slot, count }) => [slot, count]))) as Buffer[][];
  }

  /** Records index entries (only where newer than what is recorded): a call a sink shard. Returns how many were written. */
  async recordTickets(entries: readonly IndexRecord[]): Promise<number> {
    const written = await Promise.all(
      [...groupBy(entries, (e) => this.keys.sinkShardOf(e.partition)).values()].map(async (group) => {
        const indexes = new IndexPositions(this.keys, 1);
        const args: (string | Buffer | number)[] = [];
        for (const e of group) args.push(indexes.of(e.partition), wireArg(e.key), e.seq, e.digest);
        return (await this.call.recordTickets(indexes.names.length, ...indexes.names, ...args)) as number;
      }),
    );
    return written.reduce((a, b) => a + b, 0);
  }

  /**
   * Appends tickets, all made by `worker`, to one shard of the default sink and records them in
   * the index, in one call (lua/append-tickets.lua writes the field names). Returns how many were
   * appended.
   */
  async appendTickets(shard: number, worker: string, tickets: readonly SinkRecord[], maxLen: number | null): Promise<number> {
    if (tickets.length === 0) return 0;
    // KEYS[1] is the stream, so index hashes start at position 2.
    const indexes = new IndexPositions(this.keys, 2);
    const args: (string | number | Buffer)[] = [maxLen ?? 0, worker];
    for (const t of tickets) {
      const value = t.value === undefined ? '' : Buffer.isBuffer(t.value) ? wireArg(t.value) : t.value;
      args.push(indexes.of(t.partition), wireArg(t.key), t.seq, t.digest, t.id, t.event, t.type, t.value === undefined ? '0' : '1', value, t.partition, t.slot, t.dirtyAt, t.createdAt);
    }
    const stream = this.keys.tickets(shard);
    return (await followFailover(this.client, keySlot(stream), this.call.appendTickets(1 + indexes.names.length, stream, ...indexes.names, ...args))) as number;
  }

  /** The sink's stream names as the prefix's first worker listed them (listing ours if none did). */
  async claimSinkLayout(): Promise<string[]> {
    return (await this.call.claimSinkLayout(this.keys.sinkLayout(), ...this.keys.sinkStreams())) as string[];
  }

  /** Removes the listed tombstones of a partition's index whose seq is older than the cutoff (Redis ms). */
  async pruneTombstones(partition: number, cutoffMs: number, keys: readonly Buffer[]): Promise<number> {
    if (keys.length === 0) return 0;
    return (await this.call.pruneTombstones(this.keys.index(partition), cutoffMs, ...keys)) as number;
  }
}
