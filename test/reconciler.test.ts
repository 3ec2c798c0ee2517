/**
 * Exact repair and reconciliation on real Redis, standalone and cluster: the ticket index
 * against what Redis holds, whatever idle times or access policies say.
 */
import { expect } from 'chai';
import type { Cluster } from 'ioredis';
import { Keys } from '../lib/keys.js';
import { startLocalRedis, type LocalRedis, type LocalRedisNode } from '../lib/local-redis.js';
import { loadConfig } from '../lib/config.js';
import { offlineReconciler, type Divergence, type Reconciler } from '../lib/reconciler.js';
import { connect, detectTarget, type RedisClient } from '../lib/redis.js';
import { Scripts } from '../lib/scripts.js';
import { keySlot, partitionOfSlot } from '../lib/slots.js';
import { KeyspaceReads } from '../lib/keyspace-reads.js';
import { needsTicket, parseIndexEntry, TicketIndex } from '../lib/ticket-index.js';
import { clusterUrl, outcomeWithin, randomPrefix, standaloneUrl } from './helpers/redis.js';

describe('ticket index entries', () => {
  it('parses seq and digest, a tombstone has an empty digest', () => {
    expect(parseIndexEntry('1700000000000-3 0123456789abcdef')).to.deep.equal({ seq: '1700000000000-3', digest: '0123456789abcdef' });
    expect(parseIndexEntry(Buffer.from('1-0 '))).to.deep.equal({ seq: '1-0', digest: '' });
    expect(parseIndexEntry(null)).to.equal(undefined);
  });

  it('asks for a ticket where the index and Redis differ, absent keys included', () => {
    expect(needsTicket(undefined, '')).to.equal(false);
    expect(needsTicket(undefined, 'ab')).to.equal(true);
    expect(needsTicket({ seq: '1-0', digest: 'ab' }, 'ab')).to.equal(false);
    expect(needsTicket({ seq: '1-0', digest: 'ab' }, '')).to.equal(true);
    expect(needsTicket({ seq: '1-0', digest: '' }, '')).to.equal(false);
    expect(needsTicket({ seq: '1-0', digest: '' }, 'ab')).to.equal(true);
  });
});

