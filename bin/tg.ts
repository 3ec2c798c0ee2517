#!/usr/bin/env node
/**
 * `tg` (npx tg …): the operators' view of a running cluster.
 *
 *   tg info [--json]            members, partitions per member, leases, backlog, queue, tickets/s
 *   tg list [worker] [--json]   partitions and slot ranges each worker owns
 *   tg lookup <key> [--json]    slot, partition, owning worker and Redis node of a key
 *   tg events [--json]          follow membership and migration events (Ctrl-C ends)
 *   tg reconcile [--partition P] [--json] [--repair]
 *                               compare Redis with what the tickets say; --repair appends
 *                               what differs to the dirty streams so the owners ticket it
 *
 * Redis and the prefix come from the workers' settings (TG_REDIS_URL, TG_PREFIX,
 * TG_PARTITIONS, or the same --flags).
 */
import { clusterInfo, lookupKey, slotRanges } from '../lib/cluster-info.js';
import { setTimeout } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { loadConfig, settingOptions } from '../lib/config.js';
import { ConfigError, RedisUnavailableError } from '../lib/errors.js';
import { parseEvent } from '../lib/events.js';
import { Keys } from '../lib/keys.js';
import { sinkKeys } from '../lib/ticket-reader.js';
import { appendDirty } from '../lib/dirty-writer.js';
import { offlineReconciler, printableKey } from '../lib/reconciler.js';
import { connect, detectTarget, type RedisClient } from '../lib/redis.js';

const USAGE = `usage: tg <command> [--json] [--redis-url URL] [--prefix P] [--partitions N]
  info              members, partitions per member, leases, backlog, queue depth, tickets/s
  list [worker]     partitions and slot ranges owned (by one worker, or each)
  lookup <key>      slot, partition, owning worker and Redis node of a key
                    (a key starting with '-' after a --: tg lookup -- -key)
  events            follow membership and migration events until Ctrl-C
  reconcile [--partition P] [--repair]
                    one pass comparing Redis with the ticket index (what differs after
                    TG_RECONCILE_GRACE_MS); read-only unless --repair, which appends what
                    differs to the dirty streams for the owners to ticket`;

/** Longest wait for one answer of Redis: a stalled master would otherwise hang every command that needs it. */
const ANSWER_TIMEOUT_MS = 10_000;

// A reader that stops early (| head) is no error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => process.exit(err.code === 'EPIPE' ? 0 : 1));

function fail(message: string, code: number): never {
  process.stderr.write(`tg: ${message}\n`);
  process.exit(code);
}

const settings = settingOptions();
let parsed;
try {
  parsed = parseArgs({ options: { ...settings, json: { type: 'boolean' }, repair: { type: 'boolean' }, partition: { type: 'string' }, help: { type: 'boolean' } }, allowPositionals: true, strict: true, tokens: true });
} catch (err) {
  fail(`${(err as Error).message.split('. ')[0]!}\n${USAGE}`, 2);
}
const { values, positionals, tokens } = parsed;
const json = values.json === true;
const repair = values.repair === true;
const onlyPartition = values.partition as string | undefined;
// The workers' settings go on to the configuration, which checks them.
const flags = tokens.flatMap((t) => (t.kind === 'option' && t.name in settings ? [t.value === undefined ? t.rawName : `${t.rawName}=${t.value}`] : []));
const [command, arg] = positionals;
if (!command || command === 'help' || values.help === true) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(command ? 0 : 2);
}
if (!['info', 'list', 'lookup', 'events', 'reconcile'].includes(command)) fail(`unknown command '${command}'\n${USAGE}`, 2);
if (command === 'lookup' && (arg === undefined || arg === '')) fail('lookup needs a key: tg lookup <key>', 2);

