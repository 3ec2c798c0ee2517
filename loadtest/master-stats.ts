/** What the masters did between two readings (INFO), for the benchmarks. */
import type { Redis } from 'ioredis';

export interface MasterCounters {
  commands: number;
  /** CPU seconds used (user plus system). */
  cpu: number;
  /** Calls by command, scripts' own calls included. */
  calls: Map<string, number>;
}

/** Commands processed, CPU seconds used and calls by command of each master so far. */
export async function masterCounters(nodes: readonly Redis[]): Promise<MasterCounters[]> {
  return Promise.all(
    nodes.map(async (n) => {
      const stats = await n.info('stats');
      const cpu = await n.info('cpu');
      const num = (text: string, name: string) => Number(new RegExp(`${name}:([0-9.]+)`).exec(text)![1]);
      const calls = new Map([...(await n.info('commandstats')).matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)].map((m) => [m[1]!, Number(m[2])]));
      return { commands: num(stats, 'total_commands_processed'), cpu: num(cpu, 'used_cpu_sys') + num(cpu, 'used_cpu_user'), calls };
    }),
  );
}

/** The commands called most often between two readings, summed over the masters, each divided by `per`. */
export function topCalls(before: readonly MasterCounters[], after: readonly MasterCounters[], per: number, top = 10): string {
  const sum = new Map<string, number>();
  after.forEach((m, i) => {
    for (const [name, n] of m.calls) sum.set(name, (sum.get(name) ?? 0) + n - (before[i]!.calls.get(name) ?? 0));
  });
  return [...sum]
    .filter(([, n]) => n > 0)
    .sort((x, y) => y[1] - x[1])
    .slice(0, top)
    .map(([name, n]) => `${name} ${(n / per).toFixed(2)}`)
    .join(', ');
}