for (const mode of ['standalone', 'cluster'] as const) {
  describe(`reconciliation with the ticket index (${mode})`, function () {
    this.timeout(60000);
    const url = () => (mode === 'cluster' ? clusterUrl() : standaloneUrl());
    let redis: RedisClient;
    before(async () => {
      redis = connect(await detectTarget(loadConfig({ TG_REDIS_URL: url() }, []).redis));
    });
    after(() => redis.quit());

    async function reconciler(prefix: string, marked: Map<string, string>, graceMs = 0): Promise<Reconciler> {
      const target = await detectTarget(loadConfig({ TG_REDIS_URL: url() }, []).redis);
      const markDirty = (_p: number, key: Buffer, event: string) => void marked.set(key.toString(), event);
      return offlineReconciler({ target, client: redis, keys: new Keys(prefix), watch: `${prefix}-k:*`, partitions: 271, ratePerSecond: 0, graceMs, markDirty });
    }
    const all = Array.from({ length: 271 }, (_, p) => p);

    it('adopts what Redis holds, then marks exactly what changed behind its back: rewrites, deletions, hash changes, new keys', async () => {
      const prefix = randomPrefix();
      const k = (name: string, i: number) => `${prefix}-k:${name}:${i}`;
      for (let i = 0; i < 40; i++) {
        await redis.set(k('s', i), `v${i}`);
        await redis.hset(k('h', i), 'a', '1', 'b', String(i));
      }
      await redis.set(`${prefix}:own`, 'never compared');
      await redis.set(`${prefix}-other`, 'not watched');
      const marked = new Map<string, string>();
      const r = await reconciler(prefix, marked);
      for (const p of all) r.request(p, 'adopt');
      await r.close();
      expect(marked.size).to.equal(0);
      expect(r.stats.keysAdopted).to.equal(80);

      const want = new Set<string>();
      for (let i = 0; i < 5; i++) {
        await redis.set(k('s', i), `rewritten${i}`);
        await redis.del(k('s', 10 + i));
        await redis.hset(k('h', i), 'b', 'changed');
        await redis.set(k('new', i), 'fresh');
        [k('s', i), k('s', 10 + i), k('h', i), k('new', i)].forEach((x) => want.add(x));
      }
      // The same content written in another order is the same value: no ticket.
      await redis.del(k('h', 20));
      await redis.hset(k('h', 20), 'b', '20', 'a', '1');
      const again = await reconciler(prefix, marked);
      for (const p of all) again.request(p, 'repair');
      await again.close();
      expect([...marked.keys()].sort()).to.deep.equal([...want].sort());
      expect(new Set(marked.values())).to.deep.equal(new Set(['repair']));
    });

    it('counts a divergence only when it stands through the grace period, and the index never goes back in seq', async () => {
      const prefix = randomPrefix();
      const keys = new Keys(prefix);
      const scripts = new Scripts(redis, keys);
      const key = Buffer.from(`${prefix}-k:one`);
      const partition = partitionOfSlot(keySlot(key), 271);
      await redis.set(key, 'final');
      const { digest } = await scripts.readValue(key);
      await scripts.recordTickets([{ partition, key, seq: '2000-0', digest }]);
      expect(await scripts.recordTickets([{ partition, key, seq: '1999-5', digest: 'stale' }])).to.equal(0);
      const [entry] = await new TicketIndex(redis, keys).lookup(partition, [key]);
      expect(entry).to.deep.equal({ seq: '2000-0', digest });

      const marked = new Map<string, string>();
      const r = await reconciler(prefix, marked, 200);
      expect(await r.reconcileOnce(all)).to.deep.equal([]);
      await redis.set(key, 'changed behind the workers');
      const found: Divergence[] = await r.reconcileOnce(all);
      expect(found.map((d) => d.key.toString())).to.deep.equal([key.toString()]);
      expect(found[0]!.indexed).to.deep.equal({ seq: '2000-0', digest });
      expect(marked.get(key.toString())).to.equal('reconcile');
    });

    if (mode === 'cluster') {
      it('counts the keys of only the slots of the partitions compared, however far apart they lie', async () => {
        const prefix = randomPrefix();
        const keyIn = (partition: number) => {
          for (let i = 0; ; i++) if (partitionOfSlot(keySlot(`${prefix}-k:${i}`), 271) === partition) return `${prefix}-k:${i}`;
        };
        const [first, last] = [keyIn(0), keyIn(270)];
        await redis.set(first, 'a');
        await redis.set(last, 'b');
        const counted = async () => {
          let calls = 0;
          for (const node of (redis as Cluster).nodes('master')) calls += Number(/^cmdstat_cluster\|countkeysinslot:calls=(\d+)/m.exec(await node.info('commandstats'))?.[1] ?? 0);
          return calls;
        };
        const before = await counted();
        const marked = new Map<string, string>();
        const r = await reconciler(prefix, marked);
        const found = await r.reconcileOnce([0, 270]);
        // Two partitions of 61 and 60 slots, not the 16,384 from the first one's to the last one's.
        expect((await counted()) - before).to.be.at.least(121).and.below(1000);
        expect(found.map((d) => d.key.toString()).sort()).to.deep.equal([first, last].sort());
      });

      it('lists and digests the keys of partitions compared together in one script call a node, not one a partition', async () => {
        // A cluster of its own: the shared one holds other tests' keys in these slots, which would
        // split the partitions into more groups, and other tests' script calls.
        const own = await startLocalRedis({ mode: 'cluster' });
        const target = await detectTarget(loadConfig({ TG_REDIS_URL: own.url }, []).redis);
        const client = connect(target);
        try {
          const prefix = randomPrefix();
          const partitions = Array.from({ length: 10 }, (_, p) => p);
          const wanted = new Set(partitions);
          const written: string[] = [];
          for (let i = 0; written.length < 30; i++) {
            const key = `${prefix}-k:${i}`;
            if (wanted.has(partitionOfSlot(keySlot(key), 271))) written.push(key);
          }
          for (const key of written) await client.set(key, 'v');
          const scriptCalls = async () => {
            let calls = 0;
            for (const node of (client as Cluster).nodes('master')) calls += [...(await node.info('commandstats')).matchAll(/^cmdstat_(?:evalsha_ro|eval_ro):calls=(\d+)/gm)].reduce((n, m) => n + Number(m[1]), 0);
            return calls;
          };
          const r = await offlineReconciler({ target, client, keys: new Keys(prefix), watch: `${prefix}-k:*`, partitions: 271, ratePerSecond: 0, graceMs: 0, markDirty: () => undefined });
          // Once to load the scripts (a first call may go twice: EVALSHA, then EVAL after NOSCRIPT).
          await r.reconcileOnce(partitions);
          const before = await scriptCalls();
          const found = await r.reconcileOnce(partitions);
          expect(found.map((d) => d.key.toString()).sort()).to.deep.equal([...written].sort());
          // Counts, listings, digests and the digests of the recheck: a call or so each for the ten
          // partitions' masters, where a call a partition would be twenty and more.
          expect((await scriptCalls()) - before).to.be.at.most(8);
        } finally {
          await client.quit();
          await own.stop();
        }
      });
    }
  });
}

