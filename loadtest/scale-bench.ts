/**
 * `npm run bench:scale`: what a write costs as workers are added, and how evenly the masters
 * share the work. For each worker count, on a fresh prefix of the embedded 3-master cluster:
 * starts the workers, waits until every partition has an owner, writes the same load with the
 * load writer, waits until the dirty streams are empty, and reports per write the workers' CPU
 * time, wake-ups (voluntary context switches of their main threads) and write system calls (from
 * /proc), the masters' CPU time and commands (INFO), and per master the commands processed and the
 * CPU used as the busiest master's share against the mean.
 *
 * It also reports the keys a ticket job carried (the workers' own counters, read from their
 * /metrics): each job and each append of a batch cost about the same whatever its size, so a
 * worker carrying a small share of the writes, whose batches close on TG_FLUSH_MAX_WAIT_MS
 * rather than on TG_FLUSH_KEYS, pays more a write (BENCHMARKS.md, eighth pass).
 *
 * With --rounds N the counts are measured N times, interleaved (1, 6, 1, 6, ...), and the median
 * CPU per write of each count closes the report: single runs on a shared machine differ by up to 15 %.
 *
 * With --warmup N the workers first take N writes of the same load, unmeasured: the steady state
 * of a deployment. On a fresh prefix the keys do not exist until the measured load writes them,
 * so without it the continuous reconciliation pass has nothing to compare (it cost 13 µs a write
 * with one worker and 36 with six when it had, BENCHMARKS.md, seventh pass). Each worker's code
 * is compiled by V8 as it gets hot, on its own share of the load: six workers carrying 500 writes a
 * second each still compile after a minute, so their steady state needs minutes of warm-up
 * (--warmup 600000 is 200 s at the default rate; BENCHMARKS.md, eighth pass).
 *
 * The measured load lasts 30 s by default (90,000 writes at 3,000 a second): one
 * TG_RECONCILE_INTERVAL_MS, so every measurement holds one pass of each worker's continuous
 * reconciliation. The passes of all workers start together and every 30 s (a pass over 10,000 keys
 * is about 16,000 slot counts and 12,600 slot listings, whatever the number of workers): a 20 s
 * window held one pass or none, a difference of its own between two measurements.
 *
 * With --worker-cpus LIST (taskset's CPU list, such as 1) the workers run on those CPUs and the
 * masters and the writer on the others: what a write costs the workers when they do not share their
 * cores with Redis, and what it costs several workers to share one (BENCHMARKS.md, tenth pass). With
 * --pin first, only the first worker runs there, the others with the masters: the first worker has
 * a core of its own, as each worker of a deployment has, and the report adds its CPU per write of its
 * share (the writes to its partitions, its partitions' part of the 271).
 *
 * With --per-worker, --rate, --writes and --warmup are each worker's: N workers take N times the
 * load, so every worker carries the same share whatever their number. Side by side with the
 * default (the same load for every count), it tells what more workers cost from what a lighter
 * share costs each worker (BENCHMARKS.md, eleventh pass).
 *
 * node loadtest/scale-bench.js [--workers 1,3,6] [--writes 90000] [--rate 3000] [--rounds 1] [--warmup 0] [--per-worker] [--worker-cpus LIST [--pin all|first]]
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ConnectionOptions } from 'bullmq';
import { Redis } from 'ioredis';
import { loadConfig } from '../lib/config.js';
import { Keys } from '../lib/keys.js';
import { readLeases } from '../lib/lease-keeper.js';
import { startLocalRedis, type LocalRedis } from '../lib/local-redis.js';
import { queueShardTags } from '../lib/shards.js';
import { jobCounts, openShards } from '../lib/ticket-queue.js';
import { connect, detectTarget, masters } from '../lib/redis.js';
import { masterCounters, topCalls } from './master-stats.js';
import { cpuMs, wakeups, writeCalls } from './proc.js';
import { median } from './report.js';
import { benchArgs } from './args.js';

const { values: a, fail, whole, wholeList } = benchArgs(
  'node loadtest/scale-bench.js [--workers 1,3,6] [--writes 90000] [--rate 3000] [--rounds 1] [--warmup 0] [--per-worker] [--worker-cpus LIST [--pin all|first]]',
  { workers: { type: 'string', default: '1,3,6' }, writes: { type: 'string', default: '90000' }, rate: { type: 'string', default: '3000' }, rounds: { type: 'string', default: '1' }, warmup: { type: 'string', default: '0' }, 'per-worker': { type: 'boolean', default: false }, 'worker-cpus': { type: 'string' }, pin: { type: 'string', default: 'all' } },
);
const counts = wholeList('workers', a.workers, 1);
const writes = whole('writes', a.writes, 1);
const rate = whole('rate', a.rate, 1);
const rounds = whole('rounds', a.rounds, 1, 20);
const warmup = whole('warmup', a.warmup, 0);

/** The CPUs of a taskset list ('1', '0,2', '1-3'). */
function cpuList(list: string): number[] {
  const cpus = list.split(',').flatMap((part) => {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (m === null) return fail(`--worker-cpus: '${list}' must be CPU numbers or ranges, comma-separated (such as 1 or 0,2-3)`);
    const [first, last] = [Number(m[1]), Number(m[2] ?? m[1])];
    return Array.from({ length: last - first + 1 }, (_, i) => first + i);
  });
  const cpuCount = availableParallelism();
  if (cpus.length === 0 || cpus.some((c) => c >= cpuCount)) fail(`--worker-cpus: '${list}' names a CPU this machine does not have (it has 0 to ${cpuCount - 1})`);
  return cpus;
}

