/** Reading values through the Lua script on a real cluster, keys of any bytes included. */
import { expect } from 'chai';
import { Keys } from '../lib/keys.js';
import type { RedisClient } from '../lib/redis.js';
import { Scripts } from '../lib/scripts.js';
import { clusterUrl, randomPrefix } from './helpers/redis.js';
import { client } from './helpers/worker.js';

describe('scripts on a cluster', () => {
  let redis: RedisClient;
  before(async () => {
    redis = await client(clusterUrl());
  });
  after(() => redis.quit());

  it('reads keys that are not UTF-8 in the same tick as others (auto-pipelining would misroute them)', async () => {
    const prefix = randomPrefix();
    const scripts = new Scripts(redis, new Keys(prefix));
    const binary = Array.from({ length: 10 }, (_, i) => Buffer.concat([Buffer.from(`${prefix}-k:`), Buffer.from([0xff, 0xfe, i])]));
    const text = Array.from({ length: 20 }, (_, i) => Buffer.from(`${prefix}-k:text:${i}`));
    for (const k of [...binary, ...text]) await redis.set(k, Buffer.concat([Buffer.from('v:'), k]));
    const reads = await Promise.all([...binary, ...text].map((k) => scripts.readValue(k)));
    reads.forEach((r, i) => {
      const k = [...binary, ...text][i]!;
      expect(r.type).to.equal('string');
      expect((r.value as Buffer).equals(Buffer.concat([Buffer.from('v:'), k]))).to.equal(true);
    });
  });
});
