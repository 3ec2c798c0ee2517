/**
 * Local Redis servers for development, tests and the load test: a standalone server or
 * an N-master cluster (optionally with replicas, so a test can kill a master and watch a
 * failover) of `redis-server` processes on free loopback ports, with keyspace
 * notifications on. It stops exactly the processes it started, by pid.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ConnectionOptions as TlsOptions } from 'node:tls';
import { Redis } from 'ioredis';
import { REQUIRED_CLASSES } from './notifications.js';
import { SLOT_COUNT } from './slots.js';

export interface LocalRedisOptions {
  mode: 'cluster' | 'standalone';
  /** Masters of a cluster (default 3). */
  masters?: number;
  /** Replicas of each master (default 0); cluster mode only. */
  replicas?: number;
  /** notify-keyspace-events; '' disables them. */
  notifications?: string;
  /** Keep data across a node's stop and start (append-only file). */
  appendonly?: boolean;
  /** Where the servers keep their files; a fresh temporary folder by default. */
  dir?: string;
  redisServer?: string;
  redisCli?: string;
  /** TLS only (no plain port), clients must show a certificate the CA signed; cluster bus and replication over TLS too. PEM file paths. */
  tls?: { ca: string; cert: string; key: string };
}

export interface LocalRedisNode {
  readonly port: number;
  readonly pid: number | undefined;
  readonly running: boolean;
  /** Stops the server and waits for its exit. */
  stop(signal?: 'SIGTERM' | 'SIGKILL'): Promise<void>;
  /** Starts it again on the same port with the same files, and waits until it serves. */
  start(): Promise<void>;
  /** What the live server says it is now: a failover turns a replica into a master. */
  role(): Promise<'master' | 'replica'>;
}

export interface LocalRedis {
  readonly mode: 'cluster' | 'standalone';
  /** TG_REDIS_URL of the servers: comma-separated seeds for a cluster, its masters as created. */
  readonly url: string;
  /** Every server: the masters as created, in the order of `url`, then the replicas. */
  readonly nodes: LocalRedisNode[];
  /**
   * The node serving `slot` now, as a running node's CLUSTER SLOTS says; after a failover
   * that is the promoted replica once the cluster has agreed on it. The only node of a
   * standalone server.
   */
  masterOf(slot: number): Promise<LocalRedisNode>;
  stop(): Promise<void>;
}

export class RedisServerMissingError extends Error {
  override readonly name = 'RedisServerMissingError';
  constructor(program: string) {
    super(`${program} not found on PATH; install it: apt-get install -y redis-server (Debian/Ubuntu)`);
  }
}

const running = new Set<ChildProcess>();
process.on('exit', () => {
  // A test run that crashed must not leave servers behind.
  for (const child of running) child.kill('SIGKILL');
});

function available(program: string): boolean {
  return spawnSync(program, ['--version'], { stdio: 'ignore' }).status === 0;
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

const claimed = new Set<number>();

/** Lowest port the kernel gives a connection as its own (Linux; 32768 elsewhere and by default). */
export function ephemeralLow(): number {
  try {
    return Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]) || 32768;
  } catch {
    return 32768;
  }
}

/** Cluster bus port: the client port plus this. */
const BUS_OFFSET = 10000;

/** Lowest port picked, and fewest ports to pick among below the kernel's range before falling back. */
const LOWEST_PORT = 10000;
const FEWEST_CHOICES = 1000;

/**
 * Where a local Redis's ports are picked, [from, to): below the ports the kernel gives outgoing
 * connections, its cluster bus port too. Picked among them, a port found free could be taken by a
 * client connection before the server bound it ("Address already in use" on the bus port, a failed
 * CI run). A range too narrow for that leaves the choice as before.
 */
export function portRange(cluster: boolean, ephemeralFrom = ephemeralLow()): { from: number; to: number } {
  const to = ephemeralFrom - (cluster ? BUS_OFFSET : 0);
  return to - LOWEST_PORT >= FEWEST_CHOICES ? { from: LOWEST_PORT, to } : { from: 20000, to: 50000 };
}

/** A free port (and, for a cluster, a free bus port at +10000) not handed out before. */
async function freePort(cluster: boolean): Promise<number> {
  const { from, to } = portRange(cluster);
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = from + Math.floor(Math.random() * (to - from));
    if (claimed.has(port)) continue;
    if ((await portFree(port)) && (!cluster || (await portFree(port + BUS_OFFSET)))) {
      claimed.add(port);
      return port;
    }
  }
  throw new Error('no free loopback port found for a local Redis');
}

