/** Ticket jobs on a real cluster: the worker that adds a job runs it. */
import { expect } from 'chai';
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

  it('runs a job on the worker that added it, the owner of its keys, not on whichever worker waits', async () => {
    const prefix = randomPrefix();
    const keys = new Keys(prefix);
    const config = testConfig(clusterUrl(), prefix, { TG_WATCH: `${prefix}-k:*` });
    workers.push(await startWorker(config), await startWorker(config));
    await waitFor(
      async () => {
        const leases = await readLeases(redis, keys, 271);
        const first = leases.filter((l) => l.owner === workers[0]!.id).length;
        return leases.every((l) => l.owner !== null) && first >= 135 && first <= 136;
      },
      { timeoutMs: 30000, what: 'the partitions split between the two workers' },
    );
    const made = () => workers.reduce((n, w) => n + w.snapshot().ticketsMade, 0);
    // Bursts one after the other: several jobs a worker, each added by one of them.
    for (let burst = 0; burst < 10; burst++) {
      const before = made();
      await Promise.all(Array.from({ length: 100 }, (_, i) => redis.set(`${prefix}-k:${burst}:${i}`, 'v')));
      await waitFor(() => made() >= before + 100, { timeoutMs: 20000, what: `the tickets of burst ${burst}` });
    }
    const owner = (await readLeases(redis, keys, 271)).map((l) => l.owner);
    const { latest } = await latestTickets(redis, keys);
    expect(latest.size).to.equal(1000);
    const byOwner = [...latest.values()].filter((t) => t.worker === owner[t.partition]).length;
    // Jobs left to BullMQ's blocking readers go to whichever worker waited longest: about half
    // would be made by the other worker. A job can still be taken by the other worker's look for
    // jobs it did not add, in the moment between its add and its owner's fetch.
    expect(byOwner / latest.size).to.be.at.least(0.9);
  });
});
