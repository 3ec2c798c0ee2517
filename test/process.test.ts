/** The worker process: configuration errors, Redis at start, notifications, signals. */
import { expect } from 'chai';
import { keyId } from '../lib/coalescer.js';
import { startLocalRedis, type LocalRedis } from '../lib/local-redis.js';
import { clusterUrl, freezeUntilClusterDown, randomPrefix } from './helpers/redis.js';
import { exitOf, killIfRunning, spawnWorker, type WorkerProcess } from './helpers/process.js';
import { client, waitForFinal, type Expected } from './helpers/worker.js';

describe('worker process', function () {
  this.timeout(90000);
  let w: WorkerProcess | undefined;
  afterEach(() => killIfRunning(w));

  for (const [what, env, args, names] of [
    ['zero partitions', { TG_PARTITIONS: '0' }, [], 'TG_PARTITIONS'],
    ['non-numeric partitions', {}, ['--partitions', 'many'], '--partitions'],
    ['a lease TTL not above the renew interval', { TG_LEASE_TTL_MS: '500', TG_RENEW_INTERVAL_MS: '500' }, [], 'TG_LEASE_TTL_MS'],
    ['an unparseable URL', { TG_REDIS_URL: 'redis//nowhere' }, [], 'TG_REDIS_URL'],
    ['an unknown flag', {}, ['--partitons', '3'], '--partitons'],
  ] as [string, Record<string, string>, string[], string][]) {
    it(`exits non-zero naming the setting on ${what}`, async () => {
      w = spawnWorker(env, args);
      expect(await exitOf(w, 10000)).to.equal(2);
      expect(w.stderr()).to.contain(names);
    });
  }

  it('gives up on an unreachable Redis after the connect timeout, naming TG_REDIS_URL', async () => {
    w = spawnWorker({ TG_REDIS_URL: 'redis://127.0.0.1:1', TG_CONNECT_TIMEOUT_MS: '300' });
    expect(await exitOf(w, 10000)).to.equal(1);
    const fatal = w.logs.find((l) => l.fatal === true);
    expect(fatal?.message).to.contain('TG_REDIS_URL').and.contain('127.0.0.1:1');
  });

  it('stops at once, exit 0, when signalled while it waits for an unreachable Redis', async () => {
    w = spawnWorker({ TG_REDIS_URL: 'redis://127.0.0.1:1', TG_CONNECT_TIMEOUT_MS: '60000' });
    await w.waitForLog('Redis unreachable; retrying');
    const signalledAt = Date.now();
    w.proc.kill('SIGINT');
    expect(await exitOf(w, 2000)).to.equal(0);
    expect(Date.now() - signalledAt).to.be.below(2000);
  });

  it('waits at start for a Redis Cluster that says it is down, and starts once it is up', async () => {
    const server = await startLocalRedis({ mode: 'cluster' });
    const stalled = server.nodes[0]!.pid!;
    try {
      // A stopped master stops answering the cluster bus: after the node timeout the others mark it failing.
      await freezeUntilClusterDown(server);
      w = spawnWorker({ TG_REDIS_URL: server.url, TG_PREFIX: randomPrefix(), TG_CONNECT_TIMEOUT_MS: '60000' });
      const waiting = await w.waitForLog('Redis Cluster down; retrying', 30000);
      expect(waiting.err).to.contain('cluster_state:fail').and.contain('TG_REDIS_URL');
      process.kill(stalled, 'SIGCONT');
      await w.waitForLog('started', 60000);
      w.proc.kill('SIGTERM');
      expect(await exitOf(w, 20000)).to.equal(0);
    } finally {
      process.kill(stalled, 'SIGCONT');
      await server.stop();
    }
  });

  it('gives up on a command Redis does not answer after TG_COMMAND_TIMEOUT_MS, and goes on once Redis does', async () => {
    const server = await startLocalRedis({ mode: 'standalone' });
    const stalled = server.nodes[0]!.pid!;
    try {
      w = spawnWorker({ TG_REDIS_URL: server.url, TG_PREFIX: randomPrefix(), TG_PARTITIONS: '16', TG_COMMAND_TIMEOUT_MS: '1000' });
      await w.waitForLog('started');
      // Stopped, the server keeps its connections open and answers nothing: without a timeout every command waits for ever.
      process.kill(stalled, 'SIGSTOP');
      const timedOut = await w.waitForLog('lease renewal failed', 10000);
      expect(String(timedOut.err)).to.contain('Command timed out');
      process.kill(stalled, 'SIGCONT');
      w.proc.kill('SIGTERM');
      expect(await exitOf(w, 20000)).to.equal(0);
    } finally {
      process.kill(stalled, 'SIGCONT');
      await server.stop();
    }
  });

  it('stops by its deadline when Redis dies before a SIGTERM, naming what it leaves behind and why', async () => {
    const server = await startLocalRedis({ mode: 'standalone' });
    try {
      w = spawnWorker({ TG_REDIS_URL: server.url, TG_PREFIX: randomPrefix(), TG_SHUTDOWN_TIMEOUT_MS: '3000', TG_PARTITIONS: '16' });
      expect((await w.waitForLog('started')).owned).to.equal(16);
      process.kill(server.nodes[0]!.pid!, 'SIGKILL');
      w.proc.kill('SIGTERM');
      expect(await exitOf(w, 10000)).to.equal(1);
      const last = w.logs.find((l) => String(l.message).startsWith('graceful stop missed its deadline'));
      expect(last?.message).to.contain('compare them with Redis');
      expect(last?.redis).to.be.a('string').and.not.equal('ready');
      expect(last?.partitionsNotHandedOver).to.equal(16);
      expect(last?.step).to.equal('leaving, handing partitions over');
    } finally {
      await server.stop();
    }
  });

  describe('with keyspace notifications disabled', () => {
    let server: LocalRedis;
    before(async () => {
      server = await startLocalRedis({ mode: 'standalone', notifications: '' });
    });
    after(async () => {
      await server.stop();
    });

    it('refuses to start with a clear error', async () => {
      w = spawnWorker({ TG_REDIS_URL: server.url, TG_PREFIX: randomPrefix() });
      expect(await exitOf(w, 15000)).to.equal(1);
      const fatal = w.logs.find((l) => l.fatal === true);
      expect(fatal?.message).to.contain('notify-keyspace-events').and.contain('TG_CONFIGURE_NOTIFICATIONS');
    });

    it('enables them when TG_CONFIGURE_NOTIFICATIONS=1, then stops on SIGTERM with exit 0', async () => {
      w = spawnWorker({ TG_REDIS_URL: server.url, TG_PREFIX: randomPrefix(), TG_CONFIGURE_NOTIFICATIONS: '1' });
      await w.waitForLog('started');
      const redis = await client(server.url);
      try {
        const [, flags] = (await redis.config('GET', 'notify-keyspace-events')) as [string, string];
        expect(flags).to.contain('K');
      } finally {
        await redis.quit();
      }
      w.proc.kill('SIGTERM');
      expect(await exitOf(w, 20000)).to.equal(0);
    });
  });

  it('refuses a TG_SINK_SHARDS that would split the sink: over a stream of an earlier version, or unlike the other workers\'', async () => {
    const prefix = randomPrefix();
    const redis = await client(clusterUrl());
    let first: WorkerProcess | undefined;
    try {
      await redis.xadd(`${prefix}:tickets`, '*', 'id', 'from an earlier version');
      w = spawnWorker({ TG_REDIS_URL: clusterUrl(), TG_PREFIX: prefix });
      expect(await exitOf(w, 15000)).to.equal(1);
      expect(w.logs.find((l) => l.fatal === true)?.message).to.contain('TG_SINK_SHARDS=3').and.contain(`${prefix}:tickets`).and.contain('TG_SINK_SHARDS=1');

      w = spawnWorker({ TG_REDIS_URL: clusterUrl(), TG_PREFIX: prefix, TG_SINK_SHARDS: '1' });
      await w.waitForLog('started');
      expect(await redis.lrange(`${prefix}:sink-streams`, 0, -1)).to.deep.equal([`${prefix}:tickets`]);
      first = w;
      w = spawnWorker({ TG_REDIS_URL: clusterUrl(), TG_PREFIX: prefix, TG_SINK_SHARDS: '2' });
      expect(await exitOf(w, 15000)).to.equal(1);
      expect(w.logs.find((l) => l.fatal === true)?.message).to.contain('TG_SINK_SHARDS=2').and.contain('set TG_SINK_SHARDS=1');
      first.proc.kill('SIGTERM');
      expect(await exitOf(first, 20000)).to.equal(0);
    } finally {
      killIfRunning(first);
      await redis.quit();
    }
  });

  it('exits at once with 1 on a second signal during the graceful stop', async () => {
    const prefix = randomPrefix();
    w = spawnWorker({ TG_REDIS_URL: clusterUrl(), TG_PREFIX: prefix, TG_WATCH: `${prefix}-k:*` });
    await w.waitForLog('started');
    // Two different signals: a second SIGTERM pending behind the first could be merged into it.
    w.proc.kill('SIGTERM');
    w.proc.kill('SIGINT');
    expect(await exitOf(w, 10000)).to.equal(1);
    expect(w.logs.map((l) => l.message)).to.include('second signal: exiting now').and.not.include('stopped');
  });

  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    it(`on ${signal} finishes its work, releases its leases and exits 0`, async () => {
      const prefix = randomPrefix();
      const url = clusterUrl();
      w = spawnWorker({ TG_REDIS_URL: url, TG_PREFIX: prefix, TG_WATCH: `${prefix}-k:*` });
      await w.waitForLog('started');
      const redis = await client(url);
      try {
        const expected: Expected = new Map();
        await Promise.all(
          Array.from({ length: 500 }, (_, i) => {
            const key = `${prefix}-k:${i}`;
            expected.set(keyId(Buffer.from(key)), `v${i}`);
            return redis.set(key, `v${i}`);
          }),
        );
        // The signal arrives while the tickets are still being made: none may be lost.
        w.proc.kill(signal);
        expect(await exitOf(w, 30000)).to.equal(0);
        expect(w.logs.map((l) => l.message)).to.include('stopped');
        const leases = await Promise.all(Array.from({ length: 271 }, (_, p) => redis.exists(`${prefix}:{p${p}}:lease`)));
        expect(leases.filter((n) => n > 0)).to.have.length(0);
        // Jobs it enqueued but did not run stay queued for the next worker.
        w = spawnWorker({ TG_REDIS_URL: url, TG_PREFIX: prefix, TG_WATCH: `${prefix}-k:*` });
        await waitForFinal(redis, prefix, expected);
        // Signal handlers exist once the modules have loaded: signal a started worker.
        await w.waitForLog('started');
        w.proc.kill('SIGTERM');
        expect(await exitOf(w, 30000)).to.equal(0);
      } finally {
        await redis.quit();
      }
    });
  }
});
