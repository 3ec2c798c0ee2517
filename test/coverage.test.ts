/**
 * What a worker does with a partition taken over, by whether it kept its shadow buffer: the
 * decision alone, with a listener that has heard everything and a reconciler that records what
 * it is asked (no Redis is touched on this path).
 */
import { expect } from 'chai';
import { EventEmitter } from 'node:events';
import { Coverage } from '../lib/coverage.js';
import type { KeyspaceSubscriber } from '../lib/keyspace-subscriber.js';
import { Keys } from '../lib/keys.js';
import { silentLogger } from '../lib/logger.js';
import type { RedisClient } from '../lib/redis.js';
import type { Reconciler } from '../lib/reconciler.js';

function coverage() {
  const repairs: number[] = [];
  const appended: string[] = [];
  const subscriber = Object.assign(new EventEmitter(), { coveredSince: () => 0, heardUpTo: () => 0, nodeOfSlot: () => '127.0.0.1:1', status: () => [] });
  const c = new Coverage({
    workerId: 'w1',
    keys: new Keys('cov'),
    partitions: 271,
    leaseTtlMs: 3000,
    backfill: false,
    client: undefined as unknown as RedisClient,
    subscriber: subscriber as unknown as KeyspaceSubscriber,
    reconciler: { request: (p: number) => repairs.push(p) } as unknown as Reconciler,
    logger: silentLogger(),
    clockOffsetMs: 0,
    held: () => [],
    markDirty: (_p, key) => appended.push(key.toString()),
  });
  return { c, repairs, appended };
}

describe('coverage of a partition taken over', () => {
  it('settled, the worker kept nothing it heard of others: it compares the partition', () => {
    const { c, repairs, appended } = coverage();
    c.heard(5, Buffer.from('k1'), Buffer.from('set'));
    c.takenOver(5, { token: 2, now: Date.now(), previouslyCovered: Date.now() });
    expect(repairs).to.deep.equal([5]);
    expect(appended).to.deep.equal([]);
  });

  it('unsettled, it kept what it heard since: it appends that instead of comparing', () => {
    const { c, repairs, appended } = coverage();
    c.unsettled();
    // The previous owner's mark, in Redis ms; the replay starts a clock margin (1 s) before it.
    const mark = Date.now() + 1000;
    c.heard(5, Buffer.from('k1'), Buffer.from('set'));
    c.heard(5, Buffer.from('k2'), Buffer.from('del'));
    c.heard(6, Buffer.from('k3'), Buffer.from('set'));
    c.takenOver(5, { token: 2, now: Date.now(), previouslyCovered: mark });
    expect(repairs).to.deep.equal([]);
    expect(appended.sort()).to.deep.equal(['k1', 'k2']);
  });
});
