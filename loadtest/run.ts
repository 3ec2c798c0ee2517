/**
 * `npm run loadtest`: the chaos load test. Starts the embedded local 3-master cluster
 * (unless TG_REDIS_URL names one), N workers as child processes, a load writer process,
 * and a chaos loop that signals a random worker every K seconds and starts a replacement.
 * When the load is written it waits for the tickets to settle, checks every key's final
 * value against its latest ticket, and reports (table, JSON, HTML chart). Exits 1 when the
 * loss exceeds --max-loss. Every loop is bounded; only processes it started are signalled.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { benchArgs } from './args.js';
import { loadConfig } from '../lib/config.js';
import type { ClusterEvent } from '../lib/events.js';
import { Keys } from '../lib/keys.js';
import { readLeases } from '../lib/lease-keeper.js';
import { startLocalRedis, type LocalRedis } from '../lib/local-redis.js';
import { connect, detectTarget, masters, type RedisClient } from '../lib/redis.js';
import { keysOffRedis } from '../lib/ticket-reader.js';
import type { WriterResult } from './expectations.js';
import { flood } from './flood.js';
import { queueShardTags } from '../lib/shards.js';
import { SinkMonitor } from './monitor.js';
import { html, loadChartLibrary, percentiles, table, type Report, type Sample, type SignalRecord } from './report.js';

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));

const USAGE = `npm run loadtest -- [options]
  --workers N           workers started as child processes (3)
  --chaos MODE          sigint | sigkill | none: signal a random worker every --interval and start a replacement (sigint);
                        failover: kill -9 the master of a random slot every --interval (embedded cluster with a replica
                        per master), and start it again as a replica once its replica took over;
                        stall: stop a random master (SIGSTOP) for 4 s every --interval, so that the cluster says it is
                        down and the leases it holds expire, then let it go on (SIGCONT) (embedded cluster)
  --flood               write the load with redis-cli --pipe at full speed (--writes commands over --keys keys, SET with
                        unique values, 1 in 40 a DEL) instead of the paced writer
  --interval S          seconds between signals (8)
  --rate N              writes per second (1000)
  --duration S          seconds of load (45)
  --writes N            total writes instead of rate x duration
  --keys N              distinct keys (2000)
  --value-size B        bytes per value (32)
  --max-loss PCT        exit 1 when more keys than this lose their final value (0)
  --settle-timeout S    how long to wait for the tickets after the load (120)
  --baseline            also run the same load through the raw path (one subscriber, a job per event)
  --external            write the load for workers started by hand (needs TG_REDIS_URL and --prefix; TG_WATCH=<prefix>-k:*)
  --prefix P            key prefix (TG_PREFIX of the workers); random by default
  --verify-only FILE    check the tickets for the final state a previous run saved, and exit
  --out DIR             where reports go (loadtest/reports)
Uses TG_REDIS_URL when set, else starts a local 3-master cluster on free loopback ports.`;

const { values: a, fail, whole, number } = benchArgs(USAGE, {
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
  baseline: { type: 'boolean', default: false },
  external: { type: 'boolean', default: false },
  flood: { type: 'boolean', default: false },
  prefix: { type: 'string' },
  'verify-only': { type: 'string' },
  out: { type: 'string', default: here('./reports') },
});

const workerCount = whole('workers', a.workers, 1);
const chaos = a.chaos;
if (!['sigint', 'sigkill', 'none', 'failover', 'stall'].includes(chaos)) fail(`--chaos: '${chaos}' must be sigint, sigkill, none, failover or stall`);
if ((chaos === 'failover' || chaos === 'stall') && process.env.TG_REDIS_URL) fail(`--chaos ${chaos} signals Redis masters: it runs only on the embedded cluster (unset TG_REDIS_URL)`);
/** Whether the chaos makes Redis refuse or lose writes: then Redis itself, not the writer, says what is final. */
const redisChaos = chaos === 'failover' || chaos === 'stall';
const intervalMs = number('interval', a.interval, 1) * 1000;
const rate = whole('rate', a.rate, 1);
const durationMs = number('duration', a.duration, 1) * 1000;
const keyCount = whole('keys', a.keys, 1);
const valueSize = whole('value-size', a['value-size'], 1);
const maxLoss = number('max-loss', a['max-loss'], 0);
const settleMs = number('settle-timeout', a['settle-timeout'], 1) * 1000;
const writes = a.writes === undefined ? undefined : whole('writes', a.writes, 1);
if (a.external && !a.prefix) fail('--external needs --prefix (the TG_PREFIX of the running workers)');
if (a.prefix !== undefined && !/^[A-Za-z0-9_.-]+$/.test(a.prefix)) fail(`--prefix: '${a.prefix}' must be letters, digits, '_', '.' or '-'`);
const partitions = Number(process.env.TG_PARTITIONS ?? 271);
/** The workers' ticket queue shards, as they read TG_QUEUE_SHARDS. */
const queueTags = queueShardTags(loadConfig(process.env, []).queueShards);
const tty = process.stdout.isTTY === true;

