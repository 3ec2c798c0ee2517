/**
 * Connections to the project's Redis: one standalone server or a cluster, detected once
 * at start. Every connection retries with capped exponential backoff, so a Redis that
 * restarts is waited for rather than fatal.
 */
import { isUtf8 } from 'node:buffer';
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import type { RedisEndpoint, RedisSettings } from './config.js';
import { messageOf, RedisUnavailableError } from './errors.js';
import { groupBy, perGroup } from './group-by.js';
import { SLOT_COUNT } from './slots.js';

export type RedisClient = Redis | Cluster;

export interface RedisTarget {
  settings: RedisSettings;
  cluster: boolean;
}

/** Backoff of reconnection attempts: 50 ms doubling to 2 s. */
export function backoff(attempt: number): number {
  return Math.min(2000, 50 * 2 ** Math.min(attempt, 6));
}

export function nodeOptions(settings: RedisSettings, extra: RedisOptions = {}): RedisOptions {
  return {
    username: settings.username,
    password: settings.password,
    tls: settings.tls ? { ...settings.tlsFiles } : undefined,
    retryStrategy: backoff,
    ...extra,
  };
}

/** Longest wait for a seed's answer at start: a stalled process still takes connections. */
const PROBE_TIMEOUT_MS = 5000;

/**
 * Probes the first reachable seed: `cluster_enabled:1` means a cluster. With `up`, a seed whose
 * cluster says it is down (`cluster_state` other than ok) does not count as reachable.
 */
export async function detectTarget(settings: RedisSettings, opts: { up?: boolean } = {}): Promise<RedisTarget> {
  let lastError: unknown;
  let down = false;
  for (const seed of settings.seeds) {
    // Nothing is asked before INFO: ioredis's client info and ready check would each wait for a stalled seed.
    const probe = new Redis({ ...nodeOptions(settings), host: seed.host, port: seed.port, lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0, connectTimeout: PROBE_TIMEOUT_MS, commandTimeout: PROBE_TIMEOUT_MS, enableReadyCheck: false, disableClientInfo: true });
    // A failed TLS handshake only reaches the 'error' event; connect() then says "Connection is closed".
    let socketError: unknown;
    probe.on('error', (err: unknown) => (socketError ??= err));
    try {
      await probe.connect();
      const cluster = /cluster_enabled:1/.test(await probe.info('cluster'));
      const health = cluster && opts.up ? await clusterHealth(probe) : { state: 'ok', failing: [] };
      if (health.state === 'ok') return { settings, cluster };
      down = true;
      const failing = health.failing.length > 0 ? `; marked failing: ${health.failing.join(', ')}` : '';
      lastError = new Error(`cluster_state:${health.state} at ${seed.host}:${seed.port}${failing}`);
    } catch (err) {
      const silent = err instanceof Error && err.message === 'Command timed out';
      if (!down) lastError = socketError ?? (silent ? new Error(`${seed.host}:${seed.port} took the connection but did not answer within ${PROBE_TIMEOUT_MS / 1000} s`) : err);
    } finally {
      probe.disconnect();
    }
  }
  throw new RedisUnavailableError(settings.display, lastError, down);
}

/**
 * `cluster_state` as a node sees it, and the nodes it flags failing (`fail`, or `fail?` while it
 * alone suspects them), as `host:port (role)`. Ok where it does not say (a user denied CLUSTER
 * INFO, a server that does not report it): the commands themselves will tell then.
 */
async function clusterHealth(node: Redis): Promise<{ state: string; failing: string[] }> {
  let state: string;
  try {
    state = /cluster_state:(\w+)/.exec(String(await node.cluster('INFO')))?.[1] ?? 'ok';
  } catch (err) {
    if (String(err).includes('NOPERM')) return { state: 'ok', failing: [] };
    throw err;
  }
  if (state === 'ok') return { state, failing: [] };
  const lines = String(await node.cluster('NODES').catch(() => '')).trim().split('\n');
  const failing = lines.flatMap((line) => {
    const [, address, flags] = line.split(' ');
    const set = (flags ?? '').split(',');
    if (!address || !(set.includes('fail') || set.includes('fail?'))) return [];
    return [`${address.split('@')[0]} (${set.includes('master') ? 'master' : 'replica'}${set.includes('fail?') ? ', suspected' : ''})`];
  });
  return { state, failing };
}

