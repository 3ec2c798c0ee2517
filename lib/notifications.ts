/**
 * The keyspace-notification setting every master must have: `K` (keyspace channel, which
 * carries the key name) and the classes of every data-type change. Pure parsing here; the
 * subscriber applies it to each master it connects to.
 */

/** Event classes the worker needs: generic, string, list, set, hash, zset, expired, evicted. */
export const REQUIRED_CLASSES = 'g$lshzxe';

/** What `A` stands for in notify-keyspace-events. */
const ALL_CLASSES = 'g$lshzxetd';

function expand(flags: string): Set<string> {
  return new Set(flags.replace('A', ALL_CLASSES).split(''));
}

/** The flags missing from a notify-keyspace-events value, '' when it is enough. */
export function missingFlags(current: string): string {
  const have = expand(current);
  return ['K', ...REQUIRED_CLASSES].filter((f) => !have.has(f)).join('');
}

/** The value that keeps the current flags and adds what is missing. */
export function withRequiredFlags(current: string): string {
  return current + missingFlags(current);
}
