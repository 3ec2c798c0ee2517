/** The lease scripts on a real Redis: exclusivity, fencing tokens, handover. */
import { expect } from 'chai';
import { Keys } from '../lib/keys.js';
import { Cluster } from 'ioredis';
import { LeaseKeeper, readLeases } from '../lib/lease-keeper.js';
import { startLocalRedis } from '../lib/local-redis.js';
import { silentLogger } from '../lib/logger.js';
import { nodeOfSlot, type RedisClient } from '../lib/redis.js';
import { Scripts } from '../lib/scripts.js';
import { keySlot } from '../lib/slots.js';
import { clusterUrl, randomPrefix, standaloneUrl, waitFor } from './helpers/redis.js';
import { client } from './helpers/worker.js';

for (const mode of ['standalone', 'cluster'] as const) {
  describe(`lease scripts (${mode})`, () => {
    let redis: RedisClient;
    let scripts: Scripts;
    let keys: Keys;
    before(async () => {
      redis = await client(mode === 'cluster' ? clusterUrl() : standaloneUrl());
    });
    after(() => redis.quit());
    beforeEach(() => {
      keys = new Keys(randomPrefix());
      scripts = new Scripts(redis, keys);
    });

    it('gives a free lease to one worker only, with a token that only grows', async () => {
      const a = await scripts.acquireLease(5, 'A', 10000);
      expect(a).to.include({ token: 1, previouslyCovered: -1, previousOwner: null });
      expect(await scripts.acquireLease(5, 'B', 10000)).to.equal(null);
      expect(await scripts.releaseLease(5, 'A', a!.token)).to.equal(true);
      const b = await scripts.acquireLease(5, 'B', 10000);
      expect(b!.token).to.equal(2);
      expect(b!.previouslyCovered).to.be.at.least(a!.now);
    });

    it('never accepts a superseded token again: renew, release and offer fail', async () => {
      const a = await scripts.acquireLease(9, 'A', 10000);
      expect(await scripts.offerLease(9, 'A', a!.token, 'B')).to.equal(true);
      const b = await scripts.takeOverLease(9, 'B', 'A', 10000);
      expect(b!.token).to.equal(a!.token + 1);
      expect(await scripts.renewLease(9, 'A', a!.token, 10000, Date.now())).to.equal(null);
      expect(await scripts.releaseLease(9, 'A', a!.token)).to.equal(false);
      expect(await scripts.offerLease(9, 'A', a!.token, 'C')).to.equal(false);
      expect(await scripts.renewLease(9, 'B', b!.token, 10000, Date.now())).to.be.a('number');
      expect(await redis.hget(keys.lease(9), 'owner')).to.equal('B');
    });

    it('takes over only a lease offered to the caller by the owner it names', async () => {
      const a = await scripts.acquireLease(3, 'A', 10000);
      expect(await scripts.takeOverLease(3, 'B', 'A', 10000)).to.equal(null);
      await scripts.offerLease(3, 'A', a!.token, 'C');
      expect(await scripts.takeOverLease(3, 'B', 'A', 10000)).to.equal(null);
      expect(await scripts.takeOverLease(3, 'C', 'X', 10000)).to.equal(null);
      expect(await scripts.takeOverLease(3, 'C', 'A', 10000)).to.include({ token: a!.token + 1 });
      expect(await redis.hget(keys.lease(3), 'offer')).to.equal(null);
    });

    it('lets a lease expire in Redis time, and keeps the coverage mark of the last renewal', async () => {
      const a = await scripts.acquireLease(1, 'A', 200);
      const renewedAt = await scripts.renewLease(1, 'A', a!.token, 200, Number.MAX_SAFE_INTEGER);
      let b = null;
      const deadline = Date.now() + 5000;
      while (!b && Date.now() < deadline) b = await scripts.acquireLease(1, 'B', 10000);
      expect(b).to.not.equal(null);
      expect(b!.previouslyCovered).to.equal(renewedAt);
      expect(b!.previousOwner).to.equal('A');
      expect(b!.token).to.equal(a!.token + 1);
    });

    it('moves the coverage mark no later than what the owner heard', async () => {
      const a = await scripts.acquireLease(2, 'A', 10000);
      const heard = a!.now - 700;
      const renewedAt = await scripts.renewLease(2, 'A', a!.token, 10000, heard);
      expect(renewedAt).to.be.at.least(a!.now);
      expect(Number(await redis.hget(keys.covered(2), 'at'))).to.equal(heard);
    });

    /** Partitions whose lease keys the node of partition 0's lease serves, and one another node serves ('' standalone: none). */
    async function partitionsByNode(): Promise<{ same: number[]; other: number | undefined }> {
      await redis.ping();
      const node = (p: number) => nodeOfSlot(redis, keySlot(keys.lease(p)));
      const all = Array.from({ length: 271 }, (_, p) => p);
      return { same: all.filter((p) => node(p) === node(0)), other: all.find((p) => node(p) !== node(0)) };
    }

    it('renews the leases one node serves in one call, each as a single renewal would', async () => {
      const { same, other } = await partitionsByNode();
      const mine = same.slice(0, 4);
      const held = await Promise.all(mine.map((p) => scripts.acquireLease(p, 'A', 10000)));
      await scripts.offerLease(mine[3]!, 'A', held[3]!.token, 'B');
      await scripts.takeOverLease(mine[3]!, 'B', 'A', 10000);
      const heard = held[0]!.now - 500;
      const replies = await scripts.renewLeases(mine.map((partition, i) => ({ partition, token: held[i]!.token, heardUpTo: heard })), 'A', 60000);
      expect(replies.slice(0, 3).every((r) => typeof r === 'number' && r >= held[0]!.now)).to.equal(true);
      expect(replies[3]).to.equal(null);
      for (const p of mine.slice(0, 3)) {
        expect(await redis.pttl(keys.lease(p))).to.be.above(10000);
        expect(Number(await redis.hget(keys.covered(p), 'at'))).to.equal(heard);
      }
      expect(await redis.hget(keys.lease(mine[3]!), 'owner')).to.equal('B');
      if (mode === 'cluster') {
        // Keys another node serves are out of the script's reach: the keeper then renews one by one.
        const a = await scripts.acquireLease(other!, 'A', 10000);
        const mixed = [{ partition: mine[0]!, token: held[0]!.token, heardUpTo: heard }, { partition: other!, token: a!.token, heardUpTo: heard }];
        let refused: unknown;
        await scripts.renewLeases(mixed, 'A', 60000).catch((err: unknown) => (refused = err));
        expect(String(refused)).to.match(/non local key|slot/i);
      }
    });

    it('reads every lease one call a node, each as HMGET reads it', async () => {
      const held = await Promise.all([3, 100, 200, 270].map((p) => scripts.acquireLease(p, 'A', 10000)));
      await scripts.offerLease(100, 'A', held[1]!.token, 'B');
      const roCalls = async () => {
        const nodes = redis instanceof Cluster ? redis.nodes('master') : [redis];
        const stats = await Promise.all(nodes.map((n) => n.info('commandstats')));
        return { nodes: nodes.length, calls: stats.reduce((sum, text) => sum + Number(/cmdstat_evalsha_ro:calls=(\d+)/.exec(text)?.[1] ?? 0), 0) };
      };
      await readLeases(redis, keys, 271, scripts); // loads the script on every node
      const before = await roCalls();
      const leases = await readLeases(redis, keys, 271, scripts);
      const after = await roCalls();
      expect(after.calls - before.calls).to.equal(before.nodes);
      const expected = await Promise.all(Array.from({ length: 271 }, async (_, p) => {
        const [owner, token, offer] = await redis.hmget(keys.lease(p), 'owner', 'token', 'offer');
        return { owner: owner ?? null, token: Number(token ?? 0), offer: offer || null };
      }));
      expect(leases).to.deep.equal(expected);
      expect(leases[100]).to.deep.equal({ owner: 'A', token: held[1]!.token, offer: 'B' });
      expect(leases.filter((l) => l.owner !== null).length).to.equal(4);
    });

    it('keeps leases renewed one by one when the call for their node is refused', async () => {
      const partitions = Array.from({ length: 20 }, (_, p) => p);
      // Every lease said to be on one node: in a cluster that call reaches keys of other nodes and is refused.
      const keeper = new LeaseKeeper({ scripts, workerId: 'A', ttlMs: 400, renewIntervalMs: 100, logger: silentLogger(), coverageMark: () => Date.now(), nodeOf: () => 'one' });
      const lost: number[] = [];
      keeper.on('lost', (p: number) => lost.push(p));
      for (const p of partitions) expect(await keeper.acquire(p)).to.not.equal(null);
      keeper.start();
      let rounds = 0;
      keeper.on('renewed', () => rounds++);
      try {
        await waitFor(() => rounds >= 8, { timeoutMs: 10000, what: '8 renewal rounds (2 lease TTLs)' });
        expect(lost).to.deep.equal([]);
        for (const p of partitions) expect(await redis.hget(keys.lease(p), 'owner')).to.equal('A');
      } finally {
        await keeper.stop();
      }
    });

    it('leaves a coverage mark of 0, never "never covered", when the owner heard nothing and its clock runs ahead of Redis', async () => {
      // A listener stopped or not yet subscribed hears up to 0; plus a negative clock offset, the
      // mark sent is below 0, and the next owner would take -1 for a first coverage and adopt.
      const a = await scripts.acquireLease(11, 'A', 10000);
      const b = await scripts.acquireLease(12, 'A', 10000);
      expect(await scripts.renewLease(11, 'A', a!.token, 10000, -3)).to.be.a('number');
      expect(await scripts.renewLeases([{ partition: 12, token: b!.token, heardUpTo: -3 }], 'A', 10000)).to.have.length(1);
      for (const p of [11, 12]) {
        await redis.del(keys.lease(p));
        expect((await scripts.acquireLease(p, 'B', 10000))!.previouslyCovered).to.equal(0);
      }
    });

    it('records heartbeats and drops silent members', async () => {
      await scripts.heartbeat('old', 60000);
      await redis.zadd(keys.members(), 0, 'silent');
      const { live, dropped } = await scripts.heartbeat('me', 60000);
      expect(live.sort()).to.deep.equal(['me', 'old']);
      expect(dropped).to.deep.equal(['silent']);
    });

    it('drops nobody when the caller was as silent as the others (Redis away for all), and the silent ones a ttl later', async () => {
      const [seconds, micros] = await redis.time();
      const now = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
      await redis.zadd(keys.members(), now - 10000, 'me', now - 10000, 'other');
      const back = await scripts.heartbeat('me', 1000);
      const backAt = Date.now();
      expect(back.live.sort()).to.deep.equal(['me', 'other']);
      expect(back.dropped).to.deep.equal([]);
      // 'other' stays silent: the caller, heard again, drops it once the ttl from its return is over.
      await waitFor(async () => (await scripts.heartbeat('me', 1000)).dropped.includes('other'), { timeoutMs: 5000, what: 'the silent member dropped' });
      expect(Date.now() - backAt).to.be.at.least(900);
    });
  });
}

