/** Reading values through the Lua script on a real cluster, keys of any bytes included. */
import { expect } from 'chai';
import { Keys } from '../lib/keys.js';
import type { Cluster } from 'ioredis';
import type { RedisClient } from '../lib/redis.js';
import { Scripts } from '../lib/scripts.js';
import { StreamSink, ticketFields, type Ticket } from '../lib/sink.js';
import { partitionOfSlot } from '../lib/slots.js';
import { nodeOfSlot } from '../lib/redis.js';
import { keySlot } from '../lib/slots.js';
import { withFrozenMaster } from './helpers/frozen-master.js';
import { clusterUrl, outcomeWithin, randomPrefix } from './helpers/redis.js';
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

  it('reads many keys one call a node, each as a single read would: every type, missing and non-UTF-8 keys, a hash-tagged pair', async () => {
    const prefix = randomPrefix();
    const scripts = new Scripts(redis, new Keys(prefix));
    const k = (name: string) => Buffer.from(`${prefix}-k:${name}`);
    const keys = [...Array.from({ length: 60 }, (_, i) => k(`s${i}`)), k('hash'), k('list'), k('set'), k('zset'), k('missing'), Buffer.from(`${prefix}-k:{tag}a`), Buffer.from(`${prefix}-k:{tag}b`), Buffer.concat([k('bin'), Buffer.from([0xff])])];
    for (let i = 0; i < 60; i++) await redis.set(keys[i]!, `v${i}`);
    await redis.hset(k('hash'), 'f', '1', 'g', '2');
    await redis.rpush(k('list'), 'a', 'b');
    await redis.sadd(k('set'), 'x', 'y');
    await redis.zadd(k('zset'), 1, 'm');
    await redis.set(keys[65]!, 'tagged a');
    await redis.set(keys[66]!, 'tagged b');
    await redis.set(keys[67]!, 'binary');
    const scriptCalls = async () => {
      let calls = 0;
      for (const node of (redis as Cluster).nodes('master')) calls += [...(await node.info('commandstats')).matchAll(/^cmdstat_(?:evalsha_ro|eval_ro):calls=(\d+)/gm)].reduce((n, m) => n + Number(m[1]), 0);
      return calls;
    };
    const before = await scriptCalls();
    const many = await scripts.readValues(keys);
    // One call a master for the UTF-8 keys (a first one may be sent twice: EVALSHA, then EVAL after NOSCRIPT), one for the other key.
    expect((await scriptCalls()) - before).to.be.at.most(7);
    const single = await Promise.all(keys.map((key) => scripts.readValue(key)));
    expect(many).to.deep.equal(single);
    expect(many[64]).to.deep.equal({ type: 'none', digest: '', value: undefined });
    expect(many.slice(60, 64).map((r) => r.type)).to.deep.equal(['hash', 'list', 'set', 'zset']);
  });

  it('counts the keys of a slot range without the project\'s own where a slot holds few, so an idle pass lists no slot', async () => {
    const keys = new Keys(randomPrefix());
    const nodeOf = (slot: number) => {
      const [host, port] = nodeOfSlot(redis, slot).split(':');
      return (redis as Cluster).nodes('master').find((n) => n.options.host === host && n.options.port === Number(port))!;
    };
    // An empty slot: earlier tests left keys in most slots of the shared cluster.
    let tag = '';
    for (let i = 0; i < 5000 && !tag; i++) if ((await nodeOf(keySlot(`{${keys.prefix}.${i}}`)).cluster('COUNTKEYSINSLOT', keySlot(`{${keys.prefix}.${i}}`))) === 0) tag = `{${keys.prefix}.${i}}`;
    expect(tag, 'an empty slot').to.not.equal('');
    const slot = keySlot(tag);
    const scripts = new Scripts(nodeOf(slot) as unknown as RedisClient, keys);
    const counts = () => scripts.slotKeyCounts(slot, slot).then((c) => c[0]);
    await redis.hset(`${keys.prefix}:${tag}:lease`, 'owner', 'w');
    await redis.set(`${keys.prefix}:${tag}:token`, 1);
    await redis.xadd(`${keys.prefix}:${tag}:dirty`, '*', 'k', 'v');
    expect(await counts()).to.equal(0);
    // A watched key in the same slot is counted, the own ones beside it still not.
    await redis.set(`${tag}${keys.prefix}-k`, 'v');
    expect(await counts()).to.equal(1);
    // Past 8 keys the slot is counted whole: the pass lists it and filters what it lists.
    await Promise.all(Array.from({ length: 5 }, (_, i) => redis.set(`${keys.prefix}:${tag}:x${i}`, 'v')));
    expect(await counts()).to.equal(9);
  });

  it('lists the keys of many slots and digests keys of many slots of one node in one call each, as slot by slot would', async () => {
    const prefix = randomPrefix();
    await redis.ping();
    const keys = Array.from({ length: 40 }, (_, i) => Buffer.from(`${prefix}-k:${i}`));
    const node = nodeOfSlot(redis, keySlot(keys[0]!));
    const mine = keys.filter((k) => nodeOfSlot(redis, keySlot(k)) === node);
    expect(new Set(mine.map((k) => keySlot(k))).size, 'slots of one node').to.be.greaterThan(3);
    await Promise.all(mine.slice(1).map((k, i) => redis.set(k, `v${i}`)));
    await redis.hset(mine[0]!, 'f', '1');
    const [host, port] = node.split(':');
    const conn = (redis as Cluster).nodes('master').find((n) => n.options.host === host && n.options.port === Number(port))!;
    const scripts = new Scripts(conn as unknown as RedisClient, new Keys(prefix));
    const calls = async () => [...(await conn.info('commandstats')).matchAll(/^cmdstat_(?:evalsha_ro|eval_ro|evalsha|eval):calls=(\d+)/gm)].reduce((n, m) => n + Number(m[1]), 0);
    // Twice each, the first may be sent twice (EVALSHA, then EVAL after NOSCRIPT).
    await scripts.keysInSlots([{ slot: keySlot(mine[0]!), count: 1 }]);
    await scripts.digestKeys([mine[0]!]);
    const slots = [...new Set(mine.map((k) => keySlot(k)))];
    const before = await calls();
    const lists = await scripts.keysInSlots(slots.map((slot) => ({ slot, count: 1000 })));
    const digests = await scripts.digestKeys([...mine, Buffer.from(`${prefix}-k:missing`)].filter((k) => nodeOfSlot(redis, keySlot(k)) === node));
    expect((await calls()) - before).to.equal(2);
    for (const [i, slot] of slots.entries()) {
      const alone = (await conn.callBuffer('CLUSTER', 'GETKEYSINSLOT', slot, 1000)) as Buffer[];
      expect(lists[i]!.map(String).sort()).to.deep.equal(alone.map(String).sort());
      expect(lists[i]!.filter((k) => k.toString().startsWith(`${prefix}-k:`)).map(String).sort()).to.deep.equal(mine.filter((k) => keySlot(k) === slot).map(String).sort());
    }
    const reads = await Promise.all(mine.map((k) => new Scripts(redis, new Keys(prefix)).readValue(k)));
    expect(digests.slice(0, mine.length)).to.deep.equal(reads.map((r) => r.digest));
    expect(digests.slice(0, mine.length).every((d) => d !== '')).to.equal(true);
    // The count bounds each list.
    const bounded = await scripts.keysInSlots(slots.map((slot) => ({ slot, count: 1 })));
    expect(bounded.every((l) => l.length <= 1)).to.equal(true);
  });

  it('appends to, reads, claims and acknowledges the dirty streams of one node in one call each, and refuses streams of two nodes', async () => {
    const keys = new Keys(randomPrefix());
    const scripts = new Scripts(redis, keys);
    await redis.ping();
    const node = (p: number) => nodeOfSlot(redis, keySlot(keys.dirty(p)));
    const same = Array.from({ length: 271 }, (_, p) => p).filter((p) => node(p) === node(0)).slice(0, 4);
    const other = Array.from({ length: 271 }, (_, p) => p).find((p) => node(p) !== node(0))!;
    for (const p of [...same, other]) await redis.xgroup('CREATE', keys.dirty(p), 'owner', '0', 'MKSTREAM');
    const dirty = (p: number) => Array.from({ length: 3 }, (_, i) => ({ key: Buffer.from(`key${p}:${i}`), event: 'set', at: 1000 + i }));
    const fields = { key: 'k', event: 'e', at: 't' };
    // The new entries' ids come back, per stream in order: what an owner enqueues without reading back.
    const ids = await scripts.appendDirty(fields, same.slice(0, 3).map((p) => ({ partition: p, dirty: dirty(p) })));
    expect(ids.map((i) => i.length)).to.deep.equal([3, 3, 3]);
    const read = await scripts.readDirty(same, 'owner', 'me', 2);
    expect(read.map((entries) => entries.length)).to.deep.equal([2, 2, 2, 0]);
    read.slice(0, 3).forEach((entries, i) => expect(entries.map(([id]) => id.toString())).to.deep.equal(ids[i]!.slice(0, 2)));
    expect(read[0]![0]![1].map(String)).to.deep.equal(['k', `key${same[0]}:0`, 'e', 'set', 't', '1000']);
    // Read but not acknowledged (a round that failed, an owner that stopped): another consumer claims them.
    const claimed = await scripts.claimDirty(same, 'owner', 'next', 10);
    expect(claimed.map((entries) => entries.map(([id]) => id.toString()))).to.deep.equal([...read.slice(0, 3).map((entries) => entries.map(([id]) => id.toString())), []]);
    const acked = await scripts.ackDirties('owner', same.slice(0, 3).map((p, i) => ({ partition: p, ids: read[i]!.map(([id]) => id.toString()) })));
    expect(acked).to.equal(6);
    // Acknowledged entries are deleted: one entry left in each stream read.
    for (const p of same.slice(0, 3)) expect(await redis.xlen(keys.dirty(p))).to.equal(1);
    for (const call of [() => scripts.readDirty([same[0]!, other], 'owner', 'me', 2), () => scripts.claimDirty([same[0]!, other], 'owner', 'me', 2), () => scripts.appendDirty(fields, [same[0]!, other].map((p) => ({ partition: p, dirty: dirty(p) })))]) {
      let refused: unknown;
      await call().catch((err: unknown) => (refused = err));
      expect(String(refused)).to.match(/non local key|slot/i);
    }
  });

  it('appends exactly the sink contract\'s fields, value or none, any key bytes, and records each ticket in the index', async () => {
    const keys = new Keys(randomPrefix());
    const sink = new StreamSink(new Scripts(redis, keys), keys);
    const ticket = (key: Buffer, value: Ticket['value'], type: string, worker: string): Ticket => {
      const slot = keySlot(key);
      return { id: `id-${key.toString('hex')}`, key, event: 'set', type, value, digest: value === undefined ? '' : 'd1', seq: '1700000000000-3', partition: partitionOfSlot(slot, 271), slot, worker, dirtyAt: 1700000000001, createdAt: 1700000000002 };
    };
    // A handler may pass on tickets of two workers, values of any bytes, empty values and none.
    const tickets = [
      ticket(Buffer.from('k:text'), Buffer.from('v'), 'string', 'w1'),
      ticket(Buffer.from([0x6b, 0xff, 0x00]), Buffer.from([0xfe, 0x00]), 'string', 'w1'),
      ticket(Buffer.from('k:empty'), Buffer.alloc(0), 'string', 'w2'),
      ticket(Buffer.from('k:hash'), '{"f":"1"}', 'hash', 'w2'),
      ticket(Buffer.from('k:gone'), undefined, 'none', 'w1'),
    ];
    await sink.write(tickets);
    const written = new Map<string, Buffer[]>();
    for (const stream of keys.sinkStreams()) for (const [, fields] of (await redis.xrangeBuffer(stream, '-', '+')) as [Buffer, Buffer[]][]) written.set(fields[1]!.toString(), fields);
    expect(written.size).to.equal(tickets.length);
    for (const t of tickets) {
      const want = ticketFields(t).map((f) => (Buffer.isBuffer(f) ? f : Buffer.from(String(f))));
      expect(written.get(t.id)!.map((b) => b.toString('hex'))).to.deep.equal(want.map((b) => b.toString('hex')));
      const indexed = (await redis.hgetBuffer(keys.index(t.partition), t.key))!.toString();
      expect(indexed).to.equal(`${t.seq} ${t.digest}`);
    }
  });
});

