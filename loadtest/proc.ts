/** CPU time of processes from /proc (Linux), for the benchmarks. */
import { readFileSync } from 'node:fs';

/** User plus system CPU time of a process so far, ms (clock ticks of 10 ms). */
export function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}
