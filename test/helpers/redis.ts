/** The test run's Redis servers, per-test key prefixes, and polling with a deadline. */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import type { LocalRedis, LocalRedisNode } from '../../lib/local-redis.js';

function env(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is unset: run the tests through mocha with test/setup.js (npm test)`);
  return value;
}

export const standaloneUrl = (): string => env('TG_TEST_STANDALONE_URL');
export const clusterUrl = (): string => env('TG_TEST_CLUSTER_URL');

/** A fresh prefix, so each test's keys, streams and queue are its own. */
export function randomPrefix(): string {
  return `t${randomBytes(4).toString('hex')}`;
}

export interface WaitOptions {
  timeoutMs: number;
  intervalMs?: number;
  /** What is awaited, for the timeout message; a function to describe the last state seen. */
  what: string | (() => string);
}

/** Polls a condition until it holds; throws naming what was awaited when the deadline passes. */
export async function waitFor(cond: () => Promise<boolean> | boolean, opts: WaitOptions): Promise<void> {
  const deadline = Date.now() + opts.timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() >= deadline) {
      throw new Error(`timed out after ${opts.timeoutMs} ms waiting for ${typeof opts.what === 'function' ? opts.what() : opts.what}`);
    }
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 50));
  }
}

/**
 * What a call comes to within `ms`: its value, the text of its error, or `still waiting after N s`
 * (a call that may hang for ever when the change under test is missing).
 */
export async function outcomeWithin<T>(call: Promise<T>, ms: number): Promise<T | string> {
  let deadline: NodeJS.Timeout | undefined;
  const late = new Promise<string>((resolve) => (deadline = setTimeout(() => resolve(`still waiting after ${ms / 1000} s`), ms)));
  try {
    return await Promise.race([call.catch((err: unknown) => String(err)), late]);
  } finally {
    clearTimeout(deadline);
  }
}

/**
 * Stops (SIGSTOP) the first master of a local cluster and waits until another master says the cluster
 * is down (`cluster_state:fail`, after the node timeout). The caller lets it go on (SIGCONT) when done.
 */
export async function freezeUntilClusterDown(server: LocalRedis): Promise<LocalRedisNode> {
  const frozen = server.nodes[0]!;
  // One node, not the cluster: a cluster client may send CLUSTER INFO to the stopped master.
  const other = new Redis({ host: '127.0.0.1', port: server.nodes[1]!.port });
  try {
    process.kill(frozen.pid!, 'SIGSTOP');
    await waitFor(async () => /cluster_state:fail/.test(String(await other.cluster('INFO'))), { timeoutMs: 20000, what: 'the other masters to say the cluster is down' });
    return frozen;
  } finally {
    other.disconnect();
  }
}
