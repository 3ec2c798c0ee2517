/**
 * The load writer, a process of its own so the load does not compete with the test's
 * controller: writes a bounded mix of sets, hash writes, deletes and expiries at a steady
 * rate for a bounded time, then writes the final state of every key as JSON.
 *
 * node loadtest/writer.js --url URL --prefix P --out FILE [--rate N] [--duration-ms MS] [--keys K] [--value-size B] [--writes N] [--tolerate-failures]
 */
import { writeFileSync } from 'node:fs';
import { loadConfig } from '../lib/config.js';
import { connect, detectTarget } from '../lib/redis.js';
import { benchArgs } from './args.js';
import type { FinalState, WriterResult } from './expectations.js';

const { values: a, whole, number, required } = benchArgs('node loadtest/writer.js --url URL --prefix P --out FILE [--rate 1000] [--duration-ms 10000] [--keys 2000] [--value-size 32] [--writes N] [--tolerate-failures]', {
  url: { type: 'string' },
  prefix: { type: 'string' },
  rate: { type: 'string', default: '1000' },
  'duration-ms': { type: 'string', default: '10000' },
  keys: { type: 'string', default: '2000' },
  'value-size': { type: 'string', default: '32' },
  writes: { type: 'string' },
  out: { type: 'string' },
  // Under failover chaos writes fail while a replica takes over; Redis, not this file, then says what is final.
  'tolerate-failures': { type: 'boolean', default: false },
});

const url = required('url', a.url);
const out = required('out', a.out);
const rate = whole('rate', a.rate, 1);
const durationMs = number('duration-ms', a['duration-ms'], 1);
const keyCount = whole('keys', a.keys, 1);
const valueSize = whole('value-size', a['value-size'], 1);
const maxWrites = a.writes === undefined ? Math.round((rate * durationMs) / 1000) : whole('writes', a.writes, 1);
const prefix = required('prefix', a.prefix);

/** Every tenth key carries a hash tag so several keys share a slot, as real data often does. */
function keyName(i: number): string {
  return i % 10 === 0 ? `${prefix}-k:{grp${i % 70}}:${i}` : `${prefix}-k:${i}`;
}

const target = await detectTarget(loadConfig({ ...process.env, TG_REDIS_URL: url }, []).redis);
// Without auto-pipelining every command reaches its node in the order it was issued, so the
// final state recorded here is the one Redis holds (a MULTI would otherwise overtake a queued SET).
const redis = connect(target, { autoPipelining: false });
const keys: Record<string, FinalState> = {};
const padding = 'x'.repeat(Math.max(0, valueSize - 24));
let writes = 0;
let failures = 0;
const startedAt = Date.now();
const inFlight = new Set<Promise<unknown>>();

function writeOne(): void {
  const i = Math.floor(Math.random() * keyCount);
  const key = keyName(i);
  const now = Date.now();
  const roll = Math.random();
  const stamp = `${now}:${writes}`;
  let op: Promise<unknown>;
  let state: FinalState;
  if (roll < 0.7) {
    state = { kind: 'string', value: `${stamp}:${padding}`, writtenAt: now };
    op = redis.set(key, state.value);
  } else if (roll < 0.85) {
    const fields = { at: String(now), n: String(writes), pad: padding };
    state = { kind: 'hash', fields, writtenAt: now };
    // Replace the whole hash atomically (same key, one slot): its final fields are then known.
    op = redis.multi().del(key).hset(key, fields).exec();
  } else if (roll < 0.95) {
    // Deleting a key that never existed changes nothing: Redis emits no event for it.
    state = { kind: 'gone', writtenAt: now, existed: keys[key] !== undefined && (keys[key].kind !== 'gone' || keys[key].existed) };
    op = redis.del(key);
  } else {
    state = { kind: 'gone', writtenAt: now, existed: true };
    op = redis.set(key, `${stamp}:${padding}`, 'PX', 30);
  }
  keys[key] = state;
  writes++;
  const p = op.catch(() => {
    failures++;
  });
  inFlight.add(p);
  void p.finally(() => inFlight.delete(p));
}

// Progress for the controller: cumulative writes, twice a second.
const progress = setInterval(() => process.stdout.write(`${JSON.stringify({ writes })}\n`), 500);

// Ticks of 10 ms, each catching up with the schedule, so the rate holds under jitter.
await new Promise<void>((resolve) => {
  const timer = setInterval(() => {
    const due = Math.min(maxWrites, Math.floor(((Date.now() - startedAt) * rate) / 1000));
    while (writes < due && inFlight.size < 5000) writeOne();
    if (writes >= maxWrites || Date.now() - startedAt > durationMs * 3) {
      clearInterval(timer);
      resolve();
    }
  }, 10);
});
await Promise.all(inFlight);
clearInterval(progress);
process.stdout.write(`${JSON.stringify({ writes })}\n`);
const result: WriterResult = { prefix, writes, startedAt, endedAt: Date.now(), keys };
writeFileSync(out, JSON.stringify(result));
await redis.quit();
if (failures > 0) {
  process.stderr.write(`${failures} writes failed\n`);
  if (!a['tolerate-failures']) process.exit(1);
}
