/**
 * Whether a master's maxmemory-policy could evict the system's own keys. Pure, so the rule is
 * tested without Redis; the subscriber reads the two settings of each master it listens to.
 */

/** How a worker answers a risky policy (TG_EVICTION_POLICY). */
export type EvictionAnswer = 'warn' | 'refuse';

/**
 * What the policy could evict of the system's keys, or null when nothing: without a memory limit
 * nothing is evicted; `allkeys-*` may evict any key (dirty streams, the index, the sink, the
 * queue); `volatile-*` only keys with a TTL, which are the leases (a lost lease moves its
 * partition needlessly).
 */
export function evictionRisk(maxmemory: string, policy: string): string | null {
  if (Number(maxmemory) === 0 || policy === 'noeviction') return null;
  if (policy.startsWith('allkeys-')) return 'any of the system\'s keys: dirty streams, the ticket queue, the sink and its index (changes could be lost until reconciliation finds them)';
  if (policy.startsWith('volatile-')) return 'the leases (they carry a TTL): partitions would move without need';
  return `keys, by a policy this worker does not know ('${policy}')`;
}
