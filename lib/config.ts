/**
 * The one typed configuration object, read from TG_* environment variables and
 * `--flags` (a flag wins over its variable), validated once at start with every problem
 * reported together, each naming its setting. Nothing else in lib/ reads process.env.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ConfigError } from './errors.js';
import type { EvictionAnswer } from './eviction.js';

export interface RedisEndpoint {
  host: string;
  port: number;
}

export interface RedisSettings {
  /** One seed for standalone or a cluster, several for a cluster. */
  seeds: RedisEndpoint[];
  username?: string;
  password?: string;
  tls: boolean;
  /** PEM contents for TLS (TG_TLS_CA, TG_TLS_CERT, TG_TLS_KEY) and the name the servers' certificates carry. */
  tlsFiles?: { ca?: Buffer; cert?: Buffer; key?: Buffer; servername?: string };
  /** Database index (standalone only; a cluster has only 0). */
  db: number;
  /** The URL as given, without its password, for messages. */
  display: string;
}

export type LogLevel = 'error' | 'warn' | 'info' | 'debug';

export interface Config {
  redis: RedisSettings;
  prefix: string;
  watch: string;
  partitions: number;
  leaseTtlMs: number;
  renewIntervalMs: number;
  concurrency: number;
  logLevel: LogLevel;
  /** null: no HTTP server; 0: any free port. */
  httpPort: number | null;
  /** Address the HTTP server listens on: loopback unless opened on purpose. */
  httpHost: string;
  configureNotifications: boolean;
  checkNotifications: boolean;
  evictionPolicy: EvictionAnswer;
  /** Module that replaces or extends the sink, resolved from the working directory. */
  handler: string | null;
  /** Most dirty keys one ticket job carries. */
  batchSize: number;
  /** Shortest time between two appends of gathered events to the dirty streams. */
  flushIntervalMs: number;
  /** Gathered keys that are appended at once. */
  flushKeys: number;
  /** Longest a gathered key waits for others before it is appended. */
  flushMaxWaitMs: number;
  /** Shortest time a keyspace listener stops reading after each chunk received, so a burst of events costs one wake-up. */
  listenPauseMs: number;
  /** Most dirty keys a worker keeps in memory while Redis refuses their appends. */
  maxPendingKeys: number;
  /** Shortest time between two reading rounds of the dirty streams an owner holds. */
  readIntervalMs: number;
  /** Deadline of a graceful stop. */
  shutdownTimeoutMs: number;
  /** How long a starting worker waits for an unreachable Redis before it gives up. */
  connectTimeoutMs: number;
  /** A command to Redis not answered within this many ms fails (and is retried); 0: waited for as long as it takes. */
  commandTimeoutMs: number;
  /** Keys per second the continuous reconciliation compares with the ticket index; 0: off. */
  reconcileRate: number;
  /** Shortest time between the starts of two reconciliation passes. */
  reconcileIntervalMs: number;
  /** How long a difference found by reconciliation must stand before it counts as divergent. */
  reconcileGraceMs: number;
  /** Ticket every existing key of a partition covered for the first time. */
  backfill: boolean;
  /** Approximate length the sink stream is trimmed to on append; null: never trimmed. */
  sinkMaxLen: number | null;
  /** Streams of the default sink (lib/shards.ts); 1 keeps the single stream `<prefix>:tickets`. */
  sinkShards: number;
  /** Ticket queue shards (lib/shards.ts); all workers of a prefix must agree. */
  queueShards: number;
  /** TLS: CA, client certificate and key (PEM file contents), and the server name to verify; null when unset. */
  tlsCa: Buffer | null;
  tlsCert: Buffer | null;
  tlsKey: Buffer | null;
  tlsServername: string | null;
  /** Attempts of a ticket job before it fails for good. */
  jobAttempts: number;
  /** Pause between two attempts of a ticket job. */
  jobBackoffMs: number;
}

type Parser<T> = (raw: string, name: string) => T;

interface Setting<K extends keyof Config> {
  key: K;
  env: string;
  flag: string;
  help: string;
  /** Value when neither the variable nor the flag is set; a function when it derives from others. */
  fallback: Config[K] | ((c: Partial<Config>) => Config[K]);
  parse: Parser<Config[K]>;
  /** A flag that needs no value (`--x` means true). */
  boolean?: boolean;
}

class Invalid extends Error {}

