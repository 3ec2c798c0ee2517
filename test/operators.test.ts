/** The operators' view on a running 3-worker cluster: CLI, HTTP probes, Prometheus metrics. */
import { expect } from 'chai';
import { execFile, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Keys } from '../lib/keys.js';
import { startLocalRedis } from '../lib/local-redis.js';
import { wakeups } from '../loadtest/proc.js';
import { readLeases } from '../lib/lease-keeper.js';
import type { RedisClient } from '../lib/redis.js';
import { keySlot, partitionOfSlot } from '../lib/slots.js';
import { killIfRunning, spawnWorker, exitOf, type WorkerProcess } from './helpers/process.js';
import { clusterUrl, freezeUntilClusterDown, randomPrefix, waitFor } from './helpers/redis.js';
import { client } from './helpers/worker.js';

const TG = fileURLToPath(new URL('../bin/tg.js', import.meta.url));
const run = promisify(execFile);

async function tg(env: Record<string, string>, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [TG, ...args], { env: { PATH: process.env.PATH ?? '', ...env } });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** Prometheus text format: `name{labels} value` lines and # comments; every sample parsed (prom-client writes NaN as `Nan`, which Prometheus reads). */
function parseMetrics(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (-?[0-9.e+-]+|NaN|Nan|\+Inf|-Inf)$/.exec(line);
    if (!m) throw new Error(`not Prometheus text: ${line}`);
    samples.set(m[1]! + (m[2] ?? ''), Number(m[3]));
  }
  return samples;
}

const metric = (samples: Map<string, number>, name: string) => [...samples].filter(([k]) => k === name || k.startsWith(`${name}{`)).map(([, v]) => v);

