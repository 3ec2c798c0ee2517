/** Forged, stale and malformed disconnect messages change nothing: the lease in Redis decides. */
import { expect } from 'chai';
import { encodeDisconnect } from '../lib/control.js';
import { keyId } from '../lib/coalescer.js';
import type { RedisClient } from '../lib/redis.js';
import { GeneratorWorker } from '../lib/worker.js';
import { clusterUrl, randomPrefix, waitFor } from './helpers/redis.js';
import { captureLogger } from './helpers/logs.js';
import { client, testConfig, waitForFinal } from './helpers/worker.js';
import { partitionOfKey } from '../lib/slots.js';

describe('control channel', function () {
  this.timeout(60000);
  let redis: RedisClient;
  let worker: GeneratorWorker;

  before(async () => {
    redis = await client(clusterUrl());
  });
  after(async () => {
    await worker?.stop();
    await redis.quit();
  });

  it('ignores forged and malformed disconnect messages and keeps forwarding', async () => {
    const prefix = randomPrefix();
    const { logger, records } = captureLogger();
    worker = new GeneratorWorker(testConfig(clusterUrl(), prefix, { TG_WATCH: `${prefix}-k:*` }), { logger });
    await worker.start();
    await waitFor(() => worker.ownedPartitions().length === 271, { timeoutMs: 10000, what: 'all partitions owned' });
    const key = `${prefix}-k:target`;
    const p = partitionOfKey(key, 271);
    const lease = worker.keys.lease(p);
    const tokenBefore = await redis.hget(lease, 'token');
    const channel = worker.keys.controlChannel(worker.id);
    await redis.publish(channel, encodeDisconnect({ partition: p, token: Number(tokenBefore) + 1, owner: 'forger' }));
    await redis.publish(channel, encodeDisconnect({ partition: p, token: 1, owner: 'stale' }));
    await redis.publish(channel, '{"type":"disconnect","partition":"all"}');
    await redis.publish(channel, Buffer.from([0xff, 0x00, 0x7b]));
    await waitFor(
      () =>
        records.filter((r) => r.message === 'ignored a disconnect message the lease does not confirm').length === 2 &&
        records.filter((r) => r.message === 'ignored a malformed control message').length === 2,
      { timeoutMs: 10000, what: 'the worker to handle the four messages' },
    );
    expect(worker.ownedPartitions()).to.include(p);
    expect(await redis.hget(lease, 'token')).to.equal(tokenBefore);
    await redis.set(key, 'still forwarded');
    await waitForFinal(redis, prefix, new Map([[keyId(Buffer.from(key)), 'still forwarded']]));
  });
});
