/**
 * `npm run loadtest`: the chaos load test. Starts the embedded local 3-master cluster
 * (unless TG_REDIS_URL names one), N workers as child processes, a load writer process,
 * and a chaos loop that signals a random worker every K seconds and starts a replacement.
 * When the load is written it waits for the tickets to settle, checks every key's final
 * value against its latest ticket, prints a report and exits non-zero when the loss
 * exceeds --max-loss.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { randomBytes } from 'node:crypto';
import { loadConfig } from '../lib/config.js';
import { Keys } from '../lib/keys.js';
import { startLocalRedis, type LocalRedis } from '../lib/local-redis.js';
import { connect, detectTarget, type RedisClient } from '../lib/redis.js';
import { latestTickets } from '../lib/ticket-reader.js';
import { ticketMatches, writtenAtOf, type WriterResult } from './expectations.js';

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));

const { values: a } = parseArgs({
  options: {
    workers: { type: 'string', default: '3' },
    chaos: { type: 'string', default: 'sigint' },
    interval: { type: 'string', default: '8' },
    rate: { type: 'string', default: '1000' },
    duration: { type: 'string', default: '45' },
    keys: { type: 'string', default: '2000' },
    'value-size': { type: 'string', default: '32' },
    writes: { type: 'string' },
    'max-loss': { type: 'string', default: '0' },
    'settle-timeout': { type: 'string', default: '120' },
    out: { type: 'string', default: here('./reports') },
    help: { type: 'boolean', default: false },
  },
  strict: true,
});

if (a.help) {
  process.stdout.write(`usage: npm run loadtest -- [--workers 3] [--chaos sigint|sigkill|none] [--interval 8 (s)] [--rate 1000 (writes/s)]
       [--duration 45 (s)] [--keys 2000] [--value-size 32] [--writes N (instead of rate x duration)] [--max-loss 0 (%)]
       [--settle-timeout 120 (s)] [--out DIR]
Uses TG_REDIS_URL when set, else starts a local 3-master cluster on free loopback ports.\n`);
  process.exit(0);
}

function positive(name: keyof typeof a, allowZero = false): number {
  const n = Number(a[name]);
  if (!Number.isFinite(n) || n < 0 || (!allowZero && n === 0)) {
    process.stderr.write(`--${name}: '${String(a[name])}' must be a ${allowZero ? 'non-negative' : 'positive'} number\n`);
    process.exit(2);
  }
  return n;
}

const workerCount = positive('workers');
const chaos = a.chaos!;
if (!['sigint', 'sigkill', 'none'].includes(chaos)) {
  process.stderr.write(`--chaos: '${chaos}' must be sigint, sigkill or none\n`);
  process.exit(2);
}
const intervalMs = positive('interval') * 1000;
const rate = positive('rate');
const durationMs = positive('duration') * 1000;
const keyCount = positive('keys');
const valueSize = positive('value-size');
const maxLoss = positive('max-loss', true);
const settleMs = positive('settle-timeout') * 1000;
const writes = a.writes === undefined ? undefined : positive('writes');

function log(line: string): void {
  process.stdout.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);
}

const prefix = `lt${randomBytes(3).toString('hex')}`;
async function embeddedCluster(): Promise<LocalRedis> {
  log('starting a local 3-master Redis Cluster');
  return startLocalRedis({ mode: 'cluster' });
}
const local: LocalRedis | undefined = process.env.TG_REDIS_URL ? undefined : await embeddedCluster();
const url: string = process.env.TG_REDIS_URL ?? local!.url;
log(`redis ${url}  prefix ${prefix}  workers ${workerCount}  chaos ${chaos}`);

const workers = new Set<ChildProcess>();
const signals: { at: number; signal: string; pid: number }[] = [];
let stopping = false;

function startWorker(): ChildProcess {
  const child = spawn(process.execPath, [here('../workers/start.js')], {
    env: { ...process.env, TG_REDIS_URL: url, TG_PREFIX: prefix, TG_WATCH: `${prefix}-k:*`, TG_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  workers.add(child);
  child.on('exit', (code, signal) => {
    workers.delete(child);
    if (!stopping && signal !== 'SIGKILL' && code !== 0) log(`worker ${child.pid} exited with ${code ?? signal}`);
  });
  return child;
}

async function stopAll(): Promise<void> {
  stopping = true;
  await Promise.all(
    [...workers].map(
      (w) =>
        new Promise<void>((resolve) => {
          w.once('exit', () => resolve());
          w.kill('SIGTERM');
        }),
    ),
  );
  await local?.stop();
}

process.once('SIGINT', () => {
  log('interrupted: stopping what the load test started');
  void stopAll().then(() => process.exit(130));
});

let redis: RedisClient | undefined;
try {
  const target = await detectTarget(loadConfig({ TG_REDIS_URL: url }, []).redis);
  redis = connect(target);
  for (let i = 0; i < workerCount; i++) startWorker();
  // Changes made before any worker listens are nobody's: start the load once every partition has an owner.
  const prefixKeys = new Keys(prefix);
  const partitions = Number(process.env.TG_PARTITIONS ?? 271);
  const ownedDeadline = Date.now() + 60000;
  for (;;) {
    const owned = await Promise.all(Array.from({ length: partitions }, (_, p) => redis!.exists(prefixKeys.lease(p))));
    if (owned.every((n) => n === 1)) break;
    if (Date.now() > ownedDeadline) throw new Error('the workers did not take every partition within 60 s');
    await new Promise((r) => setTimeout(r, 200));
  }
  log('every partition has an owner; starting the load');

  const reports = a.out!;
  mkdirSync(reports, { recursive: true });
  const expectationsFile = `${reports}/${prefix}-final-state.json`;
  const writerArgs = ['--url', url, '--prefix', prefix, '--rate', String(rate), '--duration-ms', String(durationMs), '--keys', String(keyCount), '--value-size', String(valueSize), '--out', expectationsFile];
  if (writes !== undefined) writerArgs.push('--writes', String(writes));
  const writer = spawn(process.execPath, [here('./writer.js'), ...writerArgs], { stdio: ['ignore', 'inherit', 'inherit'] });
  const writerDone = new Promise<number>((resolve) => writer.on('exit', (code) => resolve(code ?? 1)));

  let chaosTimer: NodeJS.Timeout | undefined;
  if (chaos !== 'none') {
    const signal = chaos === 'sigint' ? 'SIGINT' : 'SIGKILL';
    chaosTimer = setInterval(() => {
      const alive = [...workers];
      const victim = alive[Math.floor(Math.random() * alive.length)];
      if (!victim) return;
      signals.push({ at: Date.now(), signal, pid: victim.pid! });
      log(`${signal} worker ${victim.pid}; starting a replacement`);
      victim.kill(signal);
      startWorker();
    }, intervalMs);
  }
  const writerCode = await writerDone;
  clearInterval(chaosTimer);
  if (writerCode !== 0) throw new Error(`the load writer failed (exit ${writerCode})`);
  const result = JSON.parse(readFileSync(expectationsFile, 'utf8')) as WriterResult;
  log(`wrote ${result.writes} changes to ${Object.keys(result.keys).length} keys in ${((result.endedAt - result.startedAt) / 1000).toFixed(1)} s; waiting for the tickets to settle`);

  const keys = prefixKeys;
  const deadline = Date.now() + settleMs;
  let lost: string[] = [];
  let total = 0;
  let latest = new Map<string, import('../lib/ticket-reader.js').StoredTicket>();
  for (;;) {
    ({ latest, total } = await latestTickets(redis, keys));
    lost = Object.entries(result.keys)
      .filter(([k, state]) => !ticketMatches(state, latest.get(Buffer.from(k).toString('latin1'))))
      .map(([k]) => k);
    if (lost.length === 0 || Date.now() >= deadline) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  const settledAt = Date.now();

  const freshness = [...latest.values()]
    .map((t) => {
      const w = writtenAtOf(t);
      return w === undefined ? undefined : t.createdAt - w;
    })
    .filter((x): x is number => x !== undefined)
    .sort((x, y) => x - y);
  const pct = (q: number) => (freshness.length ? freshness[Math.min(freshness.length - 1, Math.floor(q * freshness.length))]! : NaN);
  const keyTotal = Object.keys(result.keys).length;
  const report = {
    command: `npm run loadtest -- ${process.argv.slice(2).join(' ')}`.trim(),
    redis: local ? 'embedded 3-master cluster' : url,
    workers: workerCount,
    chaos,
    signals: signals.length,
    writes: result.writes,
    keys: keyTotal,
    keysLost: lost.length,
    lossPercent: (100 * lost.length) / keyTotal,
    tickets: total,
    ticketsPerWrite: total / result.writes,
    writeRate: result.writes / ((result.endedAt - result.startedAt) / 1000),
    settleSeconds: (settledAt - result.endedAt) / 1000,
    freshnessMs: { p50: pct(0.5), p95: pct(0.95), p99: pct(0.99), max: freshness[freshness.length - 1] ?? NaN },
    lostSample: lost.slice(0, 10),
  };
  writeFileSync(`${reports}/${prefix}-report.json`, JSON.stringify(report, null, 2));
  const rows: [string, string][] = [
    ['workers / chaos', `${workerCount} / ${chaos} (${signals.length} signals)`],
    ['writes / keys', `${report.writes} / ${keyTotal}`],
    ['keys lost', `${lost.length} (${report.lossPercent.toFixed(3)} %)`],
    ['tickets', `${total} (${report.ticketsPerWrite.toFixed(3)} per write)`],
    ['write rate', `${report.writeRate.toFixed(0)} /s`],
    ['settled after load', `${report.settleSeconds.toFixed(1)} s`],
    ['freshness p50/p95/p99/max', `${report.freshnessMs.p50}/${report.freshnessMs.p95}/${report.freshnessMs.p99}/${report.freshnessMs.max} ms`],
  ];
  process.stdout.write(`\n${rows.map(([k, v]) => `  ${k.padEnd(28)} ${v}`).join('\n')}\n\nreport: ${reports}/${prefix}-report.json\n`);
  await stopAll();
  await redis.quit();
  process.exit(report.lossPercent > maxLoss ? 1 : 0);
} catch (err) {
  process.stderr.write(`load test failed: ${err instanceof Error ? err.message : String(err)}\n`);
  await stopAll();
  await redis?.quit();
  process.exit(1);
}