let config;
try {
  config = loadConfig({ ...process.env, TG_CONNECT_TIMEOUT_MS: '0' }, flags);
} catch (err) {
  if (err instanceof ConfigError) fail(err.message, 2);
  throw err;
}
const keys = new Keys(config.prefix);
let partitions = Array.from({ length: config.partitions }, (_, p) => p);
if (onlyPartition !== undefined) {
  const p = Number(onlyPartition);
  if (command !== 'reconcile') fail('--partition goes with reconcile', 2);
  if (!/^\d+$/.test(onlyPartition ?? '') || p >= config.partitions) fail(`--partition: '${onlyPartition ?? ''}' is not a partition (0..${config.partitions - 1})`, 2);
  partitions = [p];
}

let target;
try {
  // A cluster that says it is down answers nothing but CLUSTERDOWN: say so, and which masters it marks failing.
  target = await detectTarget(config.redis, { up: true });
} catch (err) {
  if (err instanceof RedisUnavailableError) fail(err.message, 1);
  throw err;
}
const client: RedisClient = connect(target, { commandTimeoutMs: ANSWER_TIMEOUT_MS });
client.on('error', () => undefined);
const noAnswer = `Redis did not answer within ${ANSWER_TIMEOUT_MS / 1000} s (a master stalled, failing or unreachable)`;
// A cluster client holds its commands, with no timeout, until the cluster says it is up.
if (client.status !== 'ready') {
  const ready = await Promise.race([new Promise<boolean>((resolve) => client.once('ready', () => resolve(true))), setTimeout(ANSWER_TIMEOUT_MS, false, { ref: false })]);
  if (!ready) fail(noAnswer, 1);
}

const ms = (v: number | null) => (v === null ? '-' : v < 10000 ? `${v} ms` : `${(v / 1000).toFixed(0)} s`);
const pad = (rows: string[][]) => {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n');
};

