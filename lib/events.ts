/**
 * Membership and migration events, published on `<prefix>:events` for any client to
 * follow (the CLI's `events`, dashboards). Workers take a join or a leave only as a cue to
 * look at membership in Redis at once: a forged event costs a read, nothing more.
 */
import { jsonFields } from './control.js';
import type { Keys } from './keys.js';
import type { RedisClient } from './redis.js';

export type ClusterEvent =
  | { type: 'joined'; worker: string; at: number }
  | { type: 'left'; worker: string; reason: 'graceful' | 'silent'; at: number }
  | { type: 'moved'; partition: number; from: string | null; to: string; token: number; how: 'acquired' | 'taken-over'; at: number };

/** Distributes Omit over the union, so each event keeps its own fields. */
type WithoutTime<E> = E extends unknown ? Omit<E, 'at'> : never;

export async function publishEvent(client: RedisClient, keys: Keys, event: WithoutTime<ClusterEvent>): Promise<void> {
  await client.publish(keys.eventsChannel(), JSON.stringify({ ...event, at: Date.now() }));
}

/** An event as published, or null for anything else on the channel (malformed or forged). */
export function parseEvent(raw: string): ClusterEvent | null {
  const f = jsonFields(raw);
  if (!f) return null;
  const e = f as unknown;
  const text = (v: unknown) => typeof v === 'string' && v.length > 0 && v.length <= 200;
  if (!Number.isFinite(f.at)) return null;
  if (f.type === 'joined' && text(f.worker)) return e as ClusterEvent;
  if (f.type === 'left' && text(f.worker) && (f.reason === 'graceful' || f.reason === 'silent')) return e as ClusterEvent;
  if (f.type === 'moved' && Number.isInteger(f.partition) && text(f.to) && (f.from === null || text(f.from)) && Number.isInteger(f.token) && (f.how === 'acquired' || f.how === 'taken-over')) return e as ClusterEvent;
  return null;
}

/** Whether a message on the events channel announces another worker than `self` joining or leaving. */
export function announcesMembership(raw: string, self: string): boolean {
  const event = parseEvent(raw);
  return (event?.type === 'joined' || event?.type === 'left') && event.worker !== self;
}
