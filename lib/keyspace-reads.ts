/**
 * What a reconciliation reads of the keyspace itself, on the master serving each slot, over a
 * connection of its own to each: how many keys each slot holds, which keys, and digests of what
 * they hold (computed by Redis, so values never travel). Each read is one script call a node,
 * for all that partitions compared together ask in one turn (lib/tick-batch.ts): a sparse
 * keyspace holds a key or two a slot, and a command a slot was most of a pass's cost.
 * Standalone, there is one node and the keys are listed with SCAN.
 */
import type { Redis } from 'ioredis';
import { groupBy, perGroup } from './group-by.js';
import type { Keys } from './keys.js';
import { connectNode, type RedisTarget } from './redis.js';
import { Scripts } from './scripts.js';
import { keySlot } from './slots.js';
import { TickBatch } from './tick-batch.js';

/** Keys first asked of a slot (more when it holds more). */
const SLOT_PAGE = 1000;

export class KeyspaceReads {
  private readonly conns = new Map<string, { conn: Redis; scripts: Scripts }>();
  private readonly digestAsks = new TickBatch<Buffer, string>((keys) => this.digestNow(keys));
  private readonly listingAsks = new TickBatch<{ slot: number; count: number }, Buffer[]>((slots) => this.listNow(slots));

  constructor(
    private readonly target: RedisTarget,
    private readonly keys: Keys,
    /** The master serving a slot, as `host:port`. */
    private readonly nodeOfSlot: (slot: number) => string | undefined,
    /** Per read; 0 or none: no limit. */
    private readonly commandTimeoutMs?: number,
  ) {}

  /** Digests of keys ('' for a missing key), computed by the nodes that hold them, one call a node for the turn's asks. */
  digests(keys: readonly Buffer[]): Promise<string[]> {
    return this.digestAsks.call(keys);
  }

  private async digestNow(keys: readonly Buffer[]): Promise<string[]> {
    if (!this.target.cluster) return this.node(0).scripts.digestKeys(keys);
    return perGroup(keys, (key) => this.node(keySlot(key)), (group, { scripts }) => scripts.digestKeys(group));
  }

  /**
   * Keys in each slot of the ranges, own keys mostly not counted: one call a node for each run of
   * adjacent ranges. A worker's partitions need not be adjacent: counting from the lowest slot of
   * a step to its highest would count other workers' slots too.
   */
  async slotCounts(ranges: readonly { first: number; last: number }[]): Promise<Map<number, number>> {
    const out = new Map<number, number>();
    const runs: { first: number; last: number }[] = [];
    for (const r of [...ranges].sort((a, b) => a.first - b.first)) {
      const run = runs.at(-1);
      if (run !== undefined && r.first <= run.last + 1) run.last = Math.max(run.last, r.last);
      else runs.push({ ...r });
    }
    const slots = runs.flatMap(({ first, last }) => Array.from({ length: last - first + 1 }, (_, i) => first + i));
    await Promise.all(
      [...groupBy(slots, (slot) => this.node(slot))].flatMap(([{ scripts }, mine]) =>
        runs.map(async ({ first, last }) => {
          const inRun = mine.filter((slot) => slot >= first && slot <= last);
          if (inRun.length === 0) return;
          const low = inRun[0]!;
          const counts = await scripts.slotKeyCounts(low, inRun[inRun.length - 1]!);
          for (const slot of inRun) out.set(slot, counts[slot - low]!);
        }),
      ),
    );
    return out;
  }

  /**
   * Every key of each slot in [first, last] that `count` says holds any, one call a node for the
   * turn's asks. GETKEYSINSLOT has no cursor and keys keep arriving under load, so a slot whose
   * reply is full is asked again for twice as many until fewer come back.
   */
  async keysInSlots(first: number, last: number, count: (slot: number) => number): Promise<Buffer[][]> {
    const out: Buffer[][] = Array.from({ length: last - first + 1 }, () => []);
    const held: { slot: number; count: number }[] = [];
    for (let slot = first; slot <= last; slot++) if (count(slot) > 0) held.push({ slot, count: Math.max(SLOT_PAGE, count(slot)) });
    const lists = await this.listingAsks.call(held);
    await Promise.all(
      held.map(async ({ slot, count: asked }, i) => {
        let listed = lists[i]!;
        for (let want = asked * 2; listed.length >= want / 2; want *= 2) listed = (await this.node(slot).conn.callBuffer('CLUSTER', 'GETKEYSINSLOT', slot, want)) as Buffer[];
        out[slot - first] = listed;
      }),
    );
    return out;
  }

  private listNow(slots: readonly { slot: number; count: number }[]): Promise<Buffer[][]> {
    return perGroup(slots, ({ slot }) => this.node(slot), (group, { scripts }) => scripts.keysInSlots(group));
  }

  /** One SCAN page of a standalone server's keys matching the glob. */
  async scan(cursor: string, match: string, count: number): Promise<{ cursor: string; keys: Buffer[] }> {
    const [next, keys] = (await this.node(0).conn.scanBuffer(cursor, 'MATCH', match, 'COUNT', count)) as unknown as [Buffer, Buffer[]];
    return { cursor: next.toString(), keys };
  }

  /**
   * Closes the connection to a master that serves no slot any more: what waits on it fails now
   * (and its pass is asked again on the new topology) instead of at its timeout, or never.
   */
  forget(name: string): void {
    this.conns.get(name)?.conn.disconnect();
    this.conns.delete(name);
  }

  /** Closes the connections; the next read opens them again. */
  close(): void {
    for (const { conn } of this.conns.values()) conn.disconnect();
    this.conns.clear();
  }

  /** A connection to the master serving a slot, with the scripts on it. */
  private node(slot: number): { conn: Redis; scripts: Scripts } {
    const name = this.nodeOfSlot(slot);
    if (!name) throw new Error(`no master known for slot ${slot}`);
    let n = this.conns.get(name);
    // A connection that closed is not opened again by itself: what waited on it fails at once, and its
    // pass is asked again of the master serving the slot then. Reconnecting, it kept those reads
    // queued: let go of meanwhile (forget), it left them to its command timeout; reconnected to a
    // master restarted as a replica on the same port, it sent them there.
    if (!n || n.conn.status === 'end') {
      const at = name.lastIndexOf(':');
      const conn = connectNode(this.target, { host: name.slice(0, at), port: Number(name.slice(at + 1)) }, { retryStrategy: () => null, connectionName: 'tg-reconcile', commandTimeout: this.commandTimeoutMs || undefined });
      conn.on('error', () => undefined);
      n = { conn, scripts: new Scripts(conn, this.keys) };
      this.conns.set(name, n);
    }
    return n;
  }
}
