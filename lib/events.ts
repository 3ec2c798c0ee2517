/**
 * Membership and migration events, published on `<prefix>:events` for any client to
 * follow (the CLI's `events`, dashboards). Informational: no worker acts on them.
 */
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