/** Redis's clock, epoch ms (TIME). */
export async function serverTime(client: RedisClient): Promise<number> {
  const [s, us] = await client.time();
  return Number(s) * 1000 + Math.floor(Number(us) / 1000);
}

/** An answer not come, or come too late, within the time it was of use (counted as unanswered). */
export class LateAnswer extends Error {}

/**
 * Redis's clock minus this machine's, ms, as of the middle of the round trip: off by up to half of
 * it, so an answer after `maxRoundTripMs` (a master stalled meanwhile) is refused with a LateAnswer.
 */
export async function clockOffset(client: RedisClient, maxRoundTripMs = Infinity): Promise<number> {
  const sentAt = Date.now();
  const now = await serverTime(client);
  const receivedAt = Date.now();
  if (receivedAt - sentAt > maxRoundTripMs) throw new LateAnswer(`TIME answered after ${receivedAt - sentAt} ms, more than ${maxRoundTripMs} ms`);
  return now - (sentAt + receivedAt) / 2;
}

export interface ConnectOptions {
  /** BullMQ's blocking connections need requests that wait for reconnection forever. */
  maxRetriesPerRequest?: number | null;
  connectionName?: string;
  /** Batch the commands of one tick per node; off for BullMQ, whose blocking commands would hold a batch. */
  autoPipelining?: boolean;
  /**
   * Cluster only: whether the client also reads the slot map every 5 s, not only when Redis
   * answers MOVED or a connection closes. Each such read opens a connection of its own; one
   * client a worker doing it is enough.
   */
  periodicSlotsRefresh?: boolean;
  /** A command not answered within this many ms fails (ioredis waits for ever by default: a stalled master would hang the caller); 0: no limit. */
  commandTimeoutMs?: number;
}

/**
 * The one key-reading script sent without auto-pipelining: ioredis groups auto-pipelined
 * commands by the slot of their first argument taken as a UTF-8 string, so a key that is
 * not valid UTF-8 would join another node's batch and fail (lib/scripts.ts uses it then, and
 * for readers that check many keys at once).
 */
export const EXACT_KEY_READ = 'tg_readValueExact';

/**
 * ioredis routes an auto-pipelined command of a cluster by its first argument, which is no
 * key for these (the scripts of lua/ that take any number of keys start with the count):
 * pipelined, they would join another node's batch and fail.
 */
const NOT_AUTO_PIPELINED = ['xreadgroup', 'xread', 'xgroup', 'xinfo', 'xpending', 'cluster', 'config', 'info', 'time', EXACT_KEY_READ, 'tg_recordTickets', 'tg_appendTickets'];

/** The master that serves a slot as the client last learned it ('' standalone or when unknown). */
export function nodeOfSlot(client: RedisClient, slot: number): string {
  return client instanceof Cluster ? (client.slots[slot]?.[0] ?? '') : '';
}

/**
 * Reads a cluster client's slot map again (nothing standalone). A master frozen after its replica
 * took over sends no MOVED, only silence: a command that timed out says the map may be stale.
 */
export function refreshRouting(client: RedisClient): void {
  // Not once it quits: a read of the map then would connect again and keep the process alive.
  if (client instanceof Cluster && client.status !== 'end' && client.status !== 'disconnecting') client.refreshSlotsCache();
}

/**
 * Most time a command waits for its answer before the slot map is read again: Redis answers this
 * project's commands in milliseconds, and a master frozen before its replica took over never does.
 */
export const ANSWER_WAIT_MS = 2000;

/**
 * The reply of a command sent to the master serving `slot`, or a LateAnswer once it went unanswered
 * while the slot map, read again every ANSWER_WAIT_MS meanwhile, came to name another master for
 * that slot. What was sent to a frozen master waited out the whole command timeout even after its
 * replica took over (a stopping worker's drain missed its deadline on it); the caller now sends it
 * again where the map says. A master only slow keeps its command: nothing is sent to it twice.
 */
