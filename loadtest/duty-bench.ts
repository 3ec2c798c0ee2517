/**
 * `npm run bench:duty`: what this machine charges for work done in short bursts with idle time
 * between them, as a worker carrying a light share of the writes does. It runs a worker's own
 * in-process work for one batch of tickets (fold the dirty entries per key, encode the job, JSON
 * both ways as BullMQ does, decode it, format the values, build the sink's fields) back to back,
 * and with idle gaps between batches, interleaved over rounds. Per batch it reports the process's
 * CPU, its main thread's CPU (schedstat, in ns) and the wall time inside the batch, medians over
 * the rounds.
 *
 * Nothing here talks to Redis or a socket: what a gap adds to the same code is the machine's
 * (caches gone cold, a halted virtual CPU woken up, a timer's wake-up), not the network's. On a
 * machine that charges nothing for it, every gap costs what gap 0 does; the more a gap costs, the
 * more a lightly loaded worker pays a write against a busy one (BENCHMARKS.md, eleventh pass).
 *
 * node loadtest/duty-bench.js [--gaps 0,5,50] [--rounds 8] [--batches 100] [--keys 100]
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { nanoid } from 'nanoid';
import { coalesceEntries, type DirtyEntry } from '../lib/coalescer.js';
import { ticketFields, type Ticket } from '../lib/sink.js';
import { keySlot, partitionOfSlot } from '../lib/slots.js';
import { decodeItem, encodeItems, type TicketJobData } from '../lib/ticket-queue.js';
import { formatValue } from '../lib/values.js';
import { mainThreadNs } from './proc.js';
import { median } from './report.js';
import { benchArgs } from './args.js';

const { values: a, whole, wholeList } = benchArgs('node loadtest/duty-bench.js [--gaps 0,5,50] [--rounds 8] [--batches 100] [--keys 100]', {
  gaps: { type: 'string', default: '0,5,50' },
  rounds: { type: 'string', default: '8' },
  batches: { type: 'string', default: '100' },
  keys: { type: 'string', default: '100' },
});
const gaps = [...new Set(wholeList('gaps', a.gaps, 0, 1000))];
const rounds = whole('rounds', a.rounds, 1, 100);
const batches = whole('batches', a.batches, 10, 100000);
const keyCount = whole('keys', a.keys, 1, 100000);

const keys = Array.from({ length: keyCount }, (_, i) => Buffer.from(`status:${(i * 7919) % 1000003}`));
const value = Buffer.from('{"state":"ready","since":1764000000}');

/** One batch of a worker's in-process work, from dirty entries to the sink's fields; returns the fields' count so none of it is dead code. */
function batch(): number {
  const now = Date.now();
  const entries: DirtyEntry[] = keys.map((key, i) => ({ id: `${now}-${i}`, key, event: 'set', at: now }));
  const job = JSON.parse(JSON.stringify({ items: encodeItems(coalesceEntries(entries)) })) as TicketJobData;
  let fields = 0;
  for (const item of job.items.map(decodeItem)) {
    const slot = keySlot(item.key);
    const { type, value: v } = formatValue({ type: 'string', value });
    const ticket: Ticket = { id: nanoid(), key: item.key, event: item.event, type, value: v, digest: '', seq: item.seq, partition: partitionOfSlot(slot, 271), slot, worker: 'bench', dirtyAt: item.at, createdAt: Date.now() };
    fields += ticketFields(ticket).length;
  }
  return fields;
}

/** Per batch (µs): process CPU, main thread CPU, wall time inside the batch. */
async function measure(gapMs: number): Promise<[number, number, number]> {
  const cpu0 = process.cpuUsage();
  const main0 = mainThreadNs(process.pid);
  let inside = 0;
  for (let i = 0; i < batches; i++) {
    const start = performance.now();
    batch();
    inside += performance.now() - start;
    // Gap 0 still gives the event loop a turn, as a worker's next batch would.
    if (gapMs > 0) await sleep(gapMs);
    else await new Promise((r) => setImmediate(r));
  }
  const cpu = process.cpuUsage(cpu0);
  return [(cpu.user + cpu.system) / batches, (mainThreadNs(process.pid) - main0) / 1000 / batches, (inside * 1000) / batches];
}

// V8 compiles the batch's code once it is hot: the measured rounds start from there.
for (let i = 0; i < 2000; i++) batch();
const results = new Map<number, [number, number, number][]>(gaps.map((g) => [g, []]));
for (let round = 0; round < rounds; round++) for (const gap of gaps) results.get(gap)!.push(await measure(gap));
const first = gaps[0]!;
const base = median(results.get(first)!.map((r) => r[0]));
for (const gap of gaps) {
  const r = results.get(gap)!;
  const [cpu, main, inside] = [0, 1, 2].map((i) => median(r.map((x) => x[i]!)));
  process.stdout.write(
    `gap ${gap} ms: ${cpu!.toFixed(0)} µs process CPU a batch (${(cpu! / base).toFixed(2)} × gap ${first}), main thread ${main!.toFixed(0)} µs, inside the batch ${inside!.toFixed(0)} µs wall; medians of ${rounds} rounds of ${batches} batches of ${keyCount} keys\n`,
  );
}
