import { expect } from 'chai';
import { Redis } from 'ioredis';
import { RedisServerMissingError, startLocalRedis } from '../lib/local-redis.js';
import { clusterUrl } from './helpers/redis.js';

const portsOf = (url: string) => url.split(',').map((u) => Number(new URL(u).port));

async function on<T>(port: number, fn: (r: Redis) => Promise<T>): Promise<T> {
  const r = new Redis({ host: '127.0.0.1', port });
  try {
    return await fn(r);
  } finally {
    r.disconnect();
  }
}

describe('local Redis', function () {
  this.timeout(60000);

  it('runs a 3-master cluster covering every slot, notifications on every master', async () => {
    const ports = portsOf(clusterUrl());
    expect(ports).to.have.length(3);
    for (const port of ports) {
      const slots = (await on(port, (r) => r.cluster('SLOTS'))) as [number, number][];
      expect(slots.reduce((n, [a, b]) => n + b - a + 1, 0)).to.equal(16384);
      const [, flags] = (await on(port, (r) => r.config('GET', 'notify-keyspace-events'))) as [string, string];
      expect(flags).to.contain('K');
    }
  });

  it('keeps data across a restart with appendonly, and stops every process it started', async () => {
    const local = await startLocalRedis({ mode: 'standalone', appendonly: true });
    const node = local.nodes[0]!;
    const firstPid = node.pid!;
    await on(node.port, (r) => r.set('kept', 'yes'));
    await node.stop();
    expect(() => process.kill(firstPid, 0)).to.throw();
    await node.start();
    expect(await on(node.port, (r) => r.get('kept'))).to.equal('yes');
    const pid = node.pid!;
    await local.stop();
    expect(() => process.kill(pid, 0)).to.throw();
  });

  it('says how to install redis-server when it is missing', async () => {
    let error: unknown;
    try {
      await startLocalRedis({ mode: 'standalone', redisServer: 'redis-server-that-does-not-exist' });
    } catch (err) {
      error = err;
    }
    expect(error).to.be.instanceOf(RedisServerMissingError);
    expect(String(error)).to.contain('apt-get install -y redis-server');
  });
});