export function followFailover<T>(client: RedisClient, slot: number, reply: Promise<T>): Promise<T> {
  if (!(client instanceof Cluster)) return reply;
  const sentTo = nodeOfSlot(client, slot);
  let timer: NodeJS.Timeout | undefined;
  const replaced = new Promise<never>((_, reject) => {
    const look = (): void => {
      const now = nodeOfSlot(client, slot);
      if (now !== sentTo) return reject(new LateAnswer(`no answer from ${sentTo} within ${ANSWER_WAIT_MS} ms, and slot ${slot} is served by ${now || 'no known master'} now`));
      refreshRouting(client);
      timer = globalThis.setTimeout(look, ANSWER_WAIT_MS);
    };
    timer = globalThis.setTimeout(look, ANSWER_WAIT_MS);
  });
  return Promise.race([reply, replaced]).finally(() => clearTimeout(timer));
}

/**
 * `work`, with the slot maps of `clients` read again every ANSWER_WAIT_MS while it runs. ioredis drops
 * a node that its new map no longer lists, as a master frozen and replaced, and sends the commands
 * waiting on it where the new map says: a wait on such commands, BullMQ's included, ends soon after
 * the promotion instead of at their command timeout.
 */
export async function refreshingRoutes<T>(clients: readonly RedisClient[], work: Promise<T>): Promise<T> {
  const timer = setInterval(() => clients.forEach(refreshRouting), ANSWER_WAIT_MS);
  try {
    return await work;
  } finally {
    clearInterval(timer);
  }
}

/** Whether a command failed for want of an answer (timed out, answered too late, or its connection closed) rather than on Redis's refusal. */
export function unanswered(err: unknown): boolean {
  if (err instanceof LateAnswer) return true;
  const message = messageOf(err);
  return message.startsWith('Command timed out') || message.startsWith('Connection is closed');
}

/**
 * PUBLISH through the master serving `slot` (Redis Cluster passes a message on to every node
 * whichever receives it). Keyless, it would go to a random master: a frozen one held a balancing
 * look that awaited its offer for the whole command timeout. The caller names a slot whose master
 * just answered it.
 */
export function publishNear(client: RedisClient, slot: number, channel: string, message: string): Promise<number> {
  if (!(client instanceof Cluster)) return client.publish(channel, message);
  const name = nodeOfSlot(client, slot);
  const node = client.nodes('master').find((n) => nodeName(n) === name);
  return (node ?? client).publish(channel, message);
}

/**
 * Registers a script that only reads (flagged `no-writes`) so that it runs as EVALSHA_RO, and as
 * EVAL_RO after a NOSCRIPT: Redis checks the declared keys of EVAL and EVALSHA for write access,
 * so a least-privilege user with read-only access to the watched keys may call only the _RO forms.
 * ioredis 5's defineCommand has no such option (its `readOnly` only steers reads to replicas), so
 * the script's command class gets the _RO names; the rest (EVALSHA first, EVAL after NOSCRIPT,
 * auto-pipelining, cluster routing by the declared keys) stays ioredis's own.
 */
export function defineReadOnlyCommand(client: RedisClient, name: string, definition: { lua: string; numberOfKeys?: number }): void {
  client.defineCommand(name, definition);
  const script = (client as unknown as { scriptsSet: Record<string, { Command: new (...args: never[]) => object }> }).scriptsSet[name]!;
  const readOnly = class extends script.Command {};
  const names: Record<string, string> = { eval: 'eval_ro', evalsha: 'evalsha_ro' };
  // ioredis assigns `name` in the constructor and again when it swaps EVALSHA and EVAL.
  Object.defineProperty(readOnly.prototype, 'name', {
    get(this: { roName: string }) {
      return this.roName;
    },
    set(this: { roName: string }, value: string) {
      this.roName = names[value] ?? value;
    },
  });
  script.Command = readOnly;
}

/** Items grouped by the master that serves their slot, as far as the client knows (one group standalone). */
export function byNode<T>(client: RedisClient, items: Iterable<T>, slotOf: (item: T) => number): T[][] {
  return [...groupBy(items, (item) => nodeOfSlot(client, slotOf(item))).values()];
}