describe('operators: CLI, probes and metrics', function () {
  this.timeout(120000);
  let prefix: string;
  let env: Record<string, string>;
  let redis: RedisClient;
  const workers: WorkerProcess[] = [];
  const ports = new Map<WorkerProcess, number>();
  const ids = new Map<WorkerProcess, string>();

  async function startOne(): Promise<WorkerProcess> {
    const w = spawnWorker({ ...env, TG_WATCH: `${prefix}-k:*`, TG_HTTP_PORT: '0', TG_LEASE_TTL_MS: '1500' });
    workers.push(w);
    ports.set(w, Number((await w.waitForLog('http listening')).port));
    ids.set(w, String((await w.waitForLog('started')).worker));
    return w;
  }
  const get = (w: WorkerProcess, path: string) => fetch(`http://127.0.0.1:${ports.get(w)}${path}`);

  before(async () => {
    prefix = randomPrefix();
    env = { TG_REDIS_URL: clusterUrl(), TG_PREFIX: prefix };
    redis = await client(clusterUrl());
    await Promise.all([startOne(), startOne(), startOne()]);
    const keys = new Keys(prefix);
    await waitFor(async () => (await readLeases(redis, keys, 271)).every((l) => l.owner !== null), { timeoutMs: 20000, what: 'all partitions owned' });
    await waitFor(async () => (await Promise.all(workers.map((w) => get(w, '/readyz')))).every((r) => r.status === 200), { timeoutMs: 20000, what: 'all workers ready' });
  });
  after(async () => {
    workers.forEach(killIfRunning);
    await redis.quit();
  });

  it('info shows the members, their partitions and the queue, as a table and as JSON', async () => {
    const { code, stdout } = await tg(env, 'info', '--json');
    expect(code).to.equal(0);
    const info = JSON.parse(stdout) as { members: { id: string; partitions: number; ageMs: number; pid: number }[]; unowned: number[]; leases: { token: number }[]; dirtyBacklog: number; queue: Record<string, number> };
    expect(info.members.map((m) => m.id).sort()).to.deep.equal([...ids.values()].sort());
    expect(info.members.map((m) => m.partitions).sort()).to.deep.equal([90, 90, 91]);
    expect(info.members.every((m) => m.ageMs > 0 && m.pid > 0)).to.equal(true);
    expect(info.unowned).to.deep.equal([]);
    expect(info.leases.every((l) => l.token >= 1)).to.equal(true);
    expect(info.queue).to.have.property('wait');
    const table = await tg(env, 'info');
    expect(table.stdout).to.contain('3 members, 271 partitions, 0 unowned');
    for (const id of ids.values()) expect(table.stdout).to.contain(id);
  });

  it('list and lookup say who owns what and where a key lives', async () => {
    const [w] = workers;
    const id = ids.get(w!)!;
    const list = await tg(env, 'list', id, '--json');
    expect(list.code, list.stderr).to.equal(0);
    const listed = JSON.parse(list.stdout) as { worker: string; partitions: number; ranges: { slots: [number, number] }[] }[];
    expect(listed[0]!.worker).to.equal(id);
    const slots = listed[0]!.ranges.reduce((n, r) => n + r.slots[1] - r.slots[0] + 1, 0);
    expect(listed[0]!.partitions).to.be.within(90, 91);
    expect(slots).to.be.within(60 * 90, 61 * 91);
    const key = `${prefix}-k:{user42}:status`;
    const loc = JSON.parse((await tg(env, 'lookup', key, '--json')).stdout) as { slot: number; partition: number; owner: string; node: string };
    expect(loc.slot).to.equal(keySlot('user42'));
    expect(loc.partition).to.equal(partitionOfSlot(loc.slot, 271));
    expect(loc.owner).to.equal(await redis.hget(new Keys(prefix).lease(loc.partition), 'owner'));
    expect(clusterUrl()).to.contain(loc.node);
    const viaHttp = (await (await get(w!, `/lookup/${encodeURIComponent(key)}`)).json()) as typeof loc;
    expect(viaHttp).to.deep.include({ slot: loc.slot, partition: loc.partition, owner: loc.owner, node: loc.node });
    // A key that looks like a flag goes after --, as the usage says.
    const dashed = await tg(env, 'lookup', '--json', '--', '-{user42}');
    expect(dashed.code, dashed.stderr).to.equal(0);
    expect((JSON.parse(dashed.stdout) as typeof loc).slot).to.equal(keySlot('user42'));
  });

  it('serving metrics does not keep an idle worker awake', async () => {
    const sleeps = (w: WorkerProcess) => wakeups(w.proc.pid!); // the kernel's count of the main thread's waits
    await Promise.all(workers.map((w) => get(w, '/metrics')));
    const before = workers.map(sleeps);
    const from = Date.now();
    await new Promise((r) => setTimeout(r, 3000));
    const perSecond = workers.map((w, i) => ((sleeps(w) - before[i]!) * 1000) / (Date.now() - from));
    // Renewals, pings and looks wake a worker a few times a second (TTL 1.5 s here); a 10 ms
    // sampling timer for the event-loop metrics made it over a hundred.
    for (const rate of perSecond) expect(rate).to.be.below(40);
  });

  it('serves /metrics as Prometheus text with figures that add up', async () => {
    await Promise.all(Array.from({ length: 200 }, (_, i) => redis.set(`${prefix}-k:m${i}`, 'v')));
    let all: Map<string, number>[] = [];
    await waitFor(
      async () => {
        all = await Promise.all(workers.map(async (w) => parseMetrics(await (await get(w, '/metrics')).text())));
        return all.reduce((n, s) => n + metric(s, 'tg_tickets_made_total')[0]!, 0) >= 200;
      },
      { timeoutMs: 20000, what: '200 tickets counted in the metrics' },
    );
    expect(all.reduce((n, s) => n + metric(s, 'tg_partitions_owned')[0]!, 0)).to.equal(271);
    expect(all.reduce((n, s) => n + metric(s, 'tg_dirty_keys_appended_total')[0]!, 0)).to.be.at.least(200);
    for (const s of all) {
      expect(metric(s, 'tg_events_received_total')[0]).to.be.at.least(1);
      expect(metric(s, 'tg_members')[0]).to.equal(3);
      expect(metric(s, 'tg_ready')[0]).to.equal(1);
      expect(metric(s, 'tg_lease_renew_seconds_count')[0]).to.be.greaterThan(0);
      // A listener on each master where the worker's partitions live, each of which answered a ping lately.
      const lag = metric(s, 'tg_subscriber_lag_seconds');
      expect(lag.length).to.be.within(1, 3);
      for (const seconds of lag) expect(seconds).to.be.within(0, 2);
      for (const name of ['tg_reconcile_divergent_keys_total', 'tg_ticket_jobs_failed_total', 'tg_reconcile_keys_compared_total']) expect(metric(s, name)).to.have.length(1);
    }
    // Loopback unless TG_HTTP_HOST opens it.
    for (const w of workers) expect(w.logs.find((l) => l.message === 'http listening')?.host).to.equal('127.0.0.1');
    expect((await get(workers[0]!, '/healthz')).status).to.equal(200);
    expect((await get(workers[0]!, '/nope')).status).to.equal(404);
    // A request that fails inside (a key that is not valid URL encoding) says nothing of why.
    const failed = await get(workers[0]!, '/lookup/%E0%A4%A');
    expect(failed.status).to.equal(500);
    expect(await failed.text()).to.equal('internal error\n');
    await workers[0]!.waitForLog('http request failed');
  });

  it('keeps following events after a malformed one', async () => {
    const follower = spawn(process.execPath, [TG, 'events'], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let seen = '';
    let errors = '';
    follower.stdout.on('data', (d: Buffer) => (seen += d.toString()));
    follower.stderr.on('data', (d: Buffer) => (errors += d.toString()));
    await waitFor(() => errors.includes('following'), { timeoutMs: 10000, what: 'tg events to subscribe' });
    const channel = new Keys(prefix).eventsChannel();
    await redis.publish(channel, 'not json');
    await redis.publish(channel, JSON.stringify({ type: 'joined', worker: 'after-the-bad-one', at: Date.now() }));
    await waitFor(() => seen.includes('joined  after-the-bad-one'), { timeoutMs: 10000, what: 'the event after the malformed one' });
    expect(errors).to.contain('ignored a malformed event: not json');
    follower.kill('SIGINT');
    expect(await new Promise((r) => follower.on('exit', r))).to.equal(0);
  });

  it('follows events live, and /readyz drops while a join rebalances, then recovers', async () => {
    const follower = spawn(process.execPath, [TG, 'events', '--json'], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let seen = '';
    let banner = '';
    follower.stdout.on('data', (d: Buffer) => (seen += d.toString()));
    follower.stderr.on('data', (d: Buffer) => (banner += d.toString()));
    await waitFor(() => banner.includes('following'), { timeoutMs: 10000, what: 'tg events to subscribe' });
    const watched = workers[0]!;
    const statuses: number[] = [];
    let polling = true;
    const poller = (async () => {
      while (polling && statuses.length < 5000) {
        statuses.push((await get(watched, '/readyz')).status);
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    const fourth = await startOne();
    const id = ids.get(fourth)!;
    await waitFor(() => seen.includes(`"to":"${id}"`), { timeoutMs: 20000, what: 'moved events of the new worker on tg events' });
    await waitFor(async () => (await get(fourth, '/readyz')).status === 200 && statuses[statuses.length - 1] === 200, { timeoutMs: 20000, what: 'both ready again' });
    polling = false;
    await poller;
    follower.kill('SIGINT');
    expect(await new Promise((r) => follower.on('exit', r))).to.equal(0);
    expect(statuses).to.include(503);
    expect(statuses.indexOf(503)).to.be.lessThan(statuses.lastIndexOf(200));
    const events = seen.trim().split('\n').map((l) => JSON.parse(l) as { type: string });
    expect(events.some((e) => e.type === 'moved')).to.equal(true);
    fourth.proc.kill('SIGTERM');
    expect(await exitOf(fourth, 30000)).to.equal(0);
  });

  it('gives clear errors for a missing key, an unknown command or flag, a bad setting and an unreachable Redis', async () => {
    const noKey = await tg(env, 'lookup');
    expect(noKey.code).to.equal(2);
    expect(noKey.stderr).to.contain('lookup needs a key');
    const unknown = await tg(env, 'bogus');
    expect(unknown.code).to.equal(2);
    expect(unknown.stderr).to.contain("unknown command 'bogus'");
    const flag = await tg(env, 'info', '--jsn');
    expect(flag.code).to.equal(2);
    expect(flag.stderr).to.contain("'--jsn'").and.contain('usage: tg');
    const setting = await tg(env, 'info', '--partitions', 'many');
    expect(setting.code).to.equal(2);
    expect(setting.stderr).to.contain('--partitions');
    const down = await tg({ TG_REDIS_URL: 'redis://127.0.0.1:1', TG_PREFIX: prefix }, 'info');
    expect(down.code).to.equal(1);
    expect(down.stderr).to.contain('TG_REDIS_URL').and.contain('127.0.0.1:1');
  });

  it('says within seconds that a Redis Cluster is down and which master it marks failing, where it hung before', async () => {
    const server = await startLocalRedis({ mode: 'cluster' });
    const stalled = server.nodes[0]!;
    try {
      await freezeUntilClusterDown(server);
      // The stopped master is the first seed: it takes the connection and never answers.
      const r = await tg({ TG_REDIS_URL: server.url, TG_PREFIX: prefix }, 'info');
      expect(r.code).to.equal(1);
      expect(r.stderr).to.contain('is down: cluster_state:fail').and.contain(`marked failing: 127.0.0.1:${stalled.port} (master)`);
    } finally {
      process.kill(stalled.pid!, 'SIGCONT');
      await server.stop();
    }
  });
});
