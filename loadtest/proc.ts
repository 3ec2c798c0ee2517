/** CPU time, wake-ups and write calls of processes from /proc (Linux), for the benchmarks. */
import { readFileSync } from 'node:fs';

/** User plus system CPU time of a process so far, ms (clock ticks of 10 ms). */
export function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/**
 * Times the process's main thread went to sleep waiting (voluntary context switches) so far: for a
 * Node process, about one a wake-up of its event loop. Counted by the kernel, so it varies far less
 * from run to run than CPU time on a shared machine.
 */
export function wakeups(pid: number): number {
  const match = /^voluntary_ctxt_switches:\s+(\d+)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (match === null) throw new Error(`/proc/${pid}/status has no voluntary_ctxt_switches`);
  return Number(match[1]);
}

/** Write system calls (write, writev: socket sends included) the process made so far, from /proc/<pid>/io. */
export function writeCalls(pid: number): number {
  const match = /^syscw:\s+(\d+)$/m.exec(readFileSync(`/proc/${pid}/io`, 'utf8'));
  if (match === null) throw new Error(`/proc/${pid}/io has no syscw`);
  return Number(match[1]);
}

/** CPU time a process's main thread has had so far, ns (/proc/<pid>/task/<pid>/schedstat: nanoseconds, where stat counts 10 ms ticks). */
export function mainThreadNs(pid: number): number {
  const path = `/proc/${pid}/task/${pid}/schedstat`;
  try {
    return Number(readFileSync(path, 'utf8').split(' ')[0]);
  } catch (err) {
    throw new Error(`the main thread's CPU time is read from ${path} (Linux): ${String(err)}`);
  }
}