function log(line: string): void {
  process.stdout.write(`${tty ? '\r\x1b[K' : ''}${new Date().toISOString().slice(11, 19)} ${line}\n`);
}

const started: ChildProcess[] = [];
const workers = new Map<ChildProcess, { id?: string }>();
const signals: SignalRecord[] = [];
let local: LocalRedis | undefined;
let stopping = false;
let loadStart = 0;

function startWorker(url: string, prefix: string): ChildProcess {
  const child = spawn(process.execPath, [here('../workers/start.js')], {
    env: { ...process.env, TG_REDIS_URL: url, TG_PREFIX: prefix, TG_WATCH: `${prefix}-k:*`, TG_LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const info: { id?: string } = {};
  workers.set(child, info);
  started.push(child);
  const lines = createInterface({ input: child.stdout! });
  lines.on('line', (line) => {
    if (info.id) return;
    try {
      info.id = (JSON.parse(line) as { worker?: string }).worker;
    } catch {
      // not a log line
    }
  });
  child.on('exit', (code, signal) => {
    workers.delete(child);
    if (!stopping && signal !== 'SIGKILL' && code !== 0) log(`worker ${child.pid} exited with ${code ?? signal}`);
  });
  return child;
}

async function stopAll(): Promise<void> {
  stopping = true;
  // A stopped master would not stop on SIGTERM.
  if (stalled !== undefined) process.kill(stalled, 'SIGCONT');
  stalled = undefined;
  await Promise.all(
    started
      .filter((c) => c.exitCode === null && c.signalCode === null)
      .map(
        (c) =>
          new Promise<void>((resolve) => {
            c.once('exit', () => resolve());
            c.kill('SIGTERM');
          }),
      ),
  );
  await local?.stop();
}

process.once('SIGINT', () => {
  log('interrupted: stopping what the load test started');
  void stopAll().then(() => process.exit(130));
});

function startWriter(url: string, prefix: string, outFile: string, onProgress: (n: number) => void): Promise<WriterResult> {
  const args = ['--url', url, '--prefix', prefix, '--rate', String(rate), '--duration-ms', String(durationMs), '--keys', String(keyCount), '--value-size', String(valueSize), '--out', outFile];
  if (writes !== undefined) args.push('--writes', String(writes));
  if (redisChaos) args.push('--tolerate-failures');
  const writer = spawn(process.execPath, [here('./writer.js'), ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  started.push(writer);
  createInterface({ input: writer.stdout! }).on('line', (line) => {
    try {
      onProgress((JSON.parse(line) as { writes: number }).writes);
    } catch {
      // not a progress line
    }
  });
  return new Promise((resolve, reject) =>
    writer.on('exit', (code) => {
      if (code !== 0) reject(new Error(`the load writer failed (exit ${code})`));
      else resolve(JSON.parse(readFileSync(outFile, 'utf8')) as WriterResult);
    }),
  );
}

/**
 * Partitions all owned (changes made before any worker listens are nobody's), and, when
 * the test started the workers, balanced among them, so the start-up moves are no handovers.
 */
async function waitForOwners(redis: RedisClient, keys: Keys, workersExpected: number | undefined): Promise<void> {
  const deadline = Date.now() + 60000;
  const lo = workersExpected ? Math.floor(partitions / workersExpected) : 0;
  for (;;) {
    const owners = (await readLeases(redis, keys, partitions)).map((l) => l.owner);
    const counts = new Map<string, number>();
    for (const o of owners) if (o !== null) counts.set(o, (counts.get(o) ?? 0) + 1);
    const balanced = workersExpected === undefined || (counts.size === workersExpected && [...counts.values()].every((n) => n === lo || n === lo + 1));
    if (owners.every((o) => o !== null) && balanced) return;
    if (Date.now() > deadline) throw new Error(`the workers did not take all ${partitions} partitions within 60 s`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Runs one load against one prefix while sampling; returns the writer's result and the samples. */
async function loadPhase(url: string, prefix: string, monitor: SinkMonitor, reports: string, chaosTick?: () => void, load?: () => Promise<WriterResult>) {
  const samples: Sample[] = [];
  let written = 0;
  let lastWritten = 0;
  let lastTickets = 0;
  let lastAt = Date.now();
  loadStart = Date.now();
  const writerDone = load ? load() : startWriter(url, prefix, `${reports}/${prefix}-final-state.json`, (n) => (written = n));
  let sampling = true;
  let chaosTimer: NodeJS.Timeout | undefined;
  if (chaosTick) chaosTimer = setInterval(chaosTick, intervalMs);
  const sampler = (async () => {
    let i = 0;
    while (sampling) {
      await new Promise((r) => setTimeout(r, 1000));
      let freshness: { p50: number; p99: number } | null;
      let backlog: number;
      try {
        freshness = await monitor.poll();
        backlog = await monitor.backlog();
      } catch (err) {
        // Redis failing over under chaos: this second has no sample.
        log(`sampling failed: ${err instanceof Error ? err.message : String(err)}`);
        continue;
      }
      // Reading a second's tickets can take a while under load: rates are per elapsed second.
      const now = Date.now();
      const seconds = (now - lastAt) / 1000;
      lastAt = now;
      const s: Sample = {
        t: (now - loadStart) / 1000,
        writesPerSec: Math.round((written - lastWritten) / seconds),
        ticketsPerSec: Math.round((monitor.tickets - lastTickets) / seconds),
        backlog,
        workersAlive: workers.size,
        freshnessMs: freshness?.p50 ?? null,
        freshnessP99Ms: freshness?.p99 ?? null,
      };
      lastWritten = written;
      lastTickets = monitor.tickets;
      samples.push(s);
      const line = `${s.t.toFixed(0)}s  writes/s ${s.writesPerSec}  tickets/s ${s.ticketsPerSec}  backlog ${backlog}  workers ${s.workersAlive}  signals ${signals.length}  freshness ${s.freshnessMs ?? '-'} ms`;
      if (tty) process.stdout.write(`\r\x1b[K${line}`);
      else if (i % 5 === 0) log(line);
      i++;
    }
  })();
  let result: WriterResult;
  try {
    result = await writerDone;
  } finally {
    clearInterval(chaosTimer);
  }
  return {
    result,
    samples,
    stopSampling: async () => {
      sampling = false;
      await sampler;
      if (tty) process.stdout.write('\n');
    },
  };
}

/** Waits until every key's latest ticket carries its final state, or the settle timeout. */
async function settle(monitor: SinkMonitor, result: WriterResult): Promise<{ lost: string[]; seconds: number }> {
  const deadline = Date.now() + settleMs;
  let lost: string[];
  for (;;) {
    await monitor.poll().catch(() => undefined);
    lost = monitor.lost(result.keys);
    if (lost.length === 0 || Date.now() >= deadline) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  return { lost, seconds: (Date.now() - result.endedAt) / 1000 };
}

async function baselinePhase(redis: RedisClient, url: string, reports: string): Promise<Report['baseline']> {
  const prefix = `bl${randomBytes(3).toString('hex')}`;
  const proc = spawn(process.execPath, [here('./baseline.js'), '--url', url, '--prefix', prefix, '--watch', `${prefix}-k:*`], { stdio: ['ignore', 'pipe', 'inherit'] });
  started.push(proc);
  await new Promise<void>((resolve, reject) => {
    createInterface({ input: proc.stdout! }).on('line', (l) => l === 'ready' && resolve());
    proc.once('exit', (code) => reject(new Error(`the baseline exited with ${code}`)));
  });
  log(`baseline: the same load through one subscriber and a job per event (prefix ${prefix})`);
  const keys = new Keys(prefix);
  const monitor = new SinkMonitor(redis, keys, partitions, ['q']);
  const phase = await loadPhase(url, prefix, monitor, reports, undefined, a.flood ? floodLoadOf(redis, url, prefix) : undefined);
  // A flood's final state is what Redis holds; the paced writer's is what it wrote.
  const { lost, seconds } = a.flood ? await converge(redis, keys, floodKeysOf(prefix), phase.result.endedAt).then((c) => ({ lost: c.off, seconds: c.seconds })) : await settle(monitor, phase.result);
  const ticketsPerSec = a.flood ? await floodThroughput(monitor, phase.result) : sustained(phase.samples);
  await phase.stopSampling();
  proc.kill('SIGTERM');
  await monitor.close();
  const f = percentiles(monitor.freshness);
  return { ticketsPerSec, freshnessP50: f.p50, freshnessP99: f.p99, settleSeconds: seconds, keysLost: lost.length };
}

/**
 * Polls until every key's newest ticket is what Redis holds (absent keys included), or the
 * settle timeout: the check against Redis itself, which a failover may have made differ from
 * what the writer wrote.
 */
async function converge(redis: RedisClient, keys: Keys, names: readonly string[], since: number): Promise<{ off: string[]; seconds: number }> {
  const buffers = names.map((n) => Buffer.from(n));
  const deadline = Date.now() + settleMs;
  let off: string[] = [...names];
  for (;;) {
    // A read that fails while a replica takes over is tried again.
    off = await keysOffRedis(redis, keys, buffers).catch(() => off);
    if (off.length === 0 || Date.now() >= deadline) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  return { off, seconds: (Date.now() - since) / 1000 };
}

/** Kills the master of a random slot with SIGKILL, waits for its replica to take over, starts it again as a replica. */
let failingOver = false;
function failoverTick(): void {
  if (failingOver || !local) return;
  failingOver = true;
  void (async () => {
    const slot = Math.floor(Math.random() * 16384);
    const victim = await local!.masterOf(slot);
    const record: SignalRecord = { t: (Date.now() - loadStart) / 1000, signal: 'SIGKILL master', pid: victim.pid ?? 0 };
    signals.push(record);
    const sentAt = Date.now();
    await victim.stop('SIGKILL');
    // Bounded: a promotion not seen within a minute is reported as missing.
    while (Date.now() - sentAt < 60000 && (await local!.masterOf(slot).catch(() => victim)) === victim) await new Promise((r) => setTimeout(r, 100));
    record.takeoverMs = Date.now() - sentAt;
    log(`master ${victim.port} killed; its replica serves slot ${slot} after ${record.takeoverMs} ms; restarting it as a replica`);
    await victim.start();
  })()
    .catch((err: unknown) => log(`failover chaos: ${String(err)}`))
    .finally(() => (failingOver = false));
}

/** How long --chaos stall stops a master: past the cluster's node timeout (2 s) and the lease TTL (3 s). */
const STALL_MS = 4000;

/** Stops the master of a random slot with SIGSTOP for STALL_MS, then lets it go on; one at a time. */
let stalled: number | undefined;
function stallTick(): void {
  if (stalled !== undefined || !local) return;
  const slot = Math.floor(Math.random() * 16384);
  void local
    .masterOf(slot)
    .then((victim) => {
      if (victim.pid === undefined || stopping) return;
      const pid = (stalled = victim.pid);
      signals.push({ t: (Date.now() - loadStart) / 1000, signal: 'SIGSTOP master', pid });
      process.kill(pid, 'SIGSTOP');
      setTimeout(() => {
        // Already let go if the run is stopping (stopAll), and the server may be gone by now.
        if (stalled !== pid) return;
        process.kill(pid, 'SIGCONT');
        stalled = undefined;
        log(`master ${victim.port} went on after ${STALL_MS / 1000} s stopped`);
      }, STALL_MS);
    })
    .catch((err: unknown) => log(`stall chaos: ${String(err)}`));
}

const floodKeysOf = (prefix: string) => Array.from({ length: keyCount }, (_, i) => `${prefix}-k:${i}`);

/** The --flood load for a prefix: redis-cli --pipe on every master at full speed. */
function floodLoadOf(redis: RedisClient, url: string, prefix: string): () => Promise<WriterResult> {
  return async () => {
    const startedAt = Date.now();
    const nodes = await masters(redis, await detectTarget(loadConfig({ ...process.env, TG_REDIS_URL: url }, []).redis));
    const { commands, ms } = await flood(nodes, floodKeysOf(prefix), Math.max(1, Math.ceil((writes ?? rate * (durationMs / 1000)) / keyCount)));
    log(`flood: ${commands} commands from redis-cli --pipe in ${ms} ms (${Math.round(commands / (ms / 1000))}/s)`);
    return { prefix, writes: commands, startedAt, endedAt: Date.now(), keys: {} };
  };
}

/**
 * A flood outruns any consumer, so what it measures is how fast the system gets through it: the
 * flood's writes per second from its start until no work is left (no dirty entry, no job) and
 * every key's newest ticket is what Redis holds (the caller waited for that), or the settle timeout.
 */
async function floodThroughput(monitor: SinkMonitor, result: WriterResult): Promise<number> {
  const deadline = result.endedAt + settleMs;
  while ((await monitor.backlog().catch(() => 1)) > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
  return result.writes / ((Date.now() - result.startedAt) / 1000);
}

/** Mean tickets/s over the samples taken while the load was written. */
function sustained(samples: Sample[]): number {
  const during = samples.filter((s) => s.writesPerSec > 0);
  return during.length ? during.reduce((n, s) => n + s.ticketsPerSec, 0) / during.length : 0;
}

async function verifyOnly(file: string): Promise<never> {
  const url = process.env.TG_REDIS_URL;
  if (!url) {
    process.stderr.write('--verify-only needs TG_REDIS_URL\n');
    process.exit(2);
  }
  const result = JSON.parse(readFileSync(file, 'utf8')) as WriterResult;
  const redis = connect(await detectTarget(loadConfig({ ...process.env, TG_REDIS_URL: url }, []).redis));
  const monitor = new SinkMonitor(redis, new Keys(result.prefix), partitions, queueTags);
  await monitor.poll();
  const lost = monitor.lost(result.keys);
  const total = Object.keys(result.keys).length;
  process.stdout.write(`prefix ${result.prefix}: ${total} keys, ${monitor.tickets} tickets, ${lost.length} keys lost (${((100 * lost.length) / total).toFixed(3)} %)\n`);
  if (lost.length) process.stdout.write(`e.g. ${lost.slice(0, 10).join(', ')}\n`);
  await monitor.close();
  await redis.quit();
  process.exit((100 * lost.length) / total > maxLoss ? 1 : 0);
}

if (a['verify-only']) await verifyOnly(a['verify-only']);

let redis: RedisClient | undefined;
let events: RedisClient | undefined;
try {
  if (!process.env.TG_REDIS_URL) {
    log(`starting a local 3-master Redis Cluster${chaos === 'failover' ? ' with a replica per master' : ''}`);
    local = await startLocalRedis({ mode: 'cluster', replicas: chaos === 'failover' ? 1 : 0 });
  }
  const url = process.env.TG_REDIS_URL ?? local!.url;
  const prefix = a.prefix ?? `lt${randomBytes(3).toString('hex')}`;
  const keys = new Keys(prefix);
  const reports = a.out!;
  mkdirSync(reports, { recursive: true });
  redis = connect(await detectTarget(loadConfig({ ...process.env, TG_REDIS_URL: url }, []).redis));
  redis.on('error', () => undefined);
  log(`redis ${url}  prefix ${prefix}  ${a.external ? 'workers started by hand' : `workers ${workerCount}  chaos ${chaos}`}`);

  let handovers = 0;
  // Moves published before the load starts are the start-up's, however late they are read here.
  let countMovesFrom = Infinity;
  events = redis.duplicate();
  events.on('error', () => undefined);
  events.on('message', (_c: string, m: string) => {
    const event = JSON.parse(m) as ClusterEvent;
    if (event.type === 'moved' && event.at >= countMovesFrom) handovers++;
  });
  await events.subscribe(keys.eventsChannel());

  if (!a.external) for (let i = 0; i < workerCount; i++) startWorker(url, prefix);
  await waitForOwners(redis, keys, a.external ? undefined : workerCount);
  countMovesFrom = Date.now();
  handovers = 0;
  log('every partition has an owner; starting the load');

  const monitor = new SinkMonitor(redis, keys, partitions, queueTags);
  const chaosTick =
    a.external || chaos === 'none'
      ? undefined
      : chaos === 'failover'
        ? failoverTick
        : chaos === 'stall'
          ? stallTick
          : () => {
          const alive = [...workers.keys()];
          const victim = alive[Math.floor(Math.random() * alive.length)];
          if (!victim) return;
          const signal = chaos === 'sigint' ? 'SIGINT' : 'SIGKILL';
          const record: SignalRecord = { t: (Date.now() - loadStart) / 1000, signal, pid: victim.pid! };
          signals.push(record);
          const deadId = workers.get(victim)?.id;
          const sentAt = Date.now();
          victim.once('exit', (code, sig) => {
            if (signal === 'SIGINT') {
              record.exitMs = Date.now() - sentAt;
              record.exitCode = code ?? sig ?? -1;
            }
          });
          victim.kill(signal);
          startWorker(url, prefix);
          if (signal === 'SIGKILL' && deadId) {
            void (async () => {
              // Bounded: a takeover not seen within a minute is reported as missing.
              while (Date.now() - sentAt < 60000) {
                const leases = await readLeases(redis!, keys, partitions);
                if (leases.every((l) => l.owner !== null && l.owner !== deadId)) {
                  record.takeoverMs = Date.now() - sentAt;
                  return;
                }
                await new Promise((r) => setTimeout(r, 100));
              }
            })();
          }
        };
  const floodKeys = floodKeysOf(prefix);
  const floodLoad = floodLoadOf(redis, url, prefix);
  const phase = await loadPhase(url, prefix, monitor, reports, chaosTick, a.flood ? floodLoad : undefined);
  log(`wrote ${phase.result.writes} changes to ${a.flood ? floodKeys.length : Object.keys(phase.result.keys).length} keys; waiting for the tickets to settle`);
  const againstRedis = await converge(redis, keys, a.flood ? floodKeys : Object.keys(phase.result.keys), phase.result.endedAt);
  // A failover may lose acknowledged writes, and a write refused while a master is stopped may have landed: there only Redis itself says what the final value is.
  const { lost, seconds } = redisChaos ? { lost: againstRedis.off, seconds: againstRedis.seconds } : await settle(monitor, phase.result);
  const flooded = a.flood ? await floodThroughput(monitor, phase.result) : undefined;
  const finalBacklog = await monitor.backlog();
  await phase.stopSampling();
  await monitor.close();

  const baseline = a.baseline ? await baselinePhase(redis, url, reports) : undefined;
  const keyTotal = a.flood ? floodKeys.length : Object.keys(phase.result.keys).length;
  const report: Report = {
    command: `npm run loadtest -- ${process.argv.slice(2).join(' ')}`.trim(),
    machine: `${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}`,
    redis: local ? 'embedded 3-master cluster' : url,
    workers: a.external ? 0 : workerCount,
    chaos: a.external ? 'external' : chaos,
    rate,
    writes: phase.result.writes,
    keys: keyTotal,
    keysLost: lost.length,
    lossPercent: (100 * lost.length) / keyTotal,
    keysOffRedis: againstRedis.off.length,
    convergeSeconds: againstRedis.seconds,
    tickets: monitor.tickets,
    ticketsPerWrite: monitor.tickets / phase.result.writes,
    writeRate: phase.result.writes / ((phase.result.endedAt - phase.result.startedAt) / 1000),
    sustainedTicketsPerSec: flooded ?? sustained(phase.samples),
    flood: a.flood,
    maxBacklog: Math.max(0, ...phase.samples.map((s) => s.backlog)),
    finalBacklog,
    settleSeconds: seconds,
    freshnessMs: percentiles(monitor.freshness),
    handovers,
    signals,
    baseline,
    lostSample: lost.slice(0, 10),
    samples: phase.samples,
  };
  writeFileSync(`${reports}/${prefix}-report.json`, JSON.stringify(report, null, 2));
  writeFileSync(`${reports}/${prefix}-report.html`, html(report, loadChartLibrary()));
  process.stdout.write(`\n${table(report)}\n\nreport: ${reports}/${prefix}-report.json and .html\n`);
  if (lost.length) process.stdout.write(`keys lost, e.g.: ${lost.slice(0, 10).join(', ')}\n`);
  await events.quit();
  await redis.quit();
  await stopAll();
  process.exit(Math.max(report.lossPercent, (100 * report.keysOffRedis) / keyTotal) > maxLoss ? 1 : 0);
} catch (err) {
  log(`load test failed: ${err instanceof Error ? err.message : String(err)}`);
  await events?.quit().catch(() => undefined);
  await redis?.quit().catch(() => undefined);
  await stopAll();
  process.exit(1);
}
