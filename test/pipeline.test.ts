/**
 * The whole data path of one worker on a real Redis, standalone and a 3-master cluster:
 * keyspace event -> dirty stream -> ticket job -> sink, with final values checked.
 */
import { expect } from 'chai';
import { keyId } from '../lib/coalescer.js';
import { nodeOfSlot, type RedisClient } from '../lib/redis.js';
import { keySlot, partitionOfSlot } from '../lib/slots.js';
import type { GeneratorWorker } from '../lib/worker.js';
import { clusterUrl, randomPrefix, standaloneUrl, waitFor } from './helpers/redis.js';
import { latestTickets, sinkKeys, sinkStreams } from '../lib/ticket-reader.js';
import { Keys } from '../lib/keys.js';
import { client, startWorker, testConfig, waitForFinal, type Expected } from './helpers/worker.js';
import { setGate } from './fixtures/gate-handler.js';
import { fileURLToPath } from 'node:url';

const GATE_HANDLER = fileURLToPath(new URL('./fixtures/gate-handler.js', import.meta.url));

for (const mode of ['standalone', 'cluster'] as const) {
  describe(`pipeline (${mode})`, function () {
    this.timeout(120000);
    let url: string;
    let redis: RedisClient;
    let prefix: string;
    let worker: GeneratorWorker | undefined;

    before(async () => {
      url = mode === 'cluster' ? clusterUrl() : standaloneUrl();
      redis = await client(url);
    });
    after(async () => {
      await redis.quit();
    });
    beforeEach(() => {
      prefix = randomPrefix();
    });
    afterEach(async () => {
      await worker?.stop();
      worker = undefined;
    });

    /** Watched test keys live under `<prefix>-k:` so parallel prefixes never see each other. */
    const watchOf = (p: string) => `${p}-k:*`;

    it('trims the sink to about TG_SINK_MAXLEN tickets when asked', async () => {
      worker = await startWorker(testConfig(url, prefix, { TG_WATCH: watchOf(prefix), TG_SINK_MAXLEN: '100' }));
      await Promise.all(Array.from({ length: 1000 }, (_, i) => redis.set(`${prefix}-k:trim:${i}`, 'v')));
      await waitFor(() => worker!.snapshot().ticketsMade >= 1000, { timeoutMs: 30000, what: '1,000 tickets made' });
      // MAXLEN ~ trims whole stream nodes (100 entries each by default): each of the sink's
      // streams (3 by default, about 333 tickets each) keeps about 100, never all it was sent.
      const streams = await sinkStreams(redis, prefix);
      expect(streams).to.have.length(3);
      for (const stream of streams) expect(await redis.xlen(stream)).to.be.within(100, 300);
    });

    it('tickets 2,000 keys over all slots with their final values', async () => {
      worker = await startWorker(testConfig(url, prefix, { TG_WATCH: watchOf(prefix) }));
      const expected: Expected = new Map();
      const covered = new Set<number>();
      const writes: Promise<unknown>[] = [];
      // At least 2,000 keys, and as many more as it takes to touch every partition (bounded).
      for (let i = 0; (i < 2000 || covered.size < 271) && i < 100000; i++) {
        const key = `${prefix}-k:${i}`;
        covered.add(partitionOfSlot(keySlot(key), 271));
        for (let v = 0; v < 3; v++) writes.push(redis.set(key, `v${v}-${i}`));
        expected.set(keyId(Buffer.from(key)), `v2-${i}`);
      }
      await Promise.all(writes);
      const { latest } = await waitForFinal(redis, prefix, expected);
      // Acknowledged entries are deleted: the dirty streams drain to empty.
      const keys = new Keys(prefix);
      await waitFor(async () => (await Promise.all(Array.from({ length: 271 }, (_, p) => redis.xlen(keys.dirty(p))))).every((n) => n === 0), {
        timeoutMs: 10000,
        what: 'empty dirty streams',
      });
      const partitions = new Set([...latest.values()].map((t) => t.partition));
      expect(partitions.size).to.equal(271);
      for (const t of latest.values()) {
        expect(t.slot).to.equal(keySlot(t.key));
        expect(t.partition).to.equal(partitionOfSlot(t.slot, 271));
        expect(t.worker).to.equal(worker.id);
        expect(t.event).to.equal('set');
        expect(t.type).to.equal('string');
        expect(t.id).to.have.length.greaterThan(0);
        expect(t.createdAt).to.be.at.least(t.dirtyAt);
        expect(t.seq).to.match(/^\d+-\d+$/);
      }
    });

    it('tickets deletes and expiries without a value, and other types as JSON', async () => {
      worker = await startWorker(testConfig(url, prefix, { TG_WATCH: watchOf(prefix) }));
      const k = (name: string) => `${prefix}-k:${name}`;
      await redis.set(k('gone'), 'x');
      await redis.set(k('expiring'), 'x');
      await redis.hset(k('hash'), 'a', '1', 'b', '2');
      await redis.rpush(k('list'), 'x', 'y');
      await redis.sadd(k('set'), 'q', 'p');
      await redis.zadd(k('zset'), 2, 'm');
      await redis.del(k('gone'));
      await redis.pexpire(k('expiring'), 20);
      const expected: Expected = new Map<string, string | null>([
        [k('gone'), null],
        [k('expiring'), null],
        [k('hash'), '{"a":"1","b":"2"}'],
        [k('list'), '["x","y"]'],
        [k('set'), '["p","q"]'],
        [k('zset'), '[["m",2]]'],
      ]);
      let { latest } = await waitForFinal(redis, prefix, expected);
      // A ticket read once the key had expired carries the pexpire's event; the expiry's own follows.
      await waitFor(async () => ({ latest } = await waitForFinal(redis, prefix, expected)).latest.get(k('expiring'))?.event === 'expired', { timeoutMs: 10000, what: "the expiry's ticket" });
      expect(latest.get(k('gone'))).to.include({ event: 'del', type: 'none' });
      expect(latest.get(k('expiring'))).to.include({ event: 'expired', type: 'none' });
      expect(latest.get(k('hash'))).to.include({ event: 'hset', type: 'hash' });
    });

    it('handles hash-tagged, binary and 1 KiB key names', async () => {
      worker = await startWorker(testConfig(url, prefix, { TG_WATCH: watchOf(prefix) }));
      const base = `${prefix}-k:`;
      const tagged = [`${base}{user42}.name`, `${base}{user42}.mail`];
      const binary = Buffer.concat([Buffer.from(base), Buffer.from([0x00, 0xff, 0xfe, 0x0a, 0x7b, 0x7d, 0x2a])]);
      const long = base + 'L'.repeat(1024);
      const expected: Expected = new Map();
      for (const key of tagged) {
        await redis.set(key, `val:${key}`);
        expected.set(keyId(Buffer.from(key)), `val:${key}`);
      }
      await redis.set(binary, Buffer.from([1, 2, 0, 255]));
      expected.set(keyId(binary), Buffer.from([1, 2, 0, 255]));
      await redis.set(long, 'long');
      expected.set(keyId(Buffer.from(long)), 'long');
      const { latest } = await waitForFinal(redis, prefix, expected);
      expect(latest.get(keyId(Buffer.from(tagged[0]!)))!.slot).to.equal(keySlot('user42'));
      expect(latest.get(keyId(binary))!.key.equals(binary)).to.equal(true);
      expect(latest.get(keyId(Buffer.from(long)))!.key.length).to.equal(Buffer.byteLength(long));
    });

    it("never tickets the project's own keys or BullMQ's", async () => {
      worker = await startWorker(testConfig(url, prefix, { TG_WATCH: '*' }));
      // Each own key shares a slot (and so a node and a subscriber connection) with a watched
      // sentinel written after it: once the sentinel's ticket is there, the own key's event was handled.
      const pairs = [
        [`${prefix}:{s1}:mine`, `{s1}${prefix}-sentinel`],
        [`${prefix}:{q}:tickets:fake`, `{q}${prefix}-sentinel`],
      ];
      const expected: Expected = new Map();
      for (const [own, sentinel] of pairs) {
        await redis.set(own!, 'x');
        await redis.set(sentinel!, 'done');
        expected.set(keyId(Buffer.from(sentinel!)), 'done');
      }
      const { latest } = await waitForFinal(redis, prefix, expected);
      const own = [...latest.values()].filter((t) => t.key.toString().startsWith(`${prefix}:`));
      expect(own.map((t) => t.key.toString())).to.deep.equal([]);
      // BullMQ and the lease keeper wrote constantly meanwhile, all under the prefix.
      expect(worker.stats.eventsReceived).to.be.greaterThan(pairs.length * 2);
      await Promise.all(pairs.map(([, s]) => redis.del(s!)));
    });

    it('coalesces 100 quick writes to one key into far fewer tickets, ending on the final value', async () => {
      worker = await startWorker(testConfig(url, prefix, { TG_WATCH: watchOf(prefix) }));
      const key = `${prefix}-k:burst`;
      await Promise.all(Array.from({ length: 100 }, (_, i) => redis.set(key, `v${i}`)));
      const { total } = await waitForFinal(redis, prefix, new Map([[key, 'v99']]));
      expect(total).to.be.at.most(10);
    });

    it('makes one ticket job of a burst of keys of 60 partitions appended together', async () => {
      // TG_FLUSH_KEYS above the burst: the keys wait TG_FLUSH_MAX_WAIT_MS (a second: the burst's
      // notifications come over tens of ms) and go in one append. Unpaced listeners: a paced one
      // appends right after each read, and a burst that straddles a read goes in two.
      worker = await startWorker(testConfig(url, prefix, { TG_WATCH: watchOf(prefix), TG_FLUSH_KEYS: '1000', TG_FLUSH_MAX_WAIT_MS: '1000', TG_LISTEN_PAUSE_MS: '0' }));
      // Partitions whose dirty streams live on one master: the append is one script call, so no
      // round the worker's own timers start (a sweep, a second look) can see part of it.
      const keys = new Keys(prefix);
      const home = nodeOfSlot(redis, keySlot(keys.dirty(0)));
      const byPartition = new Map<number, string>();
      for (let i = 0; byPartition.size < 60; i++) {
        const key = `${prefix}-k:burst:${i}`;
        const partition = partitionOfSlot(keySlot(key), 271);
        if (nodeOfSlot(redis, keySlot(keys.dirty(partition))) === home && !byPartition.has(partition)) byPartition.set(partition, key);
      }
      const made = worker.snapshot().ticketsMade;
      const jobs = worker.snapshot().ticketJobsEnqueued;
      await Promise.all([...byPartition.values()].map((key) => redis.set(key, 'v')));
      await waitFor(() => worker!.snapshot().ticketsMade >= made + 60, { timeoutMs: 30000, what: '60 tickets made' });
      // The append hands its partitions to the reader one by one: a reading round started at the
      // first would make a job of that partition's key alone, and a second job of the rest.
      expect(worker.snapshot().ticketJobsEnqueued - jobs).to.equal(1);
    });

    it('keeps the last update when the key changes while its ticket job is active (concurrency 8)', async () => {
      const key = `${prefix}-k:racing`;
      let release!: () => void;
      const released = new Promise<void>((r) => (release = r));
      let held = false;
      // The first ticket of the key is held in the sink until the test saw a later one written.
      setGate(async (tickets) => {
        if (!held && tickets.some((t) => t.key.toString() === key && t.value?.toString() === 'v1')) {
          held = true;
          await redis.set(key, 'v2');
          await released;
        }
      });
      try {
        worker = await startWorker(testConfig(url, prefix, { TG_WATCH: watchOf(prefix), TG_CONCURRENCY: '8', TG_HANDLER: GATE_HANDLER }));
        await redis.set(key, 'v1');
        await waitFor(
          async () => {
            const { latest } = await latestTickets(redis, new Keys(prefix));
            return latest.get(key)?.value?.toString() === 'v2';
          },
          { timeoutMs: 30000, intervalMs: 100, what: 'the ticket of v2 while the job of v1 is held' },
        );
        release();
        const keys = await sinkKeys(redis, prefix, 271);
        const stream = keys.tickets(keys.sinkShardOf(partitionOfSlot(keySlot(key), 271)));
        // Not the stream's length: v2 may be ticketed twice meanwhile (the first comparison of a partition
        // just covered finds its key ahead of the index), which is no ticket of v1.
        const values = async () => (await redis.xrange(stream, '-', '+')).map(([, fields]) => fields[fields.indexOf('value') + 1]);
        await waitFor(async () => (await values()).includes('v1'), { timeoutMs: 30000, intervalMs: 100, what: 'the held ticket of v1' });
        // The stale ticket was written after the one of v2, yet the greatest seq still names the final value.
        const written = await values();
        expect(written.indexOf('v1')).to.be.greaterThan(written.indexOf('v2'));
        expect(written.indexOf('v2')).to.be.at.least(0);
        await waitForFinal(redis, prefix, new Map([[key, 'v2']]));
      } finally {
        release();
        setGate(undefined);
      }
    });
  });
}
