/**
 * `npm run redis:cluster` / `npm run redis:standalone`: local Redis servers for trying the
 * workers by hand. Prints their TG_REDIS_URL and stops them on Ctrl-C.
 *
 * node scripts/redis-local.js cluster|standalone [--masters N]
 */
import { parseArgs } from 'node:util';
import { RedisServerMissingError, startLocalRedis } from '../lib/local-redis.js';

let parsed;
try {
  parsed = parseArgs({ allowPositionals: true, options: { masters: { type: 'string', default: '3' } }, strict: true });
} catch (err) {
  process.stderr.write(`${(err as Error).message}\nusage: node scripts/redis-local.js cluster|standalone [--masters N]\n`);
  process.exit(2);
}
const mode = parsed.positionals[0];
const masters = Number(parsed.values.masters);
if ((mode !== 'cluster' && mode !== 'standalone') || parsed.positionals.length !== 1 || !Number.isInteger(masters) || masters < 3) {
  process.stderr.write('usage: node scripts/redis-local.js cluster|standalone [--masters N (at least 3)]\n');
  process.exit(2);
}

try {
  const local = await startLocalRedis({ mode, masters });
  process.stdout.write(`TG_REDIS_URL=${local.url}\n(Ctrl-C stops the servers)\n`);
  const stop = () => void local.stop().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
} catch (err) {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(err instanceof RedisServerMissingError ? 127 : 1);
}
