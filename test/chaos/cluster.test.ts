/**
 * A cluster of real worker processes on the local 3-master cluster, with real signals:
 * balance, sticky moves on join and leave, handover without a gap on SIGINT, takeover
 * after SIGKILL, and the SIGINT restart loop under load.
 */
import { expect } from 'chai';
import { keyId } from '../../lib/coalescer.js';
import type { ClusterEvent } from '../../lib/events.js';
import { Keys } from '../../lib/keys.js';
import { readLeases } from '../../lib/lease-keeper.js';
import type { RedisClient } from '../../lib/redis.js';
import { clusterUrl, randomPrefix, waitFor } from '../helpers/redis.js';
import { exitOf, killIfRunning, spawnWorker, type WorkerProcess } from '../helpers/process.js';
import { runLoadtest } from '../helpers/loadtest.js';
import { client, waitForFinal, type Expected } from '../helpers/worker.js';

const P = 271;
const TTL = 1500;

function counts(owners: readonly (string | null)[]): Map<string | null, number> {
  const c = new Map<string | null, number>();
  for (const o of owners) c.set(o, (c.get(o) ?? 0) + 1);
  return c;
}

function measured(line: string): void {
  process.stdout.write(`      measured: ${line}\n`);
}

describe('cluster of workers (real processes and signals)', function () {
  this.timeout(180000);
  const url = () => clusterUrl();
  let redis: RedisClient;
  let prefix: string;
  let keys: Keys;
  const procs: WorkerProcess[] = [];
  /** Everything published on the events channel since the start. */
  const events: ClusterEvent[] = [];
  let eventSub: RedisClient;
  const ids = new Map<WorkerProcess, string>();

  async function startOne(): Promise<WorkerProcess> {
    const w = spawnWorker({ TG_REDIS_URL: url(), TG_PREFIX: prefix, TG_WATCH: `${prefix}-k:*`, TG_LEASE_TTL_MS: String(TTL) });
    procs.push(w);
    const started = await w.waitForLog('starting');
    ids.set(w, String(started.worker));
    return w;
  }

  const owners = async () => (await readLeases(redis, keys, P)).map((l) => l.owner);

  /** Waits until the given workers, and only they, own floor/ceil(P/N) each; returns the owners and the time taken. */
  async function balancedAmong(workers: WorkerProcess[]): Promise<{ owners: (string | null)[]; ms: number }> {
    const want = new Set(workers.map((w) => ids.get(w)!));
    const lo = Math.floor(P / want.size);
    const t0 = Date.now();
    let last: (string | null)[] = [];
    await waitFor(
      async () => {
        last = await owners();
        const c = counts(last);
        return c.size === want.size && [...c].every(([o, n]) => o !== null && want.has(o) && (n === lo || n === lo + 1));
      },
      { timeoutMs: 30000, intervalMs: 50, what: () => `balance among ${want.size} workers (owners now ${JSON.stringify([...counts(last)])})` },
    );
    return { owners: last, ms: Date.now() - t0 };
  }

  before(async () => {
    prefix = randomPrefix();
    keys = new Keys(prefix);
    redis = await client(url());
    eventSub = redis.duplicate();
    eventSub.on('message', (_channel: string, message: string) => events.push(JSON.parse(message) as ClusterEvent));
    await eventSub.subscribe(keys.eventsChannel());
  });
  after(async () => {
    procs.forEach(killIfRunning);
    await eventSub.quit();
    await redis.quit();
  });

  it('balances 271 partitions over 3 workers as 90/90/91', async () => {
    const t0 = Date.now();
    await Promise.all([startOne(), startOne(), startOne()]);
    const { owners: o } = await balancedAmong(procs);
    expect([...counts(o).values()].sort()).to.deep.equal([90, 90, 91]);
    measured(`3 workers settled ${Date.now() - t0} ms after their start: ${[...counts(o).values()].sort().join('/')}`);
  });

  it('moves only the needed partitions when a 4th joins', async () => {
    const before = await owners();
    const t0 = Date.now();
    const fourth = await startOne();
    const { owners: after } = await balancedAmong(procs);
    const moved = after.filter((o, p) => o !== before[p]);
    expect(moved.every((o) => o === ids.get(fourth))).to.equal(true);
    expect(moved.length).to.equal(counts(after).get(ids.get(fourth)!));
    expect(moved.length).to.be.within(67, 68);
    const id = ids.get(fourth)!;
    await waitFor(() => events.some((e) => e.type === 'joined' && e.worker === id), { timeoutMs: 5000, what: 'the joined event' });
    const movedTo = () => events.filter((e) => e.type === 'moved' && e.to === id);
    await waitFor(() => movedTo().length >= moved.length, { timeoutMs: 5000, what: `${moved.length} moved events` });
    const movedEvents = movedTo();
    expect(movedEvents).to.have.length(moved.length);
    for (const e of movedEvents) {
      if (e.type !== 'moved') continue;
      expect(e.how).to.equal('taken-over');
      expect(e.from).to.equal(before[e.partition]);
      expect(e.token).to.be.greaterThan(1);
    }
    measured(`join: ${moved.length} partitions moved, balanced ${[...counts(after).values()].sort().join('/')} after ${Date.now() - t0} ms`);
  });

  it('hands every partition of a SIGINTed worker over with no gap, and it exits 0', async () => {
    const leaver = procs[0]!;
    const before = await owners();
    const expected: Expected = new Map();
    let n = 0;
    let writing = true;
    // Writes spread over all slots throughout the handover, bounded by count and by the test.
    const load = (async () => {
      while (writing && n < 20000) {
        const batch = Array.from({ length: 20 }, () => {
          const key = `${prefix}-k:int:${n % 3000}`;
          const value = `v${n++}`;
          expected.set(keyId(Buffer.from(key)), value);
          return redis.set(key, value);
        });
        await Promise.all(batch);
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    await new Promise((r) => setTimeout(r, 300)); // let the load run before the signal (not a condition wait)
    const t0 = Date.now();
    leaver.proc.kill('SIGINT');
    expect(await exitOf(leaver, 30000)).to.equal(0);
    const exitMs = Date.now() - t0;
    procs.splice(procs.indexOf(leaver), 1);
    const { owners: after } = await balancedAmong(procs);
    writing = false;
    await load;
    const moved = after.filter((o, p) => o !== before[p]);
    expect(before.filter((o, p) => o !== after[p] && o !== ids.get(leaver))).to.have.length(0);
    expect(moved.length).to.equal(counts(before).get(ids.get(leaver)!));
    const { total } = await waitForFinal(redis, prefix, expected, 60000);
    expect(events.some((e) => e.type === 'left' && e.worker === ids.get(leaver) && e.reason === 'graceful')).to.equal(true);
    measured(`leave: ${moved.length} partitions moved, worker exited 0 after ${exitMs} ms; ${n} writes to ${expected.size} keys during the handover, 0 lost, ${total} tickets`);
  });

  it('takes the partitions of a SIGKILLed worker over within 2 × the lease TTL', async () => {
    const victim = procs[0]!;
    const dead = ids.get(victim)!;
    const victimOwned = counts(await owners()).get(dead)!;
    const t0 = Date.now();
    victim.proc.kill('SIGKILL');
    await exitOf(victim, 10000);
    procs.splice(procs.indexOf(victim), 1);
    let last: (string | null)[] = [];
    await waitFor(
      async () => {
        last = await owners();
        return last.every((o) => o !== null && o !== dead);
      },
      { timeoutMs: 20000, intervalMs: 25, what: () => `takeover of ${last.filter((o) => o === dead || o === null).length} partitions` },
    );
    const takeoverMs = Date.now() - t0;
    expect(takeoverMs).to.be.at.most(2 * TTL);
    await waitFor(() => events.filter((e) => e.type === 'moved' && e.from === dead && e.how === 'acquired').length === victimOwned, {
      timeoutMs: 5000,
      what: `a moved event for each of the ${victimOwned} partitions of the killed worker`,
    });
    await waitFor(() => events.some((e) => e.type === 'left' && e.worker === dead && e.reason === 'silent'), { timeoutMs: 5000, what: 'the left (silent) event' });
    const { ms } = await balancedAmong(procs);
    measured(`SIGKILL: every partition taken over ${takeoverMs} ms after the kill (TTL ${TTL} ms), balanced ${ms} ms later`);
  });

  it('keeps 0 keys lost while a worker is SIGINTed every 8 s for 45 s under 1,000 writes/s', async function () {
    this.timeout(300000);
    procs.forEach((w) => w.proc.kill('SIGTERM'));
    await Promise.all(procs.map((w) => exitOf(w, 30000)));
    procs.length = 0;
    const { code, report, output } = await runLoadtest(clusterUrl(), ['--workers', '3', '--chaos', 'sigint', '--interval', '8', '--duration', '45', '--rate', '1000', '--keys', '3000']);
    expect(report, output).to.not.equal(undefined);
    expect(code, output).to.equal(0);
    expect(report!.signals.length).to.be.at.least(5);
    expect(report!.writeRate).to.be.at.least(950);
    expect(report!.keysLost).to.equal(0);
    measured(`SIGINT loop: ${report!.signals.length} signals, ${report!.writes} writes at ${report!.writeRate.toFixed(0)}/s to ${report!.keys} keys, ${report!.keysLost} lost, ${report!.ticketsPerWrite.toFixed(3)} tickets per write`);
  });
});