const workerCpus = a['worker-cpus'] === undefined ? null : cpuList(a['worker-cpus']);
if (a.pin !== 'all' && a.pin !== 'first') fail(`--pin: '${a.pin}' must be all or first`);
if (a.pin === 'first' && workerCpus === null) fail('--pin first needs --worker-cpus');
const pinned = (index: number) => workerCpus !== null && (a.pin === 'all' || index === 0);
if (workerCpus !== null) {
  const rest = Array.from({ length: availableParallelism() }, (_, i) => i).filter((c) => !workerCpus.includes(c));
  if (rest.length === 0) fail(`--worker-cpus: '${a['worker-cpus']}' leaves no CPU for the masters and the writer`);
  // The masters and the writer are this process's children: they inherit its CPUs.
  try {
    execFileSync('taskset', ['-p', '-c', rest.join(','), String(process.pid)], { stdio: 'ignore' });
  } catch (err) {
    throw new Error(`--worker-cpus needs taskset (Debian: util-linux): ${String(err)}`);
  }
}

const here = (f: string) => fileURLToPath(new URL(f, import.meta.url));
const local: LocalRedis | undefined = process.env.TG_REDIS_URL ? undefined : await startLocalRedis({ mode: 'cluster' });
const url = process.env.TG_REDIS_URL ?? local!.url;
const target = await detectTarget(loadConfig({ TG_REDIS_URL: url }, []).redis);
const redis = connect(target);
const nodes = (await masters(redis, target)).map((m) => new Redis({ host: m.host, port: m.port }));
const out = mkdtempSync(join(tmpdir(), 'tg-scale-'));

/** The promise's value, or an error naming what did not come within the deadline: the bench never hangs. */
async function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms)));
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Ticket jobs enqueued and tickets made so far, summed over the workers' /metrics (their ports as they registered them). */
async function ticketCounters(ports: readonly number[]): Promise<{ jobs: number; tickets: number }> {
  const sum = { jobs: 0, tickets: 0 };
  for (const port of ports) {
    const text = await within(10000, `the metrics of the worker on port ${port}`, fetch(`http://127.0.0.1:${port}/metrics`).then((r) => r.text()));
    const value = (name: string) => {
      const found = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text);
      if (found === null) throw new Error(`the worker on port ${port} reports no ${name}`);
      return Number(found[1]);
    };
    sum.jobs += value('tg_ticket_jobs_enqueued_total');
    sum.tickets += value('tg_tickets_made_total');
  }
  return sum;
}