describe('lease keeper with a master that stops answering', function () {
  this.timeout(60000);

  it('keeps renewing the leases the other masters serve, and drops only the stopped one\'s once they lapse', async () => {
    const server = await startLocalRedis({ mode: 'cluster' });
    const redis = await client(server.url);
    const keys = new Keys(randomPrefix());
    const scripts = new Scripts(redis, keys);
    const ttlMs = 1000;
    const keeper = new LeaseKeeper({ scripts, workerId: 'A', ttlMs, renewIntervalMs: 200, logger: silentLogger(), coverageMark: () => Date.now(), nodeOf: (p) => nodeOfSlot(redis, keySlot(keys.lease(p))) });
    const lost = new Map<number, string>();
    keeper.on('lost', (p: number, reason: string) => lost.set(p, reason));
    const partitions = Array.from({ length: 30 }, (_, p) => p);
    const stopped = server.nodes[0]!;
    try {
      for (const p of partitions) expect(await keeper.acquire(p)).to.not.equal(null);
      // Known once the client has read the slot map (its first command).
      const onStopped = partitions.filter((p) => nodeOfSlot(redis, keySlot(keys.lease(p))) === `127.0.0.1:${stopped.port}`);
      const elsewhere = partitions.filter((p) => !onStopped.includes(p));
      expect(onStopped).to.not.be.empty;
      expect(elsewhere).to.not.be.empty;
      keeper.start();
      // Longer than the lease TTL, shorter than the cluster's node timeout (2 s): the other masters
      // still serve, and only the leases on the stopped one can lapse.
      process.kill(stopped.pid!, 'SIGSTOP');
      await new Promise((r) => setTimeout(r, 1500));
      process.kill(stopped.pid!, 'SIGCONT');
      expect([...lost.keys()].sort((a, b) => a - b)).to.deep.equal(onStopped);
      expect([...new Set(lost.values())]).to.deep.equal(['expired']);
      await keeper.stop();
      for (const p of elsewhere) expect(await redis.hget(keys.lease(p), 'owner')).to.equal('A');
    } finally {
      process.kill(stopped.pid!, 'SIGCONT');
      await keeper.stop();
      await redis.quit();
      await server.stop();
    }
  });
});
