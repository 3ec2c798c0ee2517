/** Ticket jobs on a real cluster: fetched without blocking reads, by the worker that adds them. */
import { expect } from 'chai';
import type { Cluster } from 'ioredis';
import { Keys } from '../lib/keys.js';
import { readLeases } from '../lib/lease-keeper.js';
import type { RedisClient } from '../lib/redis.js';
import { latestTickets } from '../lib/ticket-reader.js';
import type { GeneratorWorker } from '../lib/worker.js';
import { clusterUrl, randomPrefix, waitFor } from './helpers/redis.js';
import { client, startWorker, testConfig } from './helpers/worker.js';

describe('ticket jobs (cluster)', function () {
  this.timeout(120000);
  let redis: RedisClient;
  const workers: GeneratorWorker[] = [];
  before(async () => {
    redis = await client(clusterUrl());
  });
  after(async () => {
    await Promise.all(workers.map((w) => w.stop()));
    await redis.quit();
  });

  it('makes every job without a blocking read of the queue: no connection of the workers waits on its marker', async () => {
    const prefix = randomPrefix();
    const keys = new Keys(prefix);
    const config = testConfig(clusterUrl(), prefix, { TG_WATCH: `${prefix}-k:*` });
    workers.push(await startWorker(config), await startWorker(config));
    await waitFor(async () => (await readLeases(redis, keys, 271)).every((l) => l.owner !== null), { timeoutMs: 30000, what: 'every partition owned' });
    const made = () => workers.reduce((n, w) => n + w.snapshot().ticketsMade, 0);
    // Bursts one after the other: several jobs a worker.
    for (let burst = 0; burst < 10; burst++) {
      const before = made();
      await Promise.all(Array.from({ length: 100 }, (_, i) => redis.set(`${prefix}-k:${burst}:${i}`, 'v')));
      await waitFor(() => made() >= before + 100, { timeoutMs: 20000, what: `the tickets of burst ${burst}` });
    }
    expect((await latestTickets(redis, keys)).latest.size).to.equal(1000);
    // BullMQ names the connections of a queue shard `<prefix>:{q<i>.<n>}:...`. Its own loop would
    // leave one of them a shard waiting in BZPOPMIN on the queue's marker (blocked for seconds),
    // and each job would wake one of them for nothing.
    const lists = await Promise.all((redis as Cluster).nodes('master').map((n) => n.client('LIST') as Promise<string>));
    const queueConnections = lists.flatMap((l) => l.split('\n')).filter((line) => line.includes(` name=${prefix}:{q`));
    expect(queueConnections.length).to.be.greaterThan(0);
    expect(queueConnections.filter((line) => / cmd=bzpopmin /.test(line) || / flags=\S*b/.test(line))).to.deep.equal([]);
  });
});
