/**
 * `npm run bench:idle`: what a worker costs when nothing happens. Starts the embedded cluster
 * (or uses TG_REDIS_URL) and N workers, waits until every partition has an owner and a first
 * reconciliation pass and the heap's settling after the start are behind them (--warmup seconds),
 * then reads each worker's CPU time from /proc over a window, and what the masters were asked
 * meanwhile (commands a second, by command, scripts' own calls included).
 *
 * With --keys N, N watched keys exist before the workers start (strings of a few bytes), as in a
 * deployment whose status keys are all there and none changes: the continuous reconciliation
 * pass then compares them with the ticket index at its rate (TG_RECONCILE_RATE), every
 * TG_RECONCILE_INTERVAL_MS at most, which an empty keyspace never shows.
 *
 * node loadtest/idle-bench.js [--workers 3] [--seconds 10] [--warmup 30] [--keys 0]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { loadConfig } from '../lib/config.js';
import { Keys } from '../lib/keys.js';
import { readLeases } from '../lib/lease-keeper.js';
import { startLocalRedis, type LocalRedis } from '../lib/local-redis.js';
import { connect, detectTarget, masters } from '../lib/redis.js';
import { masterCounters, topCalls } from './master-stats.js';
import { cpuMs, wakeups } from './proc.js';
import { benchArgs } from './args.js';

const { values: a, whole } = benchArgs('node loadtest/idle-bench.js [--workers 3] [--seconds 10] [--warmup 30] [--keys 0]', {
  workers: { type: 'string', default: '3' },
  seconds: { type: 'string', default: '10' },
  warmup: { type: 'string', default: '30' },
  keys: { type: 'string', default: '0' },
});
const count = whole('workers', a.workers, 1);
const seconds = whole('seconds', a.seconds, 1);
const warmup = whole('warmup', a.warmup, 0);
const keyCount = whole('keys', a.keys, 0);

const local: LocalRedis | undefined = process.env.TG_REDIS_URL ? undefined : await startLocalRedis({ mode: 'cluster' });
const url = process.env.TG_REDIS_URL ?? local!.url;
const target = await detectTarget(loadConfig({ TG_REDIS_URL: url }, []).redis);
const redis = connect(target);
const nodes = (await masters(redis, target)).map((m) => new Redis({ host: m.host, port: m.port }));
const prefix = `ib${Date.now().toString(36)}`;
const workers: ChildProcess[] = [];
try {
  for (let i = 0; i < keyCount; i += 1000) await Promise.all(Array.from({ length: Math.min(1000, keyCount - i) }, (_, j) => redis.set(`${prefix}-k:${i + j}`, `v${i + j}`)));
  for (let i = 0; i < count; i++) {
    workers.push(
      spawn(process.execPath, [fileURLToPath(new URL('../workers/start.js', import.meta.url))], {
        env: { ...process.env, TG_REDIS_URL: url, TG_PREFIX: prefix, TG_WATCH: `${prefix}-k:*`, TG_LOG_LEVEL: 'warn' },
        stdio: ['ignore', 'ignore', 'inherit'],
      }),
    );
  }
  const deadline = Date.now() + 60000;
  while (!(await readLeases(redis, new Keys(prefix), 271)).every((l) => l.owner !== null)) {
    if (Date.now() > deadline) throw new Error('the workers did not own every partition within 60 s');
    await new Promise((r) => setTimeout(r, 200));
  }
  // Start-up work is not idle cost: the first coverage's comparison, the first reconciliation pass,
  // and V8 collecting and shrinking the heap the start grew (about 30 s of it, measured).
  await new Promise((r) => setTimeout(r, warmup * 1000));
  const before = workers.map((w) => cpuMs(w.pid!));
  const slept = workers.map((w) => wakeups(w.pid!));
  const asked = await masterCounters(nodes);
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const answered = await masterCounters(nodes);
  const used = workers.map((w, i) => cpuMs(w.pid!) - before[i]!);
  const woke = workers.map((w, i) => wakeups(w.pid!) - slept[i]!);
  process.stdout.write(
    `${count} idle worker(s), ${keyCount} keys, ${seconds} s: CPU ${used.map((ms) => `${(ms / seconds).toFixed(1)}`).join(', ')} ms/s; wake-ups ${woke.map((n) => `${(n / seconds).toFixed(1)}`).join(', ')} a second\n` +
      `  commands a second, all workers: ${(answered.reduce((n, m, i) => n + m.commands - asked[i]!.commands, 0) / seconds).toFixed(0)} (${topCalls(asked, answered, seconds, 12)})\n`,
  );
} finally {
  workers.forEach((w) => w.kill('SIGTERM'));
  await Promise.all(workers.map((w) => new Promise((r) => (w.exitCode !== null ? r(null) : w.once('exit', r)))));
  nodes.forEach((n) => n.disconnect());
  await redis.quit();
  await local?.stop();
}