async function until(what: string, deadlineMs: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  let lastError = '';
  while (Date.now() < deadline) {
    try {
      if (await check()) return;
    } catch (err) {
      lastError = String(err);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out after ${deadlineMs} ms waiting for ${what}${lastError ? ` (last error: ${lastError})` : ''}`);
}

async function withClient<T>(port: number, fn: (r: Redis) => Promise<T>, tls?: TlsOptions): Promise<T> {
  // A node stopped with SIGSTOP still takes connections: it is given up after 2 s, not waited for.
  const r = new Redis({ host: '127.0.0.1', port, tls, lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0, commandTimeout: 2000, disableClientInfo: true });
  r.on('error', () => undefined);
  try {
    await r.connect();
    return await fn(r);
  } finally {
    r.disconnect();
  }
}

class Node implements LocalRedisNode {
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();

  constructor(
    readonly port: number,
    private readonly dir: string,
    private readonly args: string[],
    private readonly redisServer: string,
    private readonly cluster: boolean,
    private readonly tls: TlsOptions | undefined,
  ) {}

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  async start(): Promise<void> {
    if (this.running) return;
    const logFile = join(this.dir, 'redis.log');
    const out = openSync(logFile, 'a');
    const child = spawn(this.redisServer, this.args, { cwd: this.dir, stdio: ['ignore', out, out] });
    closeSync(out);
    this.child = child;
    running.add(child);
    this.exited = new Promise((resolve) => child.once('exit', () => (running.delete(child), resolve())));
    try {
      await until(`redis-server on 127.0.0.1:${this.port}`, 15000, async () => {
        if (child.exitCode !== null) throw new Error(`exited with ${child.exitCode}: ${readFileSync(logFile, 'utf8').split('\n').slice(-5).join(' | ')}`);
        return (await withClient(this.port, (r) => r.ping(), this.tls)) === 'PONG';
      });
      if (this.cluster && this.clusterCreated) {
        await until(`cluster_state:ok on 127.0.0.1:${this.port}`, 20000, () => withClient(this.port, async (r) => /cluster_state:ok/.test(await r.cluster('INFO')), this.tls));
      }
    } catch (err) {
      child.kill('SIGKILL');
      throw err;
    }
  }

  /** Set once the cluster exists, so a restarted node waits to rejoin it. */
  clusterCreated = false;

  async role(): Promise<'master' | 'replica'> {
    const [role] = (await withClient(this.port, (r) => r.role(), this.tls)) as [string, ...unknown[]];
    return role === 'master' ? 'master' : 'replica';
  }

  async stop(signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> {
    const child = this.child;
    if (!child || !this.running) return;
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), 10000);
    await this.exited;
    clearTimeout(timer);
  }
}

export async function startLocalRedis(opts: LocalRedisOptions): Promise<LocalRedis> {
  const redisServer = opts.redisServer ?? 'redis-server';
  const redisCli = opts.redisCli ?? 'redis-cli';
  if (!available(redisServer)) throw new RedisServerMissingError(redisServer);
  const cluster = opts.mode === 'cluster';
  if (cluster && !available(redisCli)) throw new RedisServerMissingError(redisCli);
  const count = cluster ? (opts.masters ?? 3) : 1;
  if (cluster && count < 3) throw new Error(`a Redis Cluster needs at least 3 masters, not ${count}`);
  const replicas = opts.replicas ?? 0;
  if (!Number.isInteger(replicas) || replicas < 0) throw new Error(`replicas must be a whole number of at least 0, not ${replicas}`);
  if (!cluster && replicas > 0) throw new Error('replicas need cluster mode');
  const ownDir = opts.dir === undefined;
  const base = opts.dir ?? mkdtempSync(join(tmpdir(), 'tg-redis-'));
  const notifications = opts.notifications ?? `K${REQUIRED_CLASSES}`;
  const tls = opts.tls && { ca: readFileSync(opts.tls.ca), cert: readFileSync(opts.tls.cert), key: readFileSync(opts.tls.key) };
  const tlsArgs = opts.tls ? ['--tls-cert-file', opts.tls.cert, '--tls-key-file', opts.tls.key, '--tls-ca-cert-file', opts.tls.ca, '--tls-auth-clients', 'yes'] : [];

  const nodes: Node[] = [];
  for (let i = 0; i < count * (1 + replicas); i++) {
    const port = await freePort(cluster);
    const dir = join(base, String(port));
    mkdirSync(dir, { recursive: true });
    const ports = opts.tls ? ['--port', '0', '--tls-port', String(port), ...tlsArgs] : ['--port', String(port)];
    const args = [...ports, '--bind', '127.0.0.1', '--daemonize', 'no', '--save', '', '--dir', dir, '--notify-keyspace-events', notifications];
    args.push('--appendonly', opts.appendonly ? 'yes' : 'no');
    if (cluster) args.push('--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '2000');
    // The default 5 s wait for more replicas before a diskless sync would hold up every start.
    if (cluster) args.push('--repl-diskless-sync-delay', '0');
    if (cluster && opts.tls) args.push('--tls-cluster', 'yes', '--tls-replication', 'yes');
    nodes.push(new Node(port, dir, args, redisServer, cluster, tls));
  }

  const stop = async (): Promise<void> => {
    await Promise.all(nodes.map((n) => n.stop()));
    for (const n of nodes) claimed.delete(n.port);
    if (ownDir) rmSync(base, { recursive: true, force: true });
  };

  try {
    await Promise.all(nodes.map((n) => n.start()));
    if (cluster) {
      const cliTls = opts.tls ? ['--tls', '--cacert', opts.tls.ca, '--cert', opts.tls.cert, '--key', opts.tls.key] : [];
      const create = spawnSync(redisCli, [...cliTls, '--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', String(replicas), '--cluster-yes'], { encoding: 'utf8' });
      if (create.status !== 0) throw new Error(`redis-cli --cluster create failed: ${create.stdout}${create.stderr}`);
      for (const n of nodes) n.clusterCreated = true;
      // redis-cli picks the masters itself; order by what the servers say, keeping the given order.
      const roles = await Promise.all(nodes.map((n) => n.role()));
      const masters = nodes.filter((_, i) => roles[i] === 'master');
      if (masters.length !== count) throw new Error(`redis-cli --cluster create made ${masters.length} masters, not ${count}: ${create.stdout}`);
      nodes.splice(0, nodes.length, ...masters, ...nodes.filter((_, i) => roles[i] === 'replica'));
      await until('every node to agree on a complete cluster', 30000, async () => {
        const views = await Promise.all(
          nodes.map((n) =>
            withClient(n.port, async (r) => {
              if (!/cluster_state:ok/.test(await r.cluster('INFO'))) return false;
              const slots = (await r.cluster('SLOTS')) as [number, number][];
              if (slots.reduce((sum, [first, last]) => sum + last - first + 1, 0) !== SLOT_COUNT || slots.length < count) return false;
              // A replica not yet known as one everywhere would not win a failover election.
              const known = String(await r.cluster('NODES')).trim().split('\n');
              return known.length === nodes.length && known.filter((line) => /\bmaster\b/.test(line.split(' ')[2] ?? '')).length === count;
            }, tls),
          ),
        );
        return views.every(Boolean);
      });
      await until('every replica to report master_link_status:up', 30000, async () => {
        const links = await Promise.all(nodes.slice(count).map((n) => withClient(n.port, async (r) => /master_link_status:up/.test(await r.info('replication')), tls)));
        return links.every(Boolean);
      });
    }
  } catch (err) {
    await stop();
    throw err;
  }

  return {
    mode: opts.mode,
    url: nodes.slice(0, count).map((n) => `${opts.tls ? 'rediss' : 'redis'}://127.0.0.1:${n.port}`).join(','),
    nodes,
    stop,
    async masterOf(slot: number): Promise<LocalRedisNode> {
      if (!cluster) return nodes[0]!;
      let lastError: unknown = new Error('no node of the cluster is running');
      for (const asked of nodes.filter((n) => n.running)) {
        try {
          const ranges = await withClient(asked.port, (r) => r.cluster('SLOTS'), tls);
          const port = ranges.find(([first, last]) => first <= slot && slot <= last)?.[2]?.[1];
          const served = nodes.find((n) => n.port === port);
          if (served) return served;
          lastError = new Error(`127.0.0.1:${asked.port} knows no node of this cluster serving slot ${slot}`);
        } catch (err) {
          lastError = err;
        }
      }
      throw lastError;
    },
  };
}