/**
 * One call a Redis node for the items it serves (`batch`: a reply per item, in order), item by
 * item (`single`) where a node's call is refused (a slot moved since the client last looked) or
 * its master was replaced while it went unanswered (followFailover): the replies in the items' order.
 */
export function perNode<T, R>(client: RedisClient, items: readonly T[], slotOf: (item: T) => number, batch: (group: T[]) => Promise<R[]>, single: (item: T) => Promise<R>): Promise<R[]> {
  return perGroup(
    items,
    (item) => nodeOfSlot(client, slotOf(item)),
    async (group) => {
      try {
        return await followFailover(client, slotOf(group[0]!), batch(group));
      } catch {
        return Promise.all(group.map(single));
      }
    },
  );
}

/** How often a cluster client with periodicSlotsRefresh reads the slot map. */
const SLOTS_REFRESH_MS = 5000;

/**
 * Reads the slot map every SLOTS_REFRESH_MS while the client is ready, on a timer that never keeps
 * the process alive and stops at the client's end. ioredis's own (slotsRefreshInterval) is armed
 * again by a read still in flight when quit() comes, and then reads for ever: a process that
 * quit as one was under way never exited (the demo's writer, about 1 run in 4 here).
 */
function readSlotsPeriodically(cluster: Cluster): void {
  const timer = setInterval(() => {
    if (cluster.status === 'ready') cluster.refreshSlotsCache();
  }, SLOTS_REFRESH_MS).unref();
  cluster.once('end', () => clearInterval(timer));
}

/** A command connection to the whole deployment (cluster-aware where needed). */
export function connect(target: RedisTarget, opts: ConnectOptions = {}): RedisClient {
  const base = nodeOptions(target.settings, {
    maxRetriesPerRequest: opts.maxRetriesPerRequest === undefined ? 20 : opts.maxRetriesPerRequest,
    connectionName: opts.connectionName,
    commandTimeout: opts.commandTimeoutMs || undefined,
  });
  if (target.cluster) {
    const options: ClusterOptions = {
      redisOptions: base,
      enableAutoPipelining: opts.autoPipelining ?? true,
      autoPipeliningIgnoredCommands: NOT_AUTO_PIPELINED,
      clusterRetryStrategy: backoff,
      // Read periodically below: ioredis's own timer is armed again by a read in flight when quit() comes.
      slotsRefreshInterval: 0,
      maxRedirections: 32,
      // ioredis's ready check sends CLUSTER INFO to a random master on each (re)connection, and a
      // frozen one held every command behind it for the command timeout. A worker's start has
      // checked the cluster's state already (detectTarget), and a refusal later is retried anyway.
      enableReadyCheck: false,
    };
    const cluster = new Cluster(target.settings.seeds.map((s) => ({ host: s.host, port: s.port })), options);
    if (opts.periodicSlotsRefresh !== false) readSlotsPeriodically(cluster);
    return cluster;
  }
  const seed = target.settings.seeds[0]!;
  return new Redis({ ...base, host: seed.host, port: seed.port, db: target.settings.db, enableAutoPipelining: opts.autoPipelining ?? true });
}

/** A connection to one node (a subscriber, or a per-master check). */
export function connectNode(target: RedisTarget, node: RedisEndpoint, extra: RedisOptions = {}): Redis {
  return new Redis({ ...nodeOptions(target.settings, extra), host: node.host, port: node.port, db: target.cluster ? 0 : target.settings.db });
}

export interface MasterNode extends RedisEndpoint {
  /** Slot ranges [first, last] it serves (all slots when standalone). */
  ranges: [number, number][];
}

/** Most time a topology read waits for one master before it asks the next. */
const TOPOLOGY_WAIT_MS = 2000;

/** Per cluster client: the master that answered its last topology read, asked first the next time. */
const lastAnswered = new WeakMap<Cluster, string>();

/** CLUSTER SLOTS: [first slot, last slot, [host, port, ...] of the master, then of each replica] a range. */
type SlotsReply = (readonly [number, number, ...(readonly [string, number, ...unknown[]])[]])[];

/**
 * The masters and the slots each serves, from CLUSTER SLOTS (the one server when standalone). The
 * masters the client knows are asked one after another, the last to answer first, each for at most
 * TOPOLOGY_WAIT_MS: sent as a keyless command, the read went to a random node, and a master frozen
 * after its replica took over held every third read for the whole command timeout (and, with the
 * client's slot map waiting on that read, everything the worker sent to its slots).
 */
