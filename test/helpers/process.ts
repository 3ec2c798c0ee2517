/** Real worker processes for tests: spawned with `node workers/start.js`, signalled by pid. */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { Keys } from '../../lib/keys.js';
import { readLeases } from '../../lib/lease-keeper.js';
import type { RedisClient } from '../../lib/redis.js';
import { waitFor } from './redis.js';

const START = fileURLToPath(new URL('../../workers/start.js', import.meta.url));

export interface WorkerProcess {
  proc: ChildProcess;
  /** Every JSON log line so far, parsed. */
  logs: Record<string, unknown>[];
  stderr: () => string;
  /** Resolves with the exit code (or the signal name). */
  exited: Promise<number | string>;
  waitForLog(message: string, timeoutMs?: number): Promise<Record<string, unknown>>;
}

export function spawnWorker(env: Record<string, string>, args: string[] = []): WorkerProcess {
  const proc = spawn(process.execPath, [START, ...args], {
    env: { PATH: process.env.PATH ?? '', TG_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: Record<string, unknown>[] = [];
  let stderr = '';
  let partial = '';
  proc.stdout!.on('data', (chunk: Buffer) => {
    const lines = (partial + chunk.toString()).split('\n');
    partial = lines.pop()!;
    for (const line of lines) {
      try {
        logs.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        logs.push({ message: line });
      }
    }
  });
  proc.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  // TG_TEST_LOG_DIR keeps every worker's log, to read after a failure.
  if (process.env.TG_TEST_LOG_DIR) proc.stdout!.pipe(createWriteStream(`${process.env.TG_TEST_LOG_DIR}/worker-${proc.pid}.log`));
  const exited = new Promise<number | string>((resolve) => proc.on('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  return {
    proc,
    logs,
    stderr: () => stderr,
    exited,
    async waitForLog(message, timeoutMs = 30000) {
      let found: Record<string, unknown> | undefined;
      try {
        await waitFor(
          () => {
            found = logs.find((l) => l.message === message);
            if (!found && proc.exitCode !== null) throw new Error(`worker exited (${proc.exitCode}) before logging '${message}': ${stderr}${JSON.stringify(logs.slice(-5))}`);
            return found !== undefined;
          },
          { timeoutMs, intervalMs: 50, what: `log line '${message}'` },
        );
      } catch (err) {
        // What the worker was doing says why it never got there.
        throw new Error(`${(err as Error).message}; worker ${proc.pid}'s last log lines: ${stderr}${JSON.stringify(logs.slice(-8))}`);
      }
      return found!;
    },
  };
}

/** Exit code of a process, failing the test when it does not exit in time. */
export async function exitOf(w: WorkerProcess, timeoutMs: number): Promise<number | string> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`worker ${w.proc.pid} did not exit within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    return await Promise.race([w.exited, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Kills a worker that is still running (cleanup after a failed test). */
export function killIfRunning(w: WorkerProcess | undefined): void {
  if (w && w.proc.exitCode === null && w.proc.signalCode === null) w.proc.kill('SIGKILL');
}

/** Starts `count` workers watching `<prefix>-k:*` (lease TTL 1.5 s) and waits until every partition has an owner. */
export async function startWorkers(url: string, prefix: string, count: number, redis: RedisClient, env: Record<string, string> = {}): Promise<WorkerProcess[]> {
  const procs = Array.from({ length: count }, () => spawnWorker({ TG_REDIS_URL: url, TG_PREFIX: prefix, TG_WATCH: `${prefix}-k:*`, TG_LEASE_TTL_MS: '1500', ...env }));
  await Promise.all(procs.map((w) => w.waitForLog('started')));
  await waitFor(async () => (await readLeases(redis, new Keys(prefix), 271)).every((l) => l.owner !== null), { timeoutMs: 20000, what: 'every partition owned' });
  return procs;
}

/** Stops workers gracefully and asserts that each exits 0. */
export async function stopWorkers(procs: readonly WorkerProcess[], signal: 'SIGINT' | 'SIGTERM' = 'SIGINT'): Promise<void> {
  procs.forEach((w) => w.proc.kill(signal));
  const codes = await Promise.all(procs.map((w) => exitOf(w, 30000)));
  expect(codes.every((c) => c === 0)).to.equal(true);
}