describe('scripts while a master is frozen and its replica takes over', function () {
  this.timeout(60000);

  it('reads values one call a node and appends tickets, answered by the replica that took over, not after the command timeout', async () => {
    const prefix = randomPrefix();
    const keys = new Keys(prefix);
    const stream = keys.tickets(0);
    await withFrozenMaster(keySlot(stream), 60000, async ({ redis, replicated, freeze, promote }) => {
      await redis.exists(stream);
      const node = nodeOfSlot(redis, keySlot(stream));
      // Two keys on that master whose tickets go to sink shard 0 (its stream, and their index, live there too).
      const names: Buffer[] = [];
      for (let i = 0; names.length < 2 && i < 100000; i++) {
        const key = Buffer.from(`${prefix}-k:${i}`);
        if (nodeOfSlot(redis, keySlot(key)) === node && keys.sinkShardOf(partitionOfSlot(keySlot(key), 271)) === 0) names.push(key);
      }
      expect(names).to.have.length(2);
      for (const key of names) await redis.set(key, 'v');
      await replicated();
      const scripts = new Scripts(redis, keys);
      const slot = keySlot(names[0]!);
      const ticket = { key: names[0]!, seq: '1700000000000-1', digest: 'd', id: 'id1', event: 'set', type: 'string', value: 'v', partition: partitionOfSlot(slot, 271), slot, dirtyAt: 1, createdAt: 2 };
      freeze();
      const reads = outcomeWithin(scripts.readValues(names).then((r) => r.map((v) => `${v.type} ${String(v.value)}`).join(', ')), 20000);
      const appended = outcomeWithin(scripts.appendTickets(0, 'w', [ticket], null), 20000);
      await promote();
      // A read is sent again at once; a ticket job's append fails, and the job is retried.
      expect(await reads).to.equal('string v, string v');
      expect(String(await appended)).to.match(/^Error: no answer from \S+ within \d+ ms, and slot \d+ is served by \S+ now$/);
      expect(await scripts.appendTickets(0, 'w', [ticket], null)).to.equal(1);
      expect(await redis.xlen(stream)).to.equal(1);
    });
  });
});
