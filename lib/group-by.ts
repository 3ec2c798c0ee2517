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
