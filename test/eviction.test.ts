/** A master whose maxmemory-policy could evict the system's keys: the rule, and what a worker does. */
import { expect } from 'chai';
import { evictionRisk } from '../lib/eviction.js';
import type { RedisClient } from '../lib/redis.js';
import { GeneratorWorker } from '../lib/worker.js';
import { captureLogger } from './helpers/logs.js';
import { randomPrefix, standaloneUrl } from './helpers/redis.js';
import { client, testConfig } from './helpers/worker.js';

describe('eviction policy', () => {
  it('finds a risk only where a memory limit and the policy could evict the system\'s keys', () => {
    expect(evictionRisk('0', 'allkeys-lru')).to.equal(null);
    expect(evictionRisk('104857600', 'noeviction')).to.equal(null);
    expect(evictionRisk('104857600', 'allkeys-lfu')).to.contain('dirty streams');
    expect(evictionRisk('104857600', 'volatile-ttl')).to.contain('leases');
  });

  describe('on a real Redis with maxmemory and allkeys-lru', function () {
    this.timeout(60000);
    let redis: RedisClient;
    let saved: string[];
    before(async () => {
      redis = await client(standaloneUrl());
      saved = (await redis.config('GET', 'maxmemory', 'maxmemory-policy')) as string[];
      await redis.config('SET', 'maxmemory', '1gb', 'maxmemory-policy', 'allkeys-lru');
    });
    after(async () => {
      await redis.config('SET', saved[0]!, saved[1]!, saved[2]!, saved[3]!);
      await redis.quit();
    });

    it('warns and goes on by default, and stops with TG_EVICTION_POLICY=refuse naming the policy', async () => {
      const warned = captureLogger();
      const worker = new GeneratorWorker(testConfig(standaloneUrl(), randomPrefix()), { logger: warned.logger });
      await worker.start();
      await worker.stop();
      expect(warned.records.some((r) => r.level === 'warn' && r.policy === 'allkeys-lru' && String(r.message).includes('TG_EVICTION_POLICY'))).to.equal(true);

      const refused = new GeneratorWorker(testConfig(standaloneUrl(), randomPrefix(), { TG_EVICTION_POLICY: 'refuse' }), { logger: captureLogger().logger });
      let error: unknown;
      await refused.start().catch((err: unknown) => (error = err));
      await refused.stop().catch(() => undefined);
      expect(String(error)).to.contain("maxmemory-policy on 127.0.0.1").and.contain("'allkeys-lru'").and.contain('noeviction').and.contain('TG_EVICTION_POLICY=warn');
    });
  });
});