/** What the workers registered as members: id, pid and HTTP port. */
async function registered(keys: Keys): Promise<{ id: string; pid: number; httpPort: number | null }[]> {
  return Object.entries(await redis.hgetall(keys.memberInfo())).map(([id, v]) => ({ id, ...(JSON.parse(v) as { pid: number; httpPort: number | null }) }));
}

/** The HTTP ports of the workers with these pids, from what they registered as members. */
async function httpPorts(keys: Keys, pids: readonly number[]): Promise<number[]> {
  const members = await registered(keys);
  return pids.map((pid) => {
    const port = members.find((m) => m.pid === pid)?.httpPort;
    if (typeof port !== 'number') throw new Error(`worker ${pid} registered no HTTP port`);
    return port;
  });
}

/** Partitions whose lease the worker with this pid holds. */
async function partitionsOf(keys: Keys, pid: number): Promise<number> {
  const id = (await registered(keys)).find((m) => m.pid === pid)?.id;
  if (id === undefined) throw new Error(`worker ${pid} is not registered as a member`);
  return (await readLeases(redis, keys, 271)).filter((l) => l.owner === id).length;
}

const ratio = (values: number[]) => Math.max(...values) / (values.reduce((x, y) => x + y, 0) / values.length);

/** Writes `n` writes at `rate` a second and waits until the workers have made every ticket. */
async function load(prefix: string, keys: Keys, queues: ReturnType<typeof openShards>, n: number, rate: number): Promise<void> {
  const writer = spawn(process.execPath, [here('./writer.js'), '--url', url, '--prefix', prefix, '--rate', String(rate), '--writes', String(n), '--duration-ms', String((n / rate) * 1000), '--keys', '10000', '--out', join(out, `${prefix}-${n}.json`)], { stdio: ['ignore', 'ignore', 'inherit'] });
  const code = await within((n / rate) * 1000 + 60000, 'the load writer to finish', new Promise((r) => writer.on('exit', r)));
  if (code !== 0) throw new Error(`the load writer exited with ${String(code)}`);
  const drained = Date.now() + 120000;
  for (;;) {
    const jobs = Object.values(await within(10000, 'the ticket queues\' job counts', jobCounts(queues, 'wait', 'active', 'delayed', 'prioritized')));
    const backlog = (await Promise.all(Array.from({ length: 271 }, (_, p) => redis.xlen(keys.dirty(p))))).reduce((x, y) => x + y, 0) + jobs.reduce((x, y) => x + y, 0);
    if (backlog === 0) break;
    if (Date.now() > drained) throw new Error(`backlog ${backlog} not drained within 120 s`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** One measurement of `count` workers on a fresh prefix: prints its report, returns the workers' CPU per write (µs). */
async function measure(count: number): Promise<number> {
  // With --per-worker the given load is each worker's.
  const times = a['per-worker'] ? count : 1;
  const [perSecond, measured, warm] = [rate * times, writes * times, warmup * times];
  const prefix = `sb${count}${Date.now().toString(36)}`;
  const keys = new Keys(prefix);
  const queues = openShards(redis as unknown as ConnectionOptions, keys, queueShardTags(loadConfig({}, []).queueShards));
  const workers: ChildProcess[] = Array.from({ length: count }, (_, i) => {
    const [command, ...args] = [...(pinned(i) ? ['taskset', '-c', workerCpus!.join(',')] : []), process.execPath, here('../workers/start.js')];
    return spawn(command!, args, {
      env: { ...process.env, TG_REDIS_URL: url, TG_PREFIX: prefix, TG_WATCH: `${prefix}-k:*`, TG_LOG_LEVEL: 'warn', TG_HTTP_PORT: '0' },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
  });
  try {
    const deadline = Date.now() + 60000;
    while (!(await readLeases(redis, keys, 271)).every((l) => l.owner !== null)) {
      if (Date.now() > deadline) throw new Error('the workers did not own every partition within 60 s');
      await new Promise((r) => setTimeout(r, 200));
    }
    // Let the assignment settle and the first coverage's comparison finish before measuring.
    await new Promise((r) => setTimeout(r, 5000));
    if (warm > 0) await load(prefix, keys, queues, warm, perSecond);
    const cpu0 = workers.map((w) => cpuMs(w.pid!));
    const woke0 = workers.map((w) => wakeups(w.pid!));
    const sent0 = workers.map((w) => writeCalls(w.pid!));
    const ports = await httpPorts(keys, workers.map((w) => w.pid!));
    const t0 = await ticketCounters(ports);
    const m0 = await masterCounters(nodes);
    await load(prefix, keys, queues, measured, perSecond);
    const t1 = await ticketCounters(ports);
    const cpus = workers.map((w, i) => cpuMs(w.pid!) - cpu0[i]!);
    const cpu = cpus.reduce((x, y) => x + y, 0);
    const woke = workers.map((w, i) => wakeups(w.pid!) - woke0[i]!).reduce((x, y) => x + y, 0);
    const sent = workers.map((w, i) => writeCalls(w.pid!) - sent0[i]!).reduce((x, y) => x + y, 0);
    const m1 = await masterCounters(nodes);
    const commands = m1.map((m, i) => m.commands - m0[i]!.commands);
    const masterCpu = m1.map((m, i) => m.cpu - m0[i]!.cpu);
    process.stdout.write(
      `${count} worker(s), ${perSecond} writes/s: ${((cpu * 1000) / measured).toFixed(0)} µs worker CPU per write, ${(woke / measured).toFixed(2)} wake-ups and ${(sent / measured).toFixed(2)} write calls per write, ${((t1.tickets - t0.tickets) / (t1.jobs - t0.jobs)).toFixed(0)} keys a ticket job; masters ${((masterCpu.reduce((x, y) => x + y, 0) * 1e6) / measured).toFixed(0)} µs CPU and ${(commands.reduce((x, y) => x + y, 0) / measured).toFixed(1)} commands per write; busiest master / mean: ${ratio(commands).toFixed(2)} in commands, ${ratio(masterCpu).toFixed(2)} in CPU ` +
        `(commands per master ${commands.join(', ')})\n  calls per write: ${topCalls(m0, m1, measured, Number(process.env.TOP ?? 10))}\n`,
    );
    if (a.pin === 'first') {
      const share = await partitionsOf(keys, workers[0]!.pid!);
      process.stdout.write(`  first worker, on CPUs ${workerCpus!.join(',')} alone: ${((cpus[0]! * 1000) / ((measured * share) / 271)).toFixed(0)} µs CPU per write of its share (${share} of 271 partitions)\n`);
    }
    return (cpu * 1000) / measured;
  } finally {
    await Promise.all(queues.map((q) => q.close()));
    workers.forEach((w) => w.kill('SIGTERM'));
    // A worker's own shutdown deadline is 30 s; past it the bench says so and kills it.
    await within(40000, 'the workers to exit after SIGTERM', Promise.all(workers.map((w) => new Promise((r) => (w.exitCode !== null ? r(null) : w.once('exit', r)))))).catch((err: unknown) => {
      process.stderr.write(`${String(err)}\n`);
      workers.forEach((w) => w.kill('SIGKILL'));
    });
  }
}

try {
  const perWrite = new Map<number, number[]>(counts.map((c) => [c, []]));
  for (let round = 0; round < rounds; round++) for (const count of counts) perWrite.get(count)!.push(await measure(count));
  if (rounds > 1) {
    const medians = counts.map((c) => median(perWrite.get(c)!));
    process.stdout.write(
      `median of ${rounds} interleaved rounds: ${counts.map((c, i) => `${c} worker(s) ${medians[i]!.toFixed(0)} µs`).join(', ')} worker CPU per write` +
        (counts.length > 1 ? `; ${counts.at(-1)} / ${counts[0]}: ${(medians.at(-1)! / medians[0]!).toFixed(2)}\n` : '\n'),
    );
  }
} finally {
  rmSync(out, { recursive: true, force: true });
  nodes.forEach((n) => n.disconnect());
  await redis.quit();
  await local?.stop();
}
