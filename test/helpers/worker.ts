/** Running real workers in the test process, and reading what they produced. */
import { loadConfig, type Config } from '../../lib/config.js';
import { Keys } from '../../lib/keys.js';
import { silentLogger } from '../../lib/logger.js';
import { connect, detectTarget, type RedisClient } from '../../lib/redis.js';
import { keysOffRedis, latestTickets, type StoredTicket } from '../../lib/ticket-reader.js';
import { GeneratorWorker } from '../../lib/worker.js';
import { waitFor } from './redis.js';

export function testConfig(url: string, prefix: string, env: Record<string, string> = {}): Config {
  return loadConfig({ TG_REDIS_URL: url, TG_PREFIX: prefix, TG_LEASE_TTL_MS: '1500', TG_CONNECT_TIMEOUT_MS: '5000', ...env }, []);
}

export async function startWorker(config: Config): Promise<GeneratorWorker> {
  const worker = new GeneratorWorker(config, { logger: process.env.TG_TEST_LOGS ? undefined : silentLogger() });
  await worker.start();
  return worker;
}

export async function client(url: string): Promise<RedisClient> {
  const target = await detectTarget(loadConfig({ TG_REDIS_URL: url }, []).redis);
  return connect(target);
}

/** What a key's final ticket must carry: a value, or null for no value (key gone). */
export type Expected = Map<string, Buffer | string | null>;

function matches(t: StoredTicket | undefined, want: Buffer | string | null): boolean {
  if (!t) return false;
  if (want === null) return t.value === undefined;
  return t.value !== undefined && t.value.equals(Buffer.isBuffer(want) ? want : Buffer.from(want));
}

/** Keys (by binary-safe id) whose latest ticket does not carry the expected final value. */
export async function missingFinal(c: RedisClient, prefix: string, expected: Expected): Promise<{ missing: string[]; total: number; latest: Map<string, StoredTicket> }> {
  const { latest, total } = await latestTickets(c, new Keys(prefix));
  const missing = [...expected].filter(([k, v]) => !matches(latest.get(k), v)).map(([k]) => k);
  return { missing, total, latest };
}

/** Polls until every expected key's latest ticket carries its final value. */
export async function waitForFinal(c: RedisClient, prefix: string, expected: Expected, timeoutMs = 30000): Promise<{ total: number; latest: Map<string, StoredTicket> }> {
  let last = { missing: [] as string[], total: 0, latest: new Map<string, StoredTicket>() };
  await waitFor(
    async () => {
      last = await missingFinal(c, prefix, expected);
      return last.missing.length === 0;
    },
    { timeoutMs, intervalMs: 200, what: () => `final tickets (${last.missing.length} of ${expected.size} keys still stale, e.g. ${JSON.stringify(last.missing.slice(0, 3))})` },
  );
  return last;
}

/**
 * Polls until every key's newest ticket carries what Redis holds (read again on every poll,
 * absent keys included); returns the ms it took.
 */
export async function waitForConvergence(c: RedisClient, prefix: string, keys: readonly (string | Buffer)[], timeoutMs: number): Promise<number> {
  const started = Date.now();
  const names = keys.map((k) => (Buffer.isBuffer(k) ? k : Buffer.from(k)));
  let stale: string[] = [];
  await waitFor(
    async () => {
      // A read that fails (a failover under way) is tried again.
      const off = await keysOffRedis(c, new Keys(prefix), names).catch(() => undefined);
      if (off === undefined) return false;
      stale = off;
      return stale.length === 0;
    },
    { timeoutMs, intervalMs: 500, what: () => `every key's newest ticket to equal Redis (${stale.length} of ${keys.length} keys off, e.g. ${JSON.stringify(stale.slice(0, 3))})` },
  );
  return Date.now() - started;
}
