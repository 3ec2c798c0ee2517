/**
 * `npm run bench:repair`: what exact repair and reconciliation cost. Fills the cluster with N
 * watched keys and their ticket index (as ticket jobs would have written it), measures the
 * index's memory per key, changes 1 % and deletes 0.5 % of the keys behind the workers' back,
 * then repairs every partition (unpaced) and reports the rate and the keys marked beyond
 * those that changed. With --rate R it also runs one paced reconciliation pass at R keys/s
 * and reports its duration and this process's CPU time.
 *
 * node loadtest/repair-bench.js [--keys 10000,100000] [--rate 0]
 */
import { loadConfig } from '../lib/config.js';
import { Keys } from '../lib/keys.js';
import { startLocalRedis, type LocalRedis } from '../lib/local-redis.js';
import { offlineReconciler, type Reconciler } from '../lib/reconciler.js';
import { connect, detectTarget } from '../lib/redis.js';
import { Scripts } from '../lib/scripts.js';
import { keySlot, partitionOfSlot } from '../lib/slots.js';
import { benchArgs } from './args.js';

const { values: a, whole, wholeList } = benchArgs('node loadtest/repair-bench.js [--keys 10000,100000] [--rate 0]', { keys: { type: 'string', default: '10000,100000' }, rate: { type: 'string', default: '0' } });
const sizes = wholeList('keys', a.keys, 100);
const rate = whole('rate', a.rate, 0);

const local: LocalRedis | undefined = process.env.TG_REDIS_URL ? undefined : await startLocalRedis({ mode: 'cluster' });
const url = process.env.TG_REDIS_URL ?? local!.url;
const target = await detectTarget(loadConfig({ TG_REDIS_URL: url }, []).redis);
const redis = connect(target);
const all = Array.from({ length: 271 }, (_, p) => p);
const PAGE = 5000;

function reconciler(prefix: string, onMark: () => void, ratePerSecond = 0): Promise<Reconciler> {
  return offlineReconciler({ target, client: redis, keys: new Keys(prefix), watch: `${prefix}-k:*`, partitions: 271, owned: () => all, ratePerSecond, graceMs: 0, markDirty: onMark });
}

try {
  for (const n of sizes) {
    const prefix = `rb${n}`;
    const keys = new Keys(prefix);
    const scripts = new Scripts(redis, keys);
    const name = (i: number) => `${prefix}-k:${i}`;
    for (let i = 0; i < n; i += PAGE) {
      const page = Array.from({ length: Math.min(PAGE, n - i) }, (_, j) => Buffer.from(name(i + j)));
      await Promise.all(page.map((k) => redis.set(k, `value-${k.toString()}`)));
      const digests = await Promise.all(page.map((k) => scripts.readValue(k)));
      const seq = `${Date.now()}-0`;
      const byPartition = new Map<number, { partition: number; key: Buffer; seq: string; digest: string }[]>();
      page.forEach((key, j) => {
        const partition = partitionOfSlot(keySlot(key), 271);
        byPartition.set(partition, [...(byPartition.get(partition) ?? []), { partition, key, seq, digest: digests[j]!.digest }]);
      });
      await Promise.all([...byPartition.values()].map((entries) => scripts.recordTickets(entries)));
    }
    let indexBytes = 0;
    for (const p of all) indexBytes += Number((await redis.memory('USAGE', keys.index(p), 'SAMPLES', '0')) ?? 0);

    const changed = Math.floor(n / 100);
    const deleted = Math.floor(n / 200);
    await Promise.all(Array.from({ length: changed }, (_, i) => redis.set(name(i * 100), 'new')));
    await Promise.all(Array.from({ length: deleted }, (_, i) => redis.del(name(i * 200 + 50))));
    let marked = 0;
    const repair = await reconciler(prefix, () => marked++);
    const t0 = performance.now();
    for (const p of all) repair.request(p, 'repair');
    await repair.close();
    const ms = performance.now() - t0;
    process.stdout.write(
      `${n} keys: index ${(indexBytes / n).toFixed(1)} bytes per key (${(indexBytes / 1048576).toFixed(1)} MiB); ` +
        `exact repair of 271 partitions in ${(ms / 1000).toFixed(1)} s (${Math.round((repair.stats.keysCompared / ms) * 1000)} keys/s compared); ` +
        `${changed + deleted} changed or deleted behind its back, ${marked} marked, ${marked - changed - deleted} extra\n`,
    );
    if (rate > 0) {
      let divergent = 0;
      const paced = await reconciler(prefix, () => divergent++, rate);
      const cpu0 = process.cpuUsage();
      const p0 = performance.now();
      await paced.reconcileOnce(all);
      const passMs = performance.now() - p0;
      const cpu = process.cpuUsage(cpu0);
      process.stdout.write(
        `${n} keys: one reconciliation pass at ${rate} keys/s took ${(passMs / 1000).toFixed(0)} s, worker CPU ${((cpu.user + cpu.system) / 1000 / (passMs / 1000)).toFixed(1)} ms/s, ${divergent} divergent\n`,
      );
    }
    for (let i = 0; i < n; i += PAGE) await Promise.all(Array.from({ length: Math.min(PAGE, n - i) }, (_, j) => redis.del(name(i + j))));
    for (const p of all) await redis.del(keys.index(p));
  }
} finally {
  await redis.quit();
  await local?.stop();
}