try {
  if (command === 'lookup') {
    const loc = await lookupKey(client, target, keys, config.partitions, arg!);
    if (json) process.stdout.write(`${JSON.stringify(loc)}\n`);
    else process.stdout.write(`${pad([['key', loc.key], ['slot', String(loc.slot)], ['partition', String(loc.partition)], ['owner', loc.owner ?? '(none)'], ['token', String(loc.token ?? '-')], ['redis node', loc.node]])}\n`);
  } else if (command === 'info') {
    const info = await clusterInfo(client, keys, config.partitions, config.queueShards);
    if (json) process.stdout.write(`${JSON.stringify(info)}\n`);
    else {
      const members = [['worker', 'partitions', 'age', 'heartbeat', 'host', 'pid'], ...info.members.map((m) => [m.id, String(m.partitions), ms(m.ageMs), ms(m.heartbeatAgeMs), m.host ?? '-', String(m.pid ?? '-')])];
      const tokens = info.leases.filter((l) => l.owner).map((l) => l.token);
      const ages = info.leases.filter((l) => l.ageMs !== null).map((l) => l.ageMs!);
      process.stdout.write(
        `prefix ${info.prefix}: ${info.members.length} members, ${info.partitions} partitions, ${info.unowned.length} unowned${info.unowned.length ? ` (${info.unowned.slice(0, 20).join(', ')}${info.unowned.length > 20 ? ', …' : ''})` : ''}\n\n` +
          `${pad(members)}\n\n` +
          `lease tokens ${tokens.length ? `${Math.min(...tokens)}..${Math.max(...tokens)}` : '-'}, lease ages ${ages.length ? `${ms(Math.min(...ages))}..${ms(Math.max(...ages))}` : '-'}\n` +
          `dirty backlog ${info.dirtyBacklog}, ticket jobs ${Object.entries(info.queue).map(([k, v]) => `${k} ${v}`).join(', ')}\n` +
          `tickets ${info.ticketsTotal} in the sink, ${info.ticketsPerSecond.toFixed(1)}/s lately\n`,
      );
    }
  } else if (command === 'reconcile') {
    const appended: Promise<unknown>[] = [];
    const reconciler = await offlineReconciler({
      target,
      client,
      // The index lives where the workers' sink layout puts it, whatever this shell's TG_SINK_SHARDS says.
      keys: await sinkKeys(client, config.prefix, config.partitions),
      watch: config.watch,
      partitions: config.partitions,
      ratePerSecond: 0,
      graceMs: config.reconcileGraceMs,
      markDirty: (p, key, event) => void (repair && appended.push(appendDirty(client, keys, p, { key, event, at: Date.now() }))),
    });
    process.stderr.write(`comparing ${partitions.length} partition(s) with the ticket index; differences are checked again after ${config.reconcileGraceMs} ms\n`);
    const found = await reconciler.reconcileOnce(partitions);
    await Promise.all(appended);
    const rows = found.map((d) => ({ partition: d.partition, key: printableKey(d.key), indexedSeq: d.indexed?.seq ?? null, exists: d.digest !== '' }));
    if (json) process.stdout.write(`${JSON.stringify({ partitions: partitions.length, keysCompared: reconciler.stats.keysCompared, differ: rows, repaired: repair })}\n`);
    else {
      process.stdout.write(`${partitions.length} partition(s), ${reconciler.stats.keysCompared} keys compared, ${rows.length} differ from their newest ticket${repair && rows.length ? ' (appended to the dirty streams)' : ''}\n`);
      if (rows.length > 0) process.stdout.write(`${pad([['partition', 'key', 'newest ticket seq', 'in redis'], ...rows.map((r) => [String(r.partition), r.key, r.indexedSeq ?? '(none)', r.exists ? 'yes' : 'no'])])}\n`);
    }
  } else if (command === 'list') {
    const info = await clusterInfo(client, keys, config.partitions, config.queueShards);
    const owners = [...new Set(info.leases.map((l) => l.owner).filter((o): o is string => o !== null))].sort();
    if (arg !== undefined && !owners.includes(arg) && !info.members.some((m) => m.id === arg)) fail(`no worker '${arg}' (members: ${info.members.map((m) => m.id).join(', ') || 'none'})`, 1);
    const listed = (arg ? [arg] : owners).map((owner) => {
      const owned = info.leases.filter((l) => l.owner === owner).map((l) => l.partition);
      return { worker: owner, partitions: owned.length, ranges: slotRanges(owned, config.partitions) };
    });
    if (json) process.stdout.write(`${JSON.stringify(listed)}\n`);
    else
      for (const w of listed) {
        process.stdout.write(`${w.worker}: ${w.partitions} partitions\n`);
        for (const r of w.ranges) process.stdout.write(`  partitions ${r.partitions[0]}-${r.partitions[1]}  slots ${r.slots[0]}-${r.slots[1]}\n`);
      }
  } else {
    const sub = client.duplicate();
    sub.on('error', () => undefined);
    sub.on('message', (_c: string, m: string) => {
      if (json) process.stdout.write(`${m}\n`);
      else {
        const e = parseEvent(m);
        if (!e) return void process.stderr.write(`ignored a malformed event: ${m.slice(0, 200)}\n`);
        const at = new Date(e.at).toISOString().slice(11, 23);
        if (e.type === 'moved') process.stdout.write(`${at} moved   partition ${e.partition} ${e.from ?? '(free)'} -> ${e.to} token ${e.token} (${e.how})\n`);
        else if (e.type === 'joined') process.stdout.write(`${at} joined  ${e.worker}\n`);
        else process.stdout.write(`${at} left    ${e.worker} (${e.reason})\n`);
      }
    });
    await sub.subscribe(keys.eventsChannel());
    // On stderr, so that --json output stays clean; it also tells scripts the subscription is live.
    process.stderr.write(`following ${keys.eventsChannel()} (Ctrl-C ends)\n`);
    const end = () => void sub.quit().then(() => client.quit()).then(() => process.exit(0));
    process.once('SIGINT', end);
    process.once('SIGTERM', end);
    await new Promise(() => undefined);
  }
  await client.quit();
} catch (err) {
  const message = err instanceof Error ? err.message : String(err);
  fail(message === 'Command timed out' ? noAnswer : message, 1);
}
