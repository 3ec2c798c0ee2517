import { expect } from 'chai';
import { Redis } from 'ioredis';
import { ephemeralLow, portRange, RedisServerMissingError, startLocalRedis } from '../lib/local-redis.js';
import { keySlot } from '../lib/slots.js';
import { clusterUrl, waitFor } from './helpers/redis.js';

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

  it('promotes the replica of a killed master, and stops every process it started', async () => {
    const local = await startLocalRedis({ mode: 'cluster', masters: 3, replicas: 1 });
    try {
      expect(local.nodes).to.have.length(6);
      expect(portsOf(local.url)).to.deep.equal(local.nodes.slice(0, 3).map((n) => n.port));
      expect(await Promise.all(local.nodes.map((n) => n.role()))).to.deep.equal(['master', 'master', 'master', 'replica', 'replica', 'replica']);
      const pids = local.nodes.map((n) => n.pid!);

      const key = 'failover-key';
      const slot = keySlot(key);
      const old = await local.masterOf(slot);
      // WAIT: the write must be on the replica before its master dies, or it is lost with it.
      const acked = await on(old.port, async (r) => {
        await r.set(key, 'survives');
        return r.wait(1, 5000);
      });
      expect(acked).to.equal(1);

      await old.stop('SIGKILL');
      let now = old;
      await waitFor(
        async () => {
          now = await local.masterOf(slot).catch(() => old);
          return now !== old && (await on(now.port, async (r) => /cluster_state:ok/.test(await r.cluster('INFO'))).catch(() => false));
        },
        { timeoutMs: 15000, intervalMs: 100, what: () => `a replica of 127.0.0.1:${old.port} to take over slot ${slot} (CLUSTER SLOTS names 127.0.0.1:${now.port})` },
      );
      expect(await now.role()).to.equal('master');
      expect(await on(now.port, (r) => r.get(key))).to.equal('survives');

      await local.stop();
      for (const pid of pids) expect(() => process.kill(pid, 0), `pid ${pid}`).to.throw();
    } finally {
      await local.stop();
    }
  });

  it('picks its ports below those the kernel gives outgoing connections, the cluster bus port (+10000) included', () => {
    const low = ephemeralLow();
    // The test run's cluster, started by the launcher.
    for (const port of portsOf(clusterUrl())) expect(port + 10000, `bus port of ${port}`).to.be.below(low);
    for (const ephemeral of [32768, 49152]) {
      const { from, to } = portRange(true, ephemeral);
      expect(to + 10000).to.be.at.most(ephemeral);
      expect(to - from).to.be.at.least(1000);
    }
    // No room below a low range: as before.
    expect(portRange(true, 15000)).to.deep.equal({ from: 20000, to: 50000 });
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
