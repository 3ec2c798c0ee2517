/** Items grouped by a key, in the order each key was first met; each group in item order. */
export function groupBy<K, T>(items: Iterable<T>, keyOf: (item: T) => K): Map<K, T[]> {
  const groups = new Map<K, T[]>();
  for (const item of items) {
    const key = keyOf(item);
    const group = groups.get(key);
    if (group) group.push(item);
    else groups.set(key, [item]);
  }
  return groups;
}

/** Items in order, in groups whose sizes add up to at most `most`; an item larger than that alone. */
export function sizedGroups<T>(items: readonly T[], size: (item: T) => number, most: number): T[][] {
  const groups: T[][] = [];
  let total = Infinity;
  for (const item of items) {
    const n = size(item);
    if (total + n > most) {
      groups.push([]);
      total = 0;
    }
    groups.at(-1)!.push(item);
    total += n;
  }
  return groups;
}

/**
 * Replies to items, in the items' order, from one call a group (`batch`: a reply per item of
 * its group, in order, given the group's key).
 */
export async function perGroup<T, K, R>(items: readonly T[], groupOf: (item: T) => K, batch: (group: T[], key: K) => Promise<R[]>): Promise<R[]> {
  const out = new Array<R>(items.length);
  await Promise.all(
    [...groupBy(items.keys(), (i) => groupOf(items[i]!))].map(async ([key, at]) => {
      const replies = await batch(at.map((i) => items[i]!), key);
      at.forEach((i, j) => (out[i] = replies[j]!));
    }),
  );
  return out;
}
