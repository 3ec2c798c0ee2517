/** The scan repair on real Redis: idle-time filter, LFU fallback, cluster and standalone listing. */
import { expect } from 'chai';
import { Redis } from 'ioredis';
import { GapRepairer } from '../lib/gap-repair.js';
import { Keys } from '../lib/keys.js';
import { loadConfig } from '../lib/config.js';
import { startLocalRedis, type LocalRedis } from '../lib/local-redis.js';
import { silentLogger } from '../lib/logger.js';
import { detectTarget, masters, connect, slotNodes, type RedisTarget } from '../lib/redis.js';
import { clusterUrl, randomPrefix, waitFor } from './helpers/redis.js';

async function repairer(url: string, prefix: string, marked: string[]): Promise<{ r: GapRepairer; target: RedisTarget }> {
  const target = await detectTarget(loadConfig({ TG_REDIS_URL: url }, []).redis);
  const c = connect(target);
  const slotNode = slotNodes(await masters(c, target));
  await c.quit();
  const r = new GapRepairer({
    target,
    keys: new Keys(prefix),
    watch: `${prefix}-k:*`,
    partitions: 271,
    logger: silentLogger(),
    nodeOfSlot: (s) => slotNode[s],
    markDirty: (_p, key) => marked.push(key.toString()),
  });
  return { r, target };
}

const allPartitions = (r: GapRepairer, gapMs: number) => Array.from({ length: 271 }, (_, p) => r.request(p, gapMs));

describe('gap repair by scan', function () {
  this.timeout(60000);
  let server: LocalRedis;
  let redis: Redis;
  before(async () => {
    server = await startLocalRedis({ mode: 'standalone' });
    redis = new Redis(server.url);
  });
  after(async () => {
    redis.disconnect();
    await server.stop();
  });

  async function oldAndNew(prefix: string): Promise<{ old: string[]; fresh: string[] }> {
    const old = Array.from({ length: 30 }, (_, i) => `${prefix}-k:old:${i}`);
    const fresh = Array.from({ length: 30 }, (_, i) => `${prefix}-k:new:${i}`);
    for (const k of old) await redis.set(k, 'x');
    await redis.set(`${prefix}:own`, 'never marked');
    await redis.set(`${prefix}-other`, 'not watched');
    // Idle time has one-second resolution: wait until the old keys are clearly older than the gap and margin.
    await waitFor(async () => (await redis.object('IDLETIME', old[old.length - 1]!)) as number >= 4, { timeoutMs: 10000, what: 'old keys idle for 4 s' });
    for (const k of fresh) await redis.set(k, 'y');
    return { old, fresh };
  }

  it('marks only the watched keys touched within the gap (standalone SCAN)', async () => {
    const prefix = randomPrefix();
    const { fresh } = await oldAndNew(prefix);
    const marked: string[] = [];
    const { r } = await repairer(server.url, prefix, marked);
    allPartitions(r, 0);
    await r.close();
    expect(marked.sort()).to.deep.equal([...fresh].sort());
    expect(r.stats).to.include({ repairs: 271, keysMarked: 30, keysScanned: 60 });
  });

  it('marks every watched key where idle time is not tracked (LFU policy)', async () => {
    const prefix = randomPrefix();
    // Old under LRU (the scan alone would skip them), then the policy turns to LFU.
    const { old, fresh } = await oldAndNew(prefix);
    await redis.config('SET', 'maxmemory-policy', 'allkeys-lfu');
    try {
      const marked: string[] = [];
      const { r } = await repairer(server.url, prefix, marked);
      allPartitions(r, 0);
      await r.close();
      expect(marked.sort()).to.deep.equal([...old, ...fresh].sort());
    } finally {
      await redis.config('SET', 'maxmemory-policy', 'noeviction');
    }
  });

  it('lists a cluster slot by slot on the node serving it', async () => {
    const prefix = randomPrefix();
    const target = await detectTarget(loadConfig({ TG_REDIS_URL: clusterUrl() }, []).redis);
    const c = connect(target);
    try {
      const keys = Array.from({ length: 300 }, (_, i) => `${prefix}-k:${i}`);
      await Promise.all(keys.map((k) => c.set(k, 'v')));
      await Promise.all([c.set(`${prefix}:{x}:own`, 'v'), c.set(`${prefix}-unwatched`, 'v')]);
      const marked: string[] = [];
      const { r } = await repairer(clusterUrl(), prefix, marked);
      allPartitions(r, 60000);
      await r.close();
      expect(marked.sort()).to.deep.equal([...keys].sort());
    } finally {
      await c.quit();
    }
  });
});
