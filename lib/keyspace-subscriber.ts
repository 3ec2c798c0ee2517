/**
 * Keyspace ingest: one subscriber connection on every master (keyspace notifications
 * are emitted only by the node that owns the key, only to its own clients), following
 * the cluster topology. A node counts as covered only once Redis confirmed its
 * pattern subscription; a dropped connection uncovers it until it is confirmed again.
 */
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import type { Cluster, Redis } from 'ioredis';
import { EvictionPolicyError, NotificationsDisabledError, NotificationsUncheckedError } from './errors.js';
import { evictionRisk, type EvictionAnswer } from './eviction.js';
import type { Logger } from './logger.js';
import { missingFlags, withRequiredFlags } from './notifications.js';
import { ReadPacer } from './read-pacing.js';
import { closeConnection, connectNode, endpointName, masters, type MasterNode, type RedisClient, type RedisTarget } from './redis.js';
import { SLOT_COUNT } from './slots.js';

export type KeyspaceHandler = (key: Buffer, event: Buffer) => void;

export interface SubscriberOptions {
  target: RedisTarget;
  /** Command connection, for the topology; its slot map is refreshed when it differs from the topology read. */
  client: RedisClient;
  /** Other cluster clients whose slot maps are kept in line with the topology the same way (the queue's). */
  followers?: RedisClient[];
  watch: string;
  configureNotifications: boolean;
  /** Read notify-keyspace-events and the eviction policy on every master before listening (TG_CHECK_NOTIFICATIONS). */
  checkNotifications: boolean;
  /** What a maxmemory-policy that could evict the system's keys does (TG_EVICTION_POLICY). */
  evictionPolicy: EvictionAnswer;
  logger: Logger;
  onEvent: KeyspaceHandler;
  /** How often the topology is read again. */
  refreshIntervalMs?: number;
  /**
   * How often each subscribed connection is pinged to learn what it has heard; none: only when
   * ping() is called (the worker pings as each lease renewal starts, the reader of the watermark).
   */
  pingIntervalMs?: number;
  /** How long the connections stop reading after a chunk received, asked as a pause starts (lib/read-pacing.ts: one clock for all of them); 0: not paced. */
  readPause: () => number;
  /** Called once the events that came during a pause have been handled, with the time of the next paced read (ms; 0: none is due, reads go on as events come). */
  afterPausedRead?: (nextReadAt: number) => void;
}

interface NodeSubscription {
  name: string;
  conn: Redis;
  confirmed: boolean;
  /**
   * Epoch ms (local) at which the last answered PING was sent. Redis queues the pong behind
   * every notification already published to the connection, so every event before this time
   * was received: the connection's heard-up-to watermark.
   */
  heardAt: number;
  pinging: boolean;
  /** Epoch ms of the last confirmation. */
  confirmedAt: number;
  /** Epoch ms when the subscription was lost; null while confirmed or before the first one. */
  downSince: number | null;
  /** Let go because no partition of this worker needs it: its close is no loss. */
  detached: boolean;
}

/** Whether a cluster client sends each master's slots where this topology says they are (each range's ends checked). */
function routesAs(client: Cluster, topology: readonly MasterNode[]): boolean {
  return topology.every((node) => node.ranges.every(([first, last]) => client.slots[first]?.[0] === endpointName(node) && client.slots[last]?.[0] === endpointName(node)));
}

/**
 * Listens on the masters it is told to want (every master until told otherwise): keyspace
 * events cannot be filtered by slot, so a worker listens only where its partitions live.
 *
 * Emits 'confirmed' (node name, gapSince: epoch ms or null) whenever a node's subscription is
 * confirmed, gapSince telling since when events may have been missed; 'dropped' (node name,
 * epoch ms of its last heard-up-to watermark) when a confirmed one is lost; and 'appeared'
 * (node name, epoch ms since when it may have served unheard) when a master new since the
 * start shows in the topology (a failover, a resharding), wanted or not; and 'left' (node name)
 * when a master it knew serves no slot any more.
 */