export async function masters(client: RedisClient, target: RedisTarget): Promise<MasterNode[]> {
  if (!target.cluster) {
    const seed = target.settings.seeds[0]!;
    return [{ host: seed.host, port: seed.port, ranges: [[0, 16383]] }];
  }
  const cluster = client as Cluster;
  const known = cluster.nodes('master');
  if (known.length === 0) return fromSlots(await cluster.cluster('SLOTS'));
  const first = lastAnswered.get(cluster);
  const order = [...known].sort((a, b) => Number(nodeName(b) === first) - Number(nodeName(a) === first));
  const failures: string[] = [];
  for (const node of order) {
    try {
      const reply = await answerWithin(node.cluster('SLOTS'), TOPOLOGY_WAIT_MS);
      lastAnswered.set(cluster, nodeName(node));
      return fromSlots(reply);
    } catch (err) {
      failures.push(`${nodeName(node)}: ${(err as Error).message}`);
    }
  }
  throw new Error(`CLUSTER SLOTS answered by no master (${failures.join('; ')})`);
}

function nodeName(node: Redis): string {
  return endpointName(node.options as RedisEndpoint);
}

/** The reply, or a LateAnswer once `ms` pass without it (the command stays in flight). */
export function answerWithin<T>(reply: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = globalThis.setTimeout(() => reject(new LateAnswer(`no answer within ${ms} ms`)), ms)));
  return Promise.race([reply, late]).finally(() => clearTimeout(timer));
}

/** Most time a closing connection waits for its QUIT to be answered. */
const QUIT_GRACE_MS = 1000;

/**
 * Closes a connection: with QUIT when Redis answers it soon (what was sent before is answered
 * first), else by dropping it. A master frozen without closing its connections never answers, and
 * a graceful stop waited on it until its deadline.
 */
export function closeConnection(conn: Redis | Cluster): Promise<void> {
  return answerWithin(conn.quit(), QUIT_GRACE_MS).then(
    () => undefined,
    () => conn.disconnect(),
  );
}

function fromSlots(slots: SlotsReply): MasterNode[] {
  const byNode = new Map<string, MasterNode>();
  for (const [first, last, master] of slots) {
    const [host, port] = master!;
    const id = endpointName({ host, port });
    let node = byNode.get(id);
    if (!node) byNode.set(id, (node = { host, port, ranges: [] }));
    node.ranges.push([first, last]);
  }
  return [...byNode.values()].sort((a, b) => a.host.localeCompare(b.host) || a.port - b.port);
}

/** The master (`host:port`) serving each slot. */
export function slotNodes(nodes: readonly MasterNode[]): string[] {
  const bySlot = new Array<string>(SLOT_COUNT);
  for (const node of nodes) for (const [first, last] of node.ranges) bySlot.fill(endpointName(node), first, last + 1);
  return bySlot;
}

export function endpointName(node: RedisEndpoint): string {
  return `${node.host}:${node.port}`;
}

/**
 * A key or value as a command argument: a string when its bytes are valid UTF-8 (the same bytes
 * on the wire), else the Buffer. ioredis writes a batch of string commands in one socket write
 * but every Buffer argument in a write of its own: on the hot path that is most of a worker's
 * CPU.
 */
export function wireArg(bytes: Buffer): Buffer | string {
  return isUtf8(bytes) ? bytes.toString('utf8') : bytes;
}

type BufferCall = (...args: (string | number | Buffer)[]) => Promise<unknown>;

/**
 * A command whose reply keeps its bytes (keys of any content). ioredis generates
 * `<command>Buffer` for every command but types only some, and its generic `callBuffer`
 * loses the command name under auto-pipelining, so this is the one way to reach them.
 */
export function bufferCommand(client: RedisClient, command: string): BufferCall {
  const fn = (client as unknown as Record<string, BufferCall>)[`${command}Buffer`];
  if (typeof fn !== 'function') throw new Error(`ioredis has no ${command}Buffer`);
  return fn.bind(client);
}