/** A PEM file, read at start so a bad path is a configuration error, not a failed connection. */
function pemFile(raw: string): Buffer {
  let pem: Buffer;
  try {
    pem = readFileSync(raw);
  } catch (err) {
    throw new Invalid(`cannot read '${raw}': ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  if (!pem.includes('-----BEGIN ')) throw new Invalid(`'${raw}' is not a PEM file (no -----BEGIN line)`);
  return pem;
}

function integer(min: number, max = Number.MAX_SAFE_INTEGER): Parser<number> {
  return (raw) => {
    if (!/^\d+$/.test(raw.trim())) throw new Invalid(`'${raw}' is not a whole number`);
    const n = Number(raw);
    if (n < min || n > max) throw new Invalid(`${n} is outside ${min}..${max}`);
    return n;
  };
}

function bool(raw: string): boolean {
  const v = raw.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(v)) return true;
  if (['0', 'false', 'no', 'off', ''].includes(v)) return false;
  throw new Invalid(`'${raw}' is not a boolean (1/0, true/false)`);
}

/** Parses `redis://[user:pass@]host:port[/db]`, comma-separated for several seeds. */
export function parseRedisUrl(raw: string): RedisSettings {
  const parts = raw.split(',').map((s) => s.trim()).filter(Boolean);
  if (parts.length === 0) throw new Invalid('no URL given');
  const seeds: RedisEndpoint[] = [];
  let username: string | undefined;
  let password: string | undefined;
  let tls: boolean | undefined;
  let db = 0;
  for (const part of parts) {
    let url: URL;
    try {
      url = new URL(part);
    } catch {
      throw new Invalid(`'${part}' is not a URL like redis://host:port`);
    }
    if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') {
      throw new Invalid(`'${part}' must start with redis:// or rediss://`);
    }
    const secure = url.protocol === 'rediss:';
    if (tls !== undefined && tls !== secure) throw new Invalid('seeds mix redis:// and rediss://');
    tls = secure;
    if (!url.hostname) throw new Invalid(`'${part}' has no host`);
    const port = url.port ? Number(url.port) : 6379;
    if (url.username) username = decodeURIComponent(url.username);
    if (url.password) password = decodeURIComponent(url.password);
    const path = url.pathname.replace(/^\//, '');
    if (path !== '') {
      if (!/^\d+$/.test(path)) throw new Invalid(`'${part}' has database '${path}', not a number`);
      db = Number(path);
    }
    seeds.push({ host: url.hostname.replace(/^\[|\]$/g, ''), port });
  }
  const display = parts.map((p) => p.replace(/\/\/([^@/]*)@/, (_m, cred: string) => `//${cred.split(':')[0]}:***@`)).join(',');
  return { seeds, username, password, tls: tls ?? false, db, display };
}

const LOG_LEVELS: readonly LogLevel[] = ['error', 'warn', 'info', 'debug'];

const SETTINGS: Setting<keyof Config>[] = [
  s({ key: 'redis', env: 'TG_REDIS_URL', flag: '--redis-url', help: 'redis://host:port, comma-separated seeds for a cluster', fallback: parseRedisUrl('redis://127.0.0.1:6379'), parse: (raw) => parseRedisUrl(raw) }),
  s({ key: 'prefix', env: 'TG_PREFIX', flag: '--prefix', help: 'prefix of every key the system writes', fallback: 'tg', parse: (raw) => {
    if (!/^[A-Za-z0-9_.-]+$/.test(raw)) throw new Invalid(`'${raw}' must be letters, digits, '_', '.' or '-' (no ':' or braces)`);
    return raw;
  } }),
  s({ key: 'watch', env: 'TG_WATCH', flag: '--watch', help: 'glob of the watched keys', fallback: '*', parse: (raw) => {
    if (raw === '') throw new Invalid('must not be empty (use * to watch every key)');
    return raw;
  } }),
  s({ key: 'partitions', env: 'TG_PARTITIONS', flag: '--partitions', help: 'number of partitions', fallback: 271, parse: integer(1, 16384) }),
  s({ key: 'leaseTtlMs', env: 'TG_LEASE_TTL_MS', flag: '--lease-ttl-ms', help: 'lease time to live', fallback: 3000, parse: integer(100) }),
  s({ key: 'renewIntervalMs', env: 'TG_RENEW_INTERVAL_MS', flag: '--renew-interval-ms', help: 'lease renewal period', fallback: (c) => Math.max(30, Math.floor((c.leaseTtlMs ?? 3000) / 3)), parse: integer(10) }),
  s({ key: 'concurrency', env: 'TG_CONCURRENCY', flag: '--concurrency', help: 'ticket jobs run at once', fallback: 8, parse: integer(1, 10000) }),
  s({ key: 'logLevel', env: 'TG_LOG_LEVEL', flag: '--log-level', help: 'error, warn, info or debug', fallback: 'info', parse: (raw) => {
    const v = raw.toLowerCase() as LogLevel;
    if (!LOG_LEVELS.includes(v)) throw new Invalid(`'${raw}' is not one of ${LOG_LEVELS.join(', ')}`);
    return v;
  } }),
  s({ key: 'httpPort', env: 'TG_HTTP_PORT', flag: '--http-port', help: 'port of the HTTP probes and metrics, 0 for any free port, unset for none', fallback: null, parse: integer(0, 65535) }),
  s({ key: 'httpHost', env: 'TG_HTTP_HOST', flag: '--http-host', help: 'address the HTTP server listens on (0.0.0.0 for every interface)', fallback: '127.0.0.1', parse: (raw) => {
    if (raw.trim() === '' || /\s/.test(raw)) throw new Invalid(`'${raw}' is not an address`);
    return raw;
  } }),
  s({ key: 'checkNotifications', env: 'TG_CHECK_NOTIFICATIONS', flag: '--check-notifications', help: 'read notify-keyspace-events on every master at start (CONFIG GET); 0 skips it for a user denied CONFIG GET', fallback: true, parse: bool }),
  s({ key: 'evictionPolicy', env: 'TG_EVICTION_POLICY', flag: '--eviction-policy', help: 'a master whose maxmemory-policy could evict the system\'s keys: warn (log and go on) or refuse (stop)', fallback: 'warn', parse: (raw) => {
    if (raw !== 'warn' && raw !== 'refuse') throw new Invalid(`'${raw}' is neither warn nor refuse`);
    return raw;
  } }),
  s({ key: 'configureNotifications', env: 'TG_CONFIGURE_NOTIFICATIONS', flag: '--configure-notifications', help: 'let the worker enable notify-keyspace-events', fallback: false, parse: bool, boolean: true }),
  s({ key: 'handler', env: 'TG_HANDLER', flag: '--handler', help: 'module that replaces or extends the ticket sink', fallback: null, parse: (raw) => {
    if (raw.trim() === '') throw new Invalid('must name a module');
    return raw;
  } }),
  s({ key: 'batchSize', env: 'TG_BATCH_SIZE', flag: '--batch-size', help: 'most dirty keys in one ticket job', fallback: 200, parse: integer(1, 100000) }),
  s({ key: 'readIntervalMs', env: 'TG_READ_INTERVAL_MS', flag: '--read-interval-ms', help: 'shortest time between two rounds of an owner\'s dirty streams, each making the ticket jobs of what it appended or read since the last (longer: bigger ticket jobs, less CPU per write, later tickets)', fallback: 15, parse: integer(0, 10000) }),
  s({ key: 'maxPendingKeys', env: 'TG_MAX_PENDING_KEYS', flag: '--max-pending-keys', help: 'most dirty keys kept in memory while Redis refuses their appends (OOM); past it a partition\'s keys are dropped and the partition repaired', fallback: 100000, parse: integer(1) }),
  s({ key: 'flushIntervalMs', env: 'TG_FLUSH_INTERVAL_MS', flag: '--flush-interval-ms', help: 'shortest time between two appends of gathered events to the dirty streams', fallback: 5, parse: integer(0, 10000) }),
  s({ key: 'flushKeys', env: 'TG_FLUSH_KEYS', flag: '--flush-keys', help: 'gathered keys that are appended at once; fewer wait for others up to TG_FLUSH_MAX_WAIT_MS (bigger: bigger batches and ticket jobs, less CPU per write)', fallback: 64, parse: integer(1, 100000) }),
  s({ key: 'flushMaxWaitMs', env: 'TG_FLUSH_MAX_WAIT_MS', flag: '--flush-max-wait-ms', help: 'longest a gathered key waits for TG_FLUSH_KEYS others before it is appended (the freshness a light load gets)', fallback: 100, parse: integer(0, 60000) }),
  s({ key: 'listenPauseMs', env: 'TG_LISTEN_PAUSE_MS', flag: '--listen-pause-ms', help: 'shortest time a keyspace listener stops reading after each chunk of events (0: never); the kernel gathers what arrives meanwhile, so a stream of events wakes the worker once a pause instead of once a packet. A worker forwarding fewer keys pauses longer, about the time TG_FLUSH_KEYS keys take to come, up to TG_FLUSH_MAX_WAIT_MS, and appends what it gathered right after a paced read when the batch would go before the next read is half a pause old; a listener whose last chunk came longer than a pause ago is not paused', fallback: 20, parse: integer(0, 1000) }),
  s({ key: 'connectTimeoutMs', env: 'TG_CONNECT_TIMEOUT_MS', flag: '--connect-timeout-ms', help: 'how long a starting worker waits for Redis: an unreachable one, a Redis Cluster that says it is down (cluster_state:fail), or a master that does not answer the start\'s commands (frozen, its replica not yet promoted; each such command is asked again until then)', fallback: 60000, parse: integer(0) }),
  s({ key: 'commandTimeoutMs', env: 'TG_COMMAND_TIMEOUT_MS', flag: '--command-timeout-ms', help: 'a command to Redis not answered within this many ms fails and is retried (0: wait for ever); a master frozen without closing its connections (a paused VM, a black-holed network) would otherwise hold up the worker even after its replica took over', fallback: 15000, parse: integer(0, 600000) }),
  s({ key: 'reconcileRate', env: 'TG_RECONCILE_RATE', flag: '--reconcile-rate', help: 'keys and index entries compared with the ticket index per second, per worker (0: off)', fallback: 5000, parse: integer(0, 10_000_000) }),
  s({ key: 'reconcileIntervalMs', env: 'TG_RECONCILE_INTERVAL_MS', flag: '--reconcile-interval-ms', help: 'shortest time between the starts of two reconciliation passes', fallback: 30000, parse: integer(0) }),
  s({ key: 'reconcileGraceMs', env: 'TG_RECONCILE_GRACE_MS', flag: '--reconcile-grace-ms', help: 'how long a difference must stand before it counts as divergent', fallback: 10000, parse: integer(0) }),
  s({ key: 'backfill', env: 'TG_BACKFILL', flag: '--backfill', help: 'ticket every existing key of a partition covered for the first time', fallback: false, parse: bool, boolean: true }),
  s({ key: 'sinkMaxLen', env: 'TG_SINK_MAXLEN', flag: '--sink-maxlen', help: 'trim the sink stream to about this many tickets on append (unset: never)', fallback: null, parse: integer(1) }),
  s({ key: 'sinkShards', env: 'TG_SINK_SHARDS', flag: '--sink-shards', help: 'streams of the default sink, each in its own slot; 1 keeps the single stream <prefix>:tickets (all workers of a prefix must agree)', fallback: 3, parse: integer(1, 256) }),
  s({ key: 'queueShards', env: 'TG_QUEUE_SHARDS', flag: '--queue-shards', help: 'ticket queue shards, each in its own slot (all workers of a prefix must agree)', fallback: 3, parse: integer(1, 256) }),
  s({ key: 'jobAttempts', env: 'TG_JOB_ATTEMPTS', flag: '--job-attempts', help: 'attempts of a ticket job before it fails for good', fallback: 100, parse: integer(1, 1_000_000) }),
  s({ key: 'tlsCa', env: 'TG_TLS_CA', flag: '--tls-ca', help: 'PEM file of the CA that signed the Redis servers\' certificates (rediss://)', fallback: null, parse: pemFile }),
  s({ key: 'tlsCert', env: 'TG_TLS_CERT', flag: '--tls-cert', help: 'PEM file of the client certificate, for servers that ask for one (mutual TLS; with TG_TLS_KEY)', fallback: null, parse: pemFile }),
  s({ key: 'tlsKey', env: 'TG_TLS_KEY', flag: '--tls-key', help: 'PEM file of the client certificate\'s private key (with TG_TLS_CERT)', fallback: null, parse: pemFile }),
  s({ key: 'tlsServername', env: 'TG_TLS_SERVERNAME', flag: '--tls-servername', help: 'name the servers\' certificates are checked against, when not their address', fallback: null, parse: (raw) => raw }),
  s({ key: 'jobBackoffMs', env: 'TG_JOB_BACKOFF_MS', flag: '--job-backoff-ms', help: 'pause between two attempts of a ticket job', fallback: 1000, parse: integer(0) }),
  s({ key: 'shutdownTimeoutMs', env: 'TG_SHUTDOWN_TIMEOUT_MS', flag: '--shutdown-timeout-ms', help: 'deadline of a graceful stop', fallback: 30000, parse: integer(100) }),
];

function s<K extends keyof Config>(setting: Setting<K>): Setting<keyof Config> {
  return setting as unknown as Setting<keyof Config>;
}

/** The settings' flags as node:util parseArgs options (for a command that adds its own). */
export function settingOptions(): Record<string, { type: 'string' | 'boolean' }> {
  return Object.fromEntries(SETTINGS.map((x) => [x.flag.slice(2), { type: x.boolean ? 'boolean' : 'string' }]));
}

/** One line a setting, for --help. */
export function usage(): string {
  return SETTINGS.map((x) => `  ${x.flag.padEnd(28)} ${x.env.padEnd(28)} ${x.help}`).join('\n');
}

/**
 * Builds the configuration from the environment and the command-line arguments.
 * Throws ConfigError naming every bad setting, or an unknown flag.
 */
export function loadConfig(env: NodeJS.ProcessEnv, argv: readonly string[]): Config {
  const problems: string[] = [];
  const raw = new Map<keyof Config, { value: string; from: string }>();
  for (const setting of SETTINGS) {
    const v = env[setting.env];
    if (v !== undefined) raw.set(setting.key, { value: v, from: setting.env });
  }
  // Not strict, so that every bad flag is reported at once rather than the first only.
  const { tokens } = parseArgs({ args: [...argv], options: settingOptions(), strict: false, allowPositionals: true, tokens: true });
  for (const token of tokens) {
    if (token.kind === 'positional') problems.push(`unexpected argument '${token.value}'`);
    if (token.kind !== 'option') continue;
    const setting = SETTINGS.find((x) => x.flag === token.rawName);
    if (!setting) problems.push(`unknown argument '${token.rawName}' (known flags: ${SETTINGS.map((x) => x.flag).join(', ')})`);
    else if (setting.boolean) raw.set(setting.key, { value: token.value ?? 'true', from: setting.flag });
    else if (token.value === undefined) problems.push(`${setting.flag} needs a value`);
    else raw.set(setting.key, { value: token.value, from: setting.flag });
  }

  const config: Partial<Record<keyof Config, unknown>> = {};
  for (const setting of SETTINGS) {
    const given = raw.get(setting.key);
    if (!given) continue;
    try {
      config[setting.key] = setting.parse(given.value, given.from);
    } catch (err) {
      if (!(err instanceof Invalid)) throw err;
      problems.push(`${given.from}: ${err.message}`);
    }
  }
  for (const setting of SETTINGS) {
    if (setting.key in config || raw.has(setting.key)) continue;
    config[setting.key] = typeof setting.fallback === 'function' ? setting.fallback(config as Partial<Config>) : setting.fallback;
  }

  const c = config as Config;
  const nameOf = (key: keyof Config) => raw.get(key)?.from ?? SETTINGS.find((x) => x.key === key)!.env;
  if (problems.length === 0) {
    if (c.renewIntervalMs >= c.leaseTtlMs) {
      problems.push(`${nameOf('leaseTtlMs')}: ${c.leaseTtlMs} ms must be above ${nameOf('renewIntervalMs')} (${c.renewIntervalMs} ms)`);
    } else if (c.renewIntervalMs * 2 > c.leaseTtlMs) {
      problems.push(`${nameOf('renewIntervalMs')}: ${c.renewIntervalMs} ms leaves no time for a retry within ${nameOf('leaseTtlMs')} (${c.leaseTtlMs} ms); use at most half the TTL`);
    }
    if (c.flushMaxWaitMs < c.flushIntervalMs) problems.push(`${nameOf('flushMaxWaitMs')}: ${c.flushMaxWaitMs} ms is below ${nameOf('flushIntervalMs')} (${c.flushIntervalMs} ms), the shortest time between two appends`);
    if (c.redis.seeds.length > 1 && c.redis.db !== 0) problems.push(`${nameOf('redis')}: a cluster has only database 0`);
    const tlsGiven = (['tlsCa', 'tlsCert', 'tlsKey', 'tlsServername'] as const).filter((k) => c[k] !== null);
    if (tlsGiven.length > 0 && !c.redis.tls) problems.push(`${tlsGiven.map(nameOf).join(', ')}: set, but ${nameOf('redis')} is not rediss:// (TLS)`);
    if ((c.tlsCert === null) !== (c.tlsKey === null)) problems.push(`${nameOf(c.tlsCert === null ? 'tlsCert' : 'tlsKey')}: needed with ${nameOf(c.tlsCert === null ? 'tlsKey' : 'tlsCert')} (mutual TLS takes both)`);
    if (c.redis.tls) c.redis = { ...c.redis, tlsFiles: { ca: c.tlsCa ?? undefined, cert: c.tlsCert ?? undefined, key: c.tlsKey ?? undefined, servername: c.tlsServername ?? undefined } };
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return c;
}
