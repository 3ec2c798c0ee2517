/**
 * `npm run bench:repair`: what a gap repair by scan costs. Fills the cluster with N
 * watched keys, lets them age, changes 1 % of them (the writes of a gap nobody heard),
 * then repairs every partition over that gap and reports the time per partition and the
 * keys marked beyond those that changed (the extra tickets the repair causes).
 *
 * node loadtest/repair-bench.js [--keys 10000,100000]
 */
import { parseArgs } from 'node:util';
import { loadConfig } from '../lib/config.js';
import { GapRepairer } from '../lib/gap-repair.js';
import { Keys } from '../lib/keys.js';
import { startLocalRedis, type LocalRedis } from '../lib/local-redis.js';
import { silentLogger } from '../lib/logger.js';
import { connect, detectTarget, masters, slotNodes } from '../lib/redis.js';

const { values: a } = parseArgs({ options: { keys: { type: 'string', default: '10000,100000' } }, strict: true });
const sizes = a.keys!.split(',').map(Number);
if (sizes.some((n) => !Number.isInteger(n) || n < 100)) throw new Error(`--keys: '${a.keys}' must be whole numbers of at least 100, comma-separated`);

const local: LocalRedis | undefined = process.env.TG_REDIS_URL ? undefined : await startLocalRedis({ mode: 'cluster' });
const url = process.env.TG_REDIS_URL ?? local!.url;
const target = await detectTarget(loadConfig({ TG_REDIS_URL: url }, []).redis);
const redis = connect(target);
const slotNode = slotNodes(await masters(redis, target));
const GAP_MS = 3000;

try {
  for (const n of sizes) {
    const prefix = `rb${n}`;
    for (let i = 0; i < n; i += 5000) await Promise.all(Array.from({ length: Math.min(5000, n - i) }, (_, j) => redis.set(`${prefix}-k:${i + j}`, 'old')));
    // Idle time has one-second resolution: age the keys well past the gap and the margin.
    const ageDeadline = Date.now() + 60000;
    while (((await redis.object('IDLETIME', `${prefix}-k:${n - 1}`)) as number) < 7) {
      if (Date.now() > ageDeadline) throw new Error('keys did not age within 60 s');
      await new Promise((r) => setTimeout(r, 250));
    }
    const changed = Math.floor(n / 100);
    await Promise.all(Array.from({ length: changed }, (_, i) => redis.set(`${prefix}-k:${i * 100}`, 'new')));
    let marked = 0;
    const repairer = new GapRepairer({
      target,
      keys: new Keys(prefix),
      watch: `${prefix}-k:*`,
      partitions: 271,
      logger: silentLogger(),
      nodeOfSlot: (s) => slotNode[s],
      markDirty: () => marked++,
    });
    const t0 = performance.now();
    for (let p = 0; p < 271; p++) repairer.request(p, GAP_MS);
    await repairer.close();
    const ms = performance.now() - t0;
    process.stdout.write(
      `${n} keys: repaired 271 partitions in ${ms.toFixed(0)} ms (${(ms / 271).toFixed(2)} ms per partition, ${repairer.stats.keysScanned} keys scanned); ` +
        `${changed} changed in the gap, ${marked} marked, ${marked - changed} extra tickets\n`,
    );
    for (let i = 0; i < n; i += 5000) await Promise.all(Array.from({ length: Math.min(5000, n - i) }, (_, j) => redis.del(`${prefix}-k:${i + j}`)));
  }
} finally {
  await redis.quit();
  await local?.stop();
}