export class KeyspaceSubscriber extends EventEmitter {
  private readonly nodes = new Map<string, NodeSubscription>();
  /** Index into nodeNames of the master serving each slot, -1 when unknown. */
  private readonly slotNode = new Int32Array(SLOT_COUNT).fill(-1);
  private nodeNames: string[] = [];
  private topology: MasterNode[] = [];
  /** 1 for each slot whose events are wanted; null: every master's. */
  private wantedSlots: Uint8Array | null = null;
  private readonly channelPrefixLength: number;
  private readonly pattern: string;
  private timer: NodeJS.Timeout | undefined;
  private pinger: NodeJS.Timeout | undefined;
  private stopped = false;
  private refreshing: Promise<void> | undefined;
  /** The start's subscriptions: settled once each master is confirmed or let go of. */
  private firstAttach: Promise<void> | undefined;
  private readonly pacer: ReadPacer;

  constructor(private readonly opts: SubscriberOptions) {
    super();
    this.pacer = new ReadPacer(opts.readPause, opts.afterPausedRead);
    const db = opts.target.cluster ? 0 : opts.target.settings.db;
    const channelPrefix = `__keyspace@${db}__:`;
    this.channelPrefixLength = Buffer.byteLength(channelPrefix);
    this.pattern = channelPrefix + opts.watch;
  }

