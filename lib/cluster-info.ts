/**
 * What operators ask of a running cluster: who is alive, who owns what, where a key
 * lives, how much work waits. Every figure comes from a bounded read (one small command
 * per partition at most, a fixed-size tail of the sink), never from a scan of the data,
 * so it stays fast however many keys Redis holds and however loaded it is.
 */
import type { ConnectionOptions } from 'bullmq';
import type { Keys } from './keys.js';
import { queueShardTags } from './shards.js';
import { jobCounts, openShards } from './ticket-queue.js';
import { readLeases } from './lease-keeper.js';
import { Scripts } from './scripts.js';
import { sinkStreams } from './ticket-reader.js';
import { endpointName, masters, serverTime, type RedisClient, type RedisTarget } from './redis.js';
import { keySlot, partitionOfSlot, slotRangeOfPartition } from './slots.js';

export interface KeyLocation {
  key: string;
  slot: number;
  partition: number;
  owner: string | null;
  token: number | null;
  /** The Redis master that holds the slot (`host:port`). */
  node: string;
}

export interface MemberInfo {
  id: string;
  /** ms since its last heartbeat. */
  heartbeatAgeMs: number;
  /** ms since it started, when it told. */
  ageMs: number | null;
  host: string | null;
  pid: number | null;
  partitions: number;
}

export interface LeaseInfo {
  partition: number;
  owner: string | null;
  token: number;
  /** ms since the current owner took it. */
  ageMs: number | null;
}

export interface ClusterInfo {
  prefix: string;
  partitions: number;
  members: MemberInfo[];
  unowned: number[];
  leases: LeaseInfo[];
  /** Dirty-stream entries waiting for a ticket job, all partitions. */
  dirtyBacklog: number;
  queue: Record<string, number>;
  ticketsTotal: number;
  /** Tickets per second over the last few seconds, from the sink's newest entries. */
  ticketsPerSecond: number;
}

export async function lookupKey(client: RedisClient, target: RedisTarget, keys: Keys, partitions: number, key: Buffer | string): Promise<KeyLocation> {
  const slot = keySlot(key);
  const partition = partitionOfSlot(slot, partitions);
  const [owner, token] = await client.hmget(keys.lease(partition), 'owner', 'token');
  const node = (await masters(client, target)).find((m) => m.ranges.some(([a, b]) => slot >= a && slot <= b));
  return {
    key: Buffer.isBuffer(key) ? key.toString() : key,
    slot,
    partition,
    owner: owner ?? null,
    token: token ? Number(token) : null,
    node: node ? endpointName(node) : 'unknown',
  };
}

/** Tickets per second into one sink stream, from at most 1,000 of its newest entries (their ids carry the time). */
async function recentRate(client: RedisClient, stream: string, now: number): Promise<number> {
  const newest = (await client.xrevrange(stream, '+', '-', 'COUNT', 1000)).map(([id]) => Number(id.split('-')[0]));
  const windowMs = 5000;
  const inWindow = newest.filter((t) => t >= now - windowMs);
  if (inWindow.length < newest.length || newest.length < 1000) return inWindow.length / (windowMs / 1000);
  // All 1,000 fell in the window: the rate is at least 1,000 over the time they span.
  const span = Math.max(1, now - newest[newest.length - 1]!);
  return (1000 * newest.length) / span;
}

export async function clusterInfo(client: RedisClient, keys: Keys, partitions: number, queueShards: number): Promise<ClusterInfo> {
  // Made before any command is queued: defining the scripts while an auto-pipeline waits garbles its replies.
  const scripts = new Scripts(client, keys);
  const now = await serverTime(client);
  const streams = await sinkStreams(client, keys.prefix);
  const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);
  const [heartbeats, infos, leases, lengths, ticketsTotal, rate] = await Promise.all([
    client.zrange(keys.members(), 0, -1, 'WITHSCORES'),
    client.hgetall(keys.memberInfo()),
    readLeases(client, keys, partitions, scripts),
    Promise.all(Array.from({ length: partitions }, (_, p) => client.xlen(keys.dirty(p)))),
    Promise.all(streams.map((s) => client.xlen(s))).then(sum),
    Promise.all(streams.map((s) => recentRate(client, s, now))).then(sum),
  ]);
  const since = await Promise.all(Array.from({ length: partitions }, (_, p) => (leases[p]!.owner ? client.hget(keys.lease(p), 'since') : null)));
  const queues = openShards(client as unknown as ConnectionOptions, keys, queueShardTags(queueShards));
  const counts = await jobCounts(queues, 'wait', 'active', 'delayed', 'prioritized', 'failed');
  await Promise.all(queues.map((q) => q.close()));

  const members: MemberInfo[] = [];
  for (let i = 0; i + 1 < heartbeats.length; i += 2) {
    const id = heartbeats[i]!;
    let info: { host?: string; pid?: number; startedAt?: number } = {};
    try {
      info = JSON.parse(infos[id] ?? '{}') as typeof info;
    } catch {
      // an unreadable entry: show the member without it
    }
    members.push({
      id,
      heartbeatAgeMs: now - Number(heartbeats[i + 1]),
      ageMs: info.startedAt ? now - info.startedAt : null,
      host: info.host ?? null,
      pid: info.pid ?? null,
      partitions: leases.filter((l) => l.owner === id).length,
    });
  }
  return {
    prefix: keys.prefix,
    partitions,
    members,
    unowned: leases.flatMap((l, p) => (l.owner === null ? [p] : [])),
    leases: leases.map((l, p) => ({ partition: p, owner: l.owner, token: l.token, ageMs: since[p] ? now - Number(since[p]) : null })),
    dirtyBacklog: lengths.reduce((a, b) => a + b, 0),
    queue: counts,
    ticketsTotal,
    ticketsPerSecond: rate,
  };
}

/** Partitions owned by a worker as contiguous slot ranges. */
export function slotRanges(owned: readonly number[], partitions: number): { partitions: [number, number]; slots: [number, number] }[] {
  const sorted = [...owned].sort((a, b) => a - b);
  const out: { partitions: [number, number]; slots: [number, number] }[] = [];
  for (const p of sorted) {
    const last = out[out.length - 1];
    if (last && last.partitions[1] === p - 1) {
      last.partitions[1] = p;
      last.slots[1] = slotRangeOfPartition(p, partitions).last;
    } else {
      const r = slotRangeOfPartition(p, partitions);
      out.push({ partitions: [p, p], slots: [r.first, r.last] });
    }
  }
  return out;
}