describe('keyspace reads of a master that stops answering', function () {
  this.timeout(60000);
  let servers: LocalRedis | undefined;
  let node: LocalRedisNode | undefined;
  let frozen = false;
  let reads: KeyspaceReads | undefined;
  const name = () => `127.0.0.1:${node!.port}`;
  const firstSlots = () => reads!.slotCounts([{ first: 0, last: 2 }]);

  /** Reads of slot 0's master, answered once first: what follows is the fault, not a connection that never came. */
  async function readsOfSlot0(commandTimeoutMs?: number): Promise<void> {
    servers = await startLocalRedis({ mode: 'cluster' });
    node = await servers.masterOf(0);
    const target = await detectTarget(loadConfig({ TG_REDIS_URL: servers.url }, []).redis);
    reads = new KeyspaceReads(target, new Keys(randomPrefix()), name, commandTimeoutMs);
    expect((await firstSlots()).size).to.equal(3);
  }

  /** Stopped, not killed: the connection stays open and nothing on it is ever answered. */
  function freeze(): void {
    process.kill(node!.pid!, 'SIGSTOP');
    frozen = true;
  }

  afterEach(async () => {
    if (frozen) process.kill(node!.pid!, 'SIGCONT');
    frozen = false;
    reads?.close();
    await servers?.stop();
    [servers, node, reads] = [undefined, undefined, undefined];
  });

  it('fail after the command timeout instead of waiting for ever (a pass that fails is asked again on the topology as it is then)', async () => {
    await readsOfSlot0(500);
    freeze();
    expect(await outcomeWithin(firstSlots(), 10_000)).to.match(/timed out/i);
  });

  it('let go of a master that left the topology: a read waiting on it fails at once, whatever its timeout', async () => {
    await readsOfSlot0();
    freeze();
    const waiting = outcomeWithin(firstSlots(), 10_000);
    reads!.forget(name());
    expect(await waiting).to.match(/closed/i);
  });

  it('do not keep reads queued on a connection that closed: a read of a killed master fails, let go of or not', async () => {
    await readsOfSlot0();
    await node!.stop('SIGKILL');
    const waiting = outcomeWithin(firstSlots(), 10_000);
    // Let go of as its master leaves the topology: a connection waiting to reconnect kept the read queued for ever.
    reads!.forget(name());
    expect(await waiting).to.match(/closed|ECONNREFUSED/i);
  });
});
