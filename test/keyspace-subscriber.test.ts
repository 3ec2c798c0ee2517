/** The keyspace subscriber on a real cluster: which masters it listens on, and when its start is done. */
import { expect } from 'chai';
import { Redis, type Cluster } from 'ioredis';
import { loadConfig } from '../lib/config.js';
import { startLocalRedis } from '../lib/local-redis.js';
import { KeyspaceSubscriber } from '../lib/keyspace-subscriber.js';
import { silentLogger } from '../lib/logger.js';
import { closeConnection, connect, detectTarget, masters, publishNear } from '../lib/redis.js';
import { keySlot, SLOT_COUNT } from '../lib/slots.js';
import { clusterUrl, outcomeWithin, randomPrefix, waitFor } from './helpers/redis.js';
import { client } from './helpers/worker.js';

describe('keyspace subscriber', () => {
  it('finishes its start when told, mid-start, to listen on one master only (the others it let go of are not waited for)', async () => {
    const target = await detectTarget(loadConfig({ TG_REDIS_URL: clusterUrl() }, []).redis);
    const redis = await client(clusterUrl());
    const subscriber = new KeyspaceSubscriber({ target, client: redis, watch: `${randomPrefix()}-k:*`, configureNotifications: false, checkNotifications: true, evictionPolicy: 'warn', logger: silentLogger(), onEvent: () => undefined, pingIntervalMs: 1000, readPause: () => 0 });
    try {
      const [first] = await masters(redis, target);
      const wanted = new Uint8Array(SLOT_COUNT);
      for (const [low, high] of first!.ranges) wanted.fill(1, low, high + 1);
      const started = subscriber.start();
      // A worker's first look at the leases can come while the start still subscribes: here once
      // every master's connection is made and none is confirmed yet.
      for (const deadline = Date.now() + 5000; subscriber.status().length < 3; ) {
        if (Date.now() > deadline) throw new Error('the subscriber never connected to the 3 masters');
        await new Promise((r) => setImmediate(r));
      }
      expect(subscriber.status().some((n) => n.confirmed)).to.equal(false);
      subscriber.want(wanted);
      expect(await outcomeWithin(started.then(() => 'started'), 10_000)).to.equal('started');
      expect(subscriber.status().map((n) => n.node)).to.deep.equal([`${first!.host}:${first!.port}`]);
    } finally {
      await subscriber.stop();
      await redis.quit();
    }
  });

  it('brings a client whose slot map is off back in line with the topology it reads, the followers too', async () => {
    const target = await detectTarget(loadConfig({ TG_REDIS_URL: clusterUrl() }, []).redis);
    // As the worker's: no slot-map refresh on a timer of their own.
    const redis = connect(target, { periodicSlotsRefresh: false }) as Cluster;
    const queue = connect(target, { periodicSlotsRefresh: false }) as Cluster;
    const subscriber = new KeyspaceSubscriber({ target, client: redis, followers: [queue], watch: `${randomPrefix()}-k:*`, configureNotifications: false, checkNotifications: true, evictionPolicy: 'warn', logger: silentLogger(), onEvent: () => undefined, refreshIntervalMs: 200, readPause: () => 0 });
    try {
      await subscriber.start();
      await queue.ping();
      const right = redis.slots[0]![0];
      // As after a failover whose MOVED never came (the old master frozen), or a refresh that was dropped.
      for (const c of [redis, queue]) c.slots[0] = ['127.0.0.1:1'];
      await waitFor(() => redis.slots[0]?.[0] === right && queue.slots[0]?.[0] === right, { timeoutMs: 10000, what: 'both slot maps routing slot 0 as the topology says' });
    } finally {
      await subscriber.stop();
      await redis.quit();
      await queue.quit();
    }
  });
  it('says which master left the topology and which appeared when a replica takes over (CLUSTER FAILOVER)', async function () {
    this.timeout(60000);
    const servers = await startLocalRedis({ mode: 'cluster', replicas: 1 });
    const target = await detectTarget(loadConfig({ TG_REDIS_URL: servers.url }, []).redis);
    const redis = connect(target, { periodicSlotsRefresh: false });
    const replica = new Redis({ host: '127.0.0.1', port: servers.nodes[3]!.port });
    const subscriber = new KeyspaceSubscriber({ target, client: redis, watch: `${randomPrefix()}-k:*`, configureNotifications: false, checkNotifications: true, evictionPolicy: 'warn', logger: silentLogger(), onEvent: () => undefined, refreshIntervalMs: 200, readPause: () => 0 });
    const left: string[] = [];
    const appeared: string[] = [];
    subscriber.on('left', (node: string) => left.push(node));
    subscriber.on('appeared', (node: string) => appeared.push(node));
    try {
      await subscriber.start();
      const [, , masterPort] = (await replica.role()) as [string, string, number];
      await replica.cluster('FAILOVER');
      await waitFor(() => left.length > 0 && appeared.length > 0, { timeoutMs: 20000, what: 'the old master to leave and its replica to appear' });
      expect(left).to.deep.equal([`127.0.0.1:${masterPort}`]);
      expect(appeared).to.deep.equal([`127.0.0.1:${servers.nodes[3]!.port}`]);
    } finally {
      await subscriber.stop();
      replica.disconnect();
      await redis.quit();
      await servers.stop();
    }
  });
  it('finishes a start begun while a master is frozen (SIGSTOP) once its replica took over, listening there instead', async function () {
    this.timeout(60000);
    const servers = await startLocalRedis({ mode: 'cluster', replicas: 1 });
    const target = await detectTarget(loadConfig({ TG_REDIS_URL: servers.url }, []).redis);
    const redis = connect(target, { periodicSlotsRefresh: false, commandTimeoutMs: 2000 });
    const subscriber = new KeyspaceSubscriber({ target, client: redis, watch: `${randomPrefix()}-k:*`, configureNotifications: false, checkNotifications: true, evictionPolicy: 'warn', logger: silentLogger(), onEvent: () => undefined, refreshIntervalMs: 200, readPause: () => 0 });
    const victim = servers.nodes[0]!;
    let frozen = false;
    try {
      await masters(redis, target);
      process.kill(victim.pid!, 'SIGSTOP');
      frozen = true;
      // Begun before the replica takes over: the frozen master is in the topology it reads first.
      const started = subscriber.start();
      expect(await outcomeWithin(started.then(() => 'started'), 30_000)).to.equal('started');
      const nodes = () => subscriber.status().map((n) => n.node);
      expect(nodes()).to.not.include(`127.0.0.1:${victim.port}`);
      await waitFor(() => subscriber.status().length === 3 && subscriber.status().every((n) => n.confirmed), { timeoutMs: 10000, what: 'a confirmed subscription on each master, the promoted replica included' });
    } finally {
      await subscriber.stop();
      if (frozen) process.kill(victim.pid!, 'SIGCONT');
      redis.disconnect();
      await servers.stop();
    }
  });
  it('reads the topology from a master that answers, publishes through it, and closes its connections, while two of three masters are frozen (SIGSTOP): none waits for ever', async function () {
    this.timeout(60000);
    const servers = await startLocalRedis({ mode: 'cluster' });
    const target = await detectTarget(loadConfig({ TG_REDIS_URL: servers.url }, []).redis);
    // No command timeout: a read that lands on a frozen master would wait as long as it stays frozen.
    const redis = connect(target, { periodicSlotsRefresh: false });
    const frozen = servers.nodes.slice(0, 2);
    let stopped = false;
    let listener: Redis | undefined;
    try {
      const before = await masters(redis, target);
      expect(before).to.have.length(3);
      for (const n of frozen) process.kill(n.pid!, 'SIGSTOP');
      stopped = true;
      // Six reads: a keyless command would land on a frozen master in all but 1 of 729 such runs.
      for (let i = 0; i < 6; i++) expect(await outcomeWithin(masters(redis, target), 10_000), `read ${i + 1}`).to.deep.equal(before);
      // Offers and disconnect messages: a keyless PUBLISH would go to a frozen master in all but 1 of 729 such runs.
      const live = before.find((m) => !frozen.some((n) => n.port === m.port))!;
      const heard: string[] = [];
      listener = new Redis({ host: '127.0.0.1', port: live.port });
      listener.on('message', (_channel: string, message: string) => heard.push(message));
      await listener.subscribe('tg-test-offers');
      for (let i = 0; i < 6; i++) expect(await outcomeWithin(publishNear(redis, live.ranges[0]![0], 'tg-test-offers', `offer ${i}`), 10_000), `publish ${i + 1}`).to.equal(1);
      await waitFor(() => heard.length === 6, { timeoutMs: 5000, what: 'the six messages' });
      // A graceful stop closes its connections last: QUIT is never answered by a frozen master.
      expect(await outcomeWithin(closeConnection(redis).then(() => 'closed'), 10_000)).to.equal('closed');
    } finally {
      if (stopped) for (const n of frozen) process.kill(n.pid!, 'SIGCONT');
      listener?.disconnect();
      redis.disconnect();
      await servers.stop();
    }
  });

  it('opens new connections that answer at once while two of three masters are frozen (SIGSTOP) and the cluster still says ok: no readiness asked of a random master', async function () {
    this.timeout(60000);
    const servers = await startLocalRedis({ mode: 'cluster' });
    const target = await detectTarget(loadConfig({ TG_REDIS_URL: servers.url }, []).redis);
    const frozen = servers.nodes.slice(0, 2);
    const redis = connect(target, {});
    const opened: Cluster[] = [];
    let stopped = false;
    try {
      // The cluster says ok for the whole test: what waits, waits on a frozen master, not on a refusal.
      for (const n of servers.nodes) {
        const direct = new Redis({ host: '127.0.0.1', port: n.port });
        await direct.config('SET', 'cluster-node-timeout', '60000');
        direct.disconnect();
      }
      const live = (await masters(redis, target)).find((m) => !frozen.some((n) => n.port === m.port))!;
      const prefix = randomPrefix();
      let key = prefix;
      for (let i = 0; !live.ranges.some(([a, b]) => keySlot(key) >= a && keySlot(key) <= b); i++) key = `${prefix}:${i}`;
      for (const n of frozen) process.kill(n.pid!, 'SIGSTOP');
      stopped = true;
      // Six new connections: ioredis's ready check (CLUSTER INFO to a random master) would wait on a frozen one in all but 1 of 729 such runs.
      for (let i = 0; i < 6; i++) {
        const fresh = connect(target, { commandTimeoutMs: 30000, periodicSlotsRefresh: false }) as Cluster;
        fresh.on('error', () => undefined);
        opened.push(fresh);
        expect(await outcomeWithin(fresh.get(key), 10_000), `connection ${i + 1}`).to.equal(null);
      }
    } finally {
      if (stopped) for (const n of frozen) process.kill(n.pid!, 'SIGCONT');
      [redis, ...opened].forEach((c) => c.disconnect());
      await servers.stop();
    }
  });
});
