/**
 * `npm run bench:info`: how long `tg info` takes on a loaded cluster. Fills the embedded
 * cluster with N keys (1,000,000 by default), starts 3 workers, then times `tg info`
 * (a whole CLI process) a few times while the workers run.
 *
 * node loadtest/info-bench.js [--keys 1000000] [--runs 5]
 */
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../lib/config.js';
import { Keys } from '../lib/keys.js';
import { readLeases } from '../lib/lease-keeper.js';
import { startLocalRedis } from '../lib/local-redis.js';
import { connect, detectTarget } from '../lib/redis.js';
import { benchArgs } from './args.js';

const { values: a, whole } = benchArgs('node loadtest/info-bench.js [--keys 1000000] [--runs 5]', { keys: { type: 'string', default: '1000000' }, runs: { type: 'string', default: '5' } });
const n = whole('keys', a.keys, 1);
const runs = whole('runs', a.runs, 1);

const local = await startLocalRedis({ mode: 'cluster' });
const redis = connect(await detectTarget(loadConfig({ TG_REDIS_URL: local.url }, []).redis));
const prefix = 'ib';
const env = { ...process.env, TG_REDIS_URL: local.url, TG_PREFIX: prefix, TG_WATCH: `${prefix}-k:*`, TG_LOG_LEVEL: 'warn' };
const workers = Array.from({ length: 3 }, () => spawn(process.execPath, [fileURLToPath(new URL('../workers/start.js', import.meta.url))], { env, stdio: 'ignore' }));
try {
  const t0 = Date.now();
  for (let i = 0; i < n; i += 10000) await Promise.all(Array.from({ length: Math.min(10000, n - i) }, (_, j) => redis.set(`data:${i + j}`, 'x')));
  const dbsize = (await Promise.all(local.nodes.map(async (node) => Number(spawnSync('redis-cli', ['-p', String(node.port), 'DBSIZE'], { encoding: 'utf8' }).stdout)))).reduce((x, y) => x + y, 0);
  process.stdout.write(`${dbsize} keys in Redis (filled in ${((Date.now() - t0) / 1000).toFixed(1)} s)\n`);
  const keys = new Keys(prefix);
  const deadline = Date.now() + 60000;
  while (!(await readLeases(redis, keys, 271)).every((l) => l.owner !== null)) {
    if (Date.now() > deadline) throw new Error('workers did not take every partition');
    await new Promise((r) => setTimeout(r, 200));
  }
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const s = performance.now();
    const out = spawnSync(process.execPath, [fileURLToPath(new URL('../bin/tg.js', import.meta.url)), 'info'], { env, encoding: 'utf8' });
    times.push(performance.now() - s);
    if (out.status !== 0) throw new Error(out.stderr);
    if (i === 0) process.stdout.write(out.stdout);
  }
  times.sort((x, y) => x - y);
  process.stdout.write(`tg info over ${runs} runs: median ${times[Math.floor(runs / 2)]!.toFixed(0)} ms, max ${times[runs - 1]!.toFixed(0)} ms (whole process, node start included)\n`);
} finally {
  workers.forEach((w) => w.kill('SIGTERM'));
  await Promise.all(workers.map((w) => new Promise((r) => (w.exitCode !== null ? r(null) : w.once('exit', r)))));
  await redis.quit();
  await local.stop();
}
