/**
 * Redis answering OOM to the worker's appends (maxmemory reached under noeviction): the keys
 * waiting in memory stay under TG_MAX_PENDING_KEYS, the refusals are counted on /metrics, and
 * once Redis takes writes again every key's newest ticket is what Redis holds.
 */
import { expect } from 'chai';
import { startLocalRedis, type LocalRedis } from '../lib/local-redis.js';
import { createMetrics } from '../lib/metrics.js';
import type { RedisClient } from '../lib/redis.js';
import type { GeneratorWorker } from '../lib/worker.js';
import { randomPrefix, waitFor } from './helpers/redis.js';
import { client, startWorker, testConfig, waitForConvergence } from './helpers/worker.js';

describe('OOM answers to the appends', function () {
  this.timeout(120000);
  let server: LocalRedis;
  let redis: RedisClient;
  let worker: GeneratorWorker | undefined;
  before(async () => {
    server = await startLocalRedis({ mode: 'standalone' });
    redis = await client(server.url);
  });
  after(async () => {
    await worker?.stop();
    await redis.quit();
    await server.stop();
  });

  it('keeps at most TG_MAX_PENDING_KEYS in memory, counts the refusals, and converges once Redis takes writes', async () => {
    const prefix = randomPrefix();
    const keys = Array.from({ length: 1000 }, (_, i) => `${prefix}-k:${i}`);
    worker = await startWorker(testConfig(server.url, prefix, { TG_WATCH: `${prefix}-k:*`, TG_MAX_PENDING_KEYS: '200' }));
    await Promise.all(keys.map((k) => redis.set(k, 'before')));
    await waitForConvergence(redis, prefix, keys, 30000);

    const used = Number(/used_memory:(\d+)/.exec(await redis.info('memory'))![1]);
    await redis.config('SET', 'maxmemory-policy', 'noeviction', 'maxmemory', String(used + 4 * 1024 * 1024));
    let refused = '';
    for (let i = 0; i < 400 && !refused; i++) await redis.set(`${prefix}-fill:${i}`, 'x'.repeat(64 * 1024)).catch((err: unknown) => (refused = String(err)));
    expect(refused).to.contain('OOM');

    // Deletions are allowed at maxmemory: each is a change the worker hears but cannot append.
    let most = 0;
    const sampler = setInterval(() => (most = Math.max(most, worker!.snapshot().pendingInMemory)), 2);
    try {
      await Promise.all(keys.slice(0, 800).map((k) => redis.del(k)));
      await waitFor(() => worker!.snapshot().dirtyKeysShed > 0 && worker!.snapshot().dirtyAppendFailures > 0, { timeoutMs: 15000, what: 'refused appends and keys dropped from memory' });
    } finally {
      clearInterval(sampler);
    }
    expect(most).to.be.within(1, 200);
    const metrics = await createMetrics(worker).metrics();
    const counter = (name: string) => Number(new RegExp(`^${name}\\{[^}]*\\} (\\d+)`, 'm').exec(metrics)?.[1] ?? 0);
    expect(counter('tg_dirty_append_failures_total')).to.be.above(0);
    expect(counter('tg_dirty_keys_shed_total')).to.be.above(0);

    await redis.config('SET', 'maxmemory', '0');
    const ms = await waitForConvergence(redis, prefix, keys, 60000);
    process.stdout.write(`      measured: OOM: at most ${most} keys in memory (limit 200), ${worker.snapshot().dirtyKeysShed} dropped and repaired, converged ${ms} ms after maxmemory was lifted\n`);
  });
});