  /**
   * Subscribes on every master; resolves once each is confirmed or has left the topology. Throws
   * when notifications are off (the subscriber is stopped then).
   */
  async start(): Promise<void> {
    await this.refresh(true);
    this.timer = setInterval(() => {
      this.refresh(false).catch((err) => this.opts.logger.warn('topology refresh failed', { err: String(err) }));
    }, this.opts.refreshIntervalMs ?? 5000);
    if (this.opts.pingIntervalMs !== undefined) this.pinger = setInterval(() => this.ping(), this.opts.pingIntervalMs);
    // Waited for with the topology read on meanwhile: a master frozen at the start never answers,
    // and only a later read, once its replica took over, lets go of it.
    try {
      await this.firstAttach;
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  /** When the paused connections read next (ms; 0: none is paused). */
  get nextReadAt(): number {
    return this.pacer.nextTickAt;
  }

  /** True when the master serving the slot has a confirmed subscription. */
  coversSlot(slot: number): boolean {
    const i = this.slotNode[slot]!;
    return i >= 0 && this.nodes.get(this.nodeNames[i]!)?.confirmed === true;
  }

  /** The master serving a slot (`host:port`). */
  nodeOfSlot(slot: number): string | undefined {
    const i = this.slotNode[slot]!;
    return i >= 0 ? this.nodeNames[i] : undefined;
  }

  /** Epoch ms since which every slot in [first, last] has been covered without a break; Infinity when one is not. */
  coveredSince(first: number, last: number): number {
    let since = 0;
    for (let s = first; s <= last; s++) {
      const sub = this.nodes.get(this.nodeOfSlot(s) ?? '');
      if (!sub?.confirmed) return Infinity;
      since = Math.max(since, sub.confirmedAt);
    }
    return since;
  }

  /** True when every slot in [first, last] is covered. */
  coversRange(first: number, last: number): boolean {
    for (let s = first; s <= last; s++) if (!this.coversSlot(s)) return false;
    return true;
  }

  /** Masters currently subscribed to, whether each is confirmed, and since when (local ms) it heard nothing new. */
  status(): { node: string; confirmed: boolean; heardAt: number }[] {
    return [...this.nodes.values()].map((n) => ({ node: n.name, confirmed: n.confirmed, heardAt: n.heardAt }));
  }

  /**
   * Local epoch ms up to which every event of the slots in [first, last] was received: the
   * oldest watermark of their masters (0 when one was never heard).
   */
  heardUpTo(first: number, last: number): number {
    let upTo = Infinity;
    let previous = -2;
    for (let s = first; s <= last; s++) {
      const i = this.slotNode[s]!;
      if (i === previous) continue;
      previous = i;
      upTo = Math.min(upTo, this.nodes.get(this.nodeNames[i] ?? '')?.heardAt ?? 0);
    }
    return upTo === Infinity ? 0 : upTo;
  }

  /** Pings every confirmed connection not pinged already; its answer moves the connection's watermark. */
  ping(): void {
    for (const sub of this.nodes.values()) {
      if (!sub.confirmed || sub.pinging) continue;
      sub.pinging = true;
      const sentAt = Date.now();
      sub.conn
        .ping()
        .then(() => {
          if (sub.confirmed) sub.heardAt = Math.max(sub.heardAt, sentAt);
        })
        .catch(() => undefined)
        .finally(() => (sub.pinging = false));
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    clearInterval(this.pinger);
    await this.refreshing?.catch(() => undefined);
    // Cleared first: a start still waiting on a subscription is let go of with it.
    const subs = [...this.nodes.values()];
    this.nodes.clear();
    await Promise.all(subs.map((n) => closeConnection(n.conn)));
  }

  private refresh(initial: boolean): Promise<void> {
    if (!this.refreshing) {
      this.refreshing = this.doRefresh(initial).finally(() => (this.refreshing = undefined));
    }
    return this.refreshing;
  }

  private async doRefresh(initial: boolean): Promise<void> {
    const current = await masters(this.opts.client, this.opts.target);
    if (this.stopped) return;
    // The command clients keep no timer of their own (each of their refreshes opens a connection):
    // they learn a moved slot from this read, besides the MOVED replies they follow anyway. Until each
    // routes as this read says: a refresh asked while one was under way is dropped, and a master frozen
    // after a failover sends no MOVED, only silence.
    if (!initial && this.opts.target.cluster) {
      for (const c of [this.opts.client, ...(this.opts.followers ?? [])]) if (!routesAs(c as Cluster, current)) (c as Cluster).refreshSlotsCache();
    }
    const known = new Set(this.nodeNames);
    this.topology = current;
    this.nodeNames = current.map(endpointName);
    this.slotNode.fill(-1);
    current.forEach((node, i) => {
      for (const [first, last] of node.ranges) this.slotNode.fill(i, first, last + 1);
    });
    const present = new Set(this.nodeNames);
    for (const [name, sub] of this.nodes) {
      if (!present.has(name)) {
        this.opts.logger.info('master left the topology; unsubscribing', { node: name });
        this.nodes.delete(name);
        sub.conn.disconnect();
      }
    }
    for (const name of known) if (!present.has(name)) this.emit('left', name);
    if (!initial) {
      // It served its slots for up to two topology periods before this worker saw it.
      const since = Date.now() - 2 * (this.opts.refreshIntervalMs ?? 5000);
      for (const name of this.nodeNames) if (!known.has(name)) this.emit('appeared', name, since);
    }
    // Only the start waits for its subscriptions; none holds up the next topology read.
    const attaching = this.attachWanted(initial);
    if (initial) {
      this.firstAttach = attaching;
      attaching.catch(() => undefined);
    } else attaching.catch((err: unknown) => this.opts.logger.warn('keyspace subscription failed', { err: String(err) }));
  }

  /**
   * Listens on exactly the masters serving these slots (1 in `slots`), now and after every
   * topology change.
   */
  want(slots: Uint8Array): void {
    this.wantedSlots = slots;
    this.attachWanted(false).catch((err: unknown) => this.opts.logger.warn('keyspace subscription failed', { err: String(err) }));
  }

  /** Names of the masters serving a wanted slot; null: all. */
  private wantedNodes(): Set<string> | null {
    if (this.wantedSlots === null) return null;
    const names = new Set<string>();
    for (let slot = 0; slot < SLOT_COUNT; slot++) {
      if (this.wantedSlots[slot] !== 1) continue;
      const i = this.slotNode[slot]!;
      if (i >= 0) names.add(this.nodeNames[i]!);
    }
    return names;
  }

  /** Attaches the wanted masters of the topology not attached yet; lets go of the others. */
  private async attachWanted(initial: boolean): Promise<void> {
    if (this.stopped) return;
    const nodes = this.wantedNodes();
    const wanted = (name: string) => nodes === null || nodes.has(name);
    for (const [name, sub] of this.nodes) {
      if (wanted(name)) continue;
      sub.detached = true;
      this.nodes.delete(name);
      this.opts.logger.debug('keyspace subscription no longer needed', { node: name });
      sub.conn.disconnect();
    }
    const added = this.topology.filter((node) => wanted(endpointName(node)) && !this.nodes.has(endpointName(node)));
    await Promise.all(added.map((node) => this.attach(node, initial)));
  }

  /** Connects to one master; resolves on its first confirmed subscription. */
  private attach(node: MasterNode, initial: boolean): Promise<void> {
    const name = endpointName(node);
    const conn = connectNode(this.opts.target, node, {
      lazyConnect: true,
      autoResubscribe: false,
      maxRetriesPerRequest: null,
      connectionName: 'tg-keyspace',
    });
    const sub: NodeSubscription = { name, conn, confirmed: false, confirmedAt: 0, downSince: null, detached: false, heardAt: 0, pinging: false };
    this.nodes.set(name, sub);
    conn.on('pmessageBuffer', (_pattern: Buffer, channel: Buffer, message: Buffer) => {
      this.opts.onEvent(channel.subarray(this.channelPrefixLength), message);
    });
    conn.on('error', (err: Error) => this.opts.logger.debug('keyspace subscriber error', { node: name, err: err.message }));
    conn.on('close', () => {
      if (sub.confirmed && !this.stopped && !sub.detached) {
        sub.confirmed = false;
        // Events after the last answered ping may have been lost with the connection's buffers.
        sub.downSince = sub.heardAt || sub.confirmedAt;
        this.opts.logger.warn('keyspace subscription lost', { node: name, heardUpTo: sub.downSince, lostMs: Date.now() - sub.downSince });
        this.emit('dropped', name, sub.downSince);
      }
    });

    return new Promise<void>((resolve, reject) => {
      let first = true;
      // Let go of (not wanted, or gone from the topology) before its first subscription: nothing to wait for any more.
      conn.on('end', () => {
        if (first && (sub.detached || this.nodes.get(name) !== sub)) {
          first = false;
          resolve();
        }
      });
      conn.on('ready', () => {
        this.pacer.pace(conn.stream as Socket);
        this.subscribe(sub)
          .then(() => {
            if (first) resolve();
            first = false;
          })
          .catch((err: unknown) => {
            if (first && initial && (err instanceof NotificationsDisabledError || err instanceof NotificationsUncheckedError || err instanceof EvictionPolicyError)) {
              first = false;
              reject(err);
              return;
            }
            this.opts.logger.error('keyspace subscription failed; retrying on reconnect', { node: name, err: String(err) });
            // A fresh connection retries the whole check once the node or its setting is fixed.
            setTimeout(() => conn.disconnect(true), 1000).unref();
          });
      });
      conn.connect().catch(() => undefined);
    });
  }

  private async subscribe(sub: NodeSubscription): Promise<void> {
    if (this.opts.checkNotifications) await this.checkNode(sub);
    const sentAt = Date.now();
    await sub.conn.psubscribe(this.pattern);
    sub.confirmed = true;
    sub.confirmedAt = sentAt;
    sub.heardAt = sentAt;
    const gapSince = sub.downSince;
    sub.downSince = null;
    this.opts.logger.info('keyspace subscription confirmed', { node: sub.name, pattern: this.pattern });
    this.emit('confirmed', sub.name, gapSince);
  }

  /** The master's notification flags (set where allowed) and its eviction policy. */
  private async checkNode(sub: NodeSubscription): Promise<void> {
    let settings: Map<string, string>;
    try {
      const flat = (await sub.conn.config('GET', 'notify-keyspace-events', 'maxmemory', 'maxmemory-policy')) as string[];
      settings = new Map(flat.flatMap((v, i) => (i % 2 === 0 ? [[v, flat[i + 1]!] as const] : [])));
    } catch (err) {
      if (String(err).includes('NOPERM')) throw new NotificationsUncheckedError(sub.name, String(err));
      throw err;
    }
    const policy = settings.get('maxmemory-policy') ?? '';
    const risk = evictionRisk(settings.get('maxmemory') ?? '0', policy);
    if (risk !== null) {
      if (this.opts.evictionPolicy === 'refuse') throw new EvictionPolicyError(sub.name, policy, risk);
      this.opts.logger.warn('maxmemory-policy could evict the system\'s keys; noeviction is safe (TG_EVICTION_POLICY=refuse stops instead)', { node: sub.name, policy, risk });
    }
    const flags = settings.get('notify-keyspace-events') ?? '';
    const missing = missingFlags(flags);
    if (missing === '') return;
    if (!this.opts.configureNotifications) throw new NotificationsDisabledError(sub.name, flags, missing);
    await sub.conn.config('SET', 'notify-keyspace-events', withRequiredFlags(flags));
    this.opts.logger.info('enabled keyspace notifications', { node: sub.name, was: flags });
  }
}
