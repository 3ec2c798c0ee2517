/**
 * `npm run redis:cluster` / `npm run redis:standalone`: local Redis servers for trying the
 * workers by hand. Prints their TG_REDIS_URL and stops them on Ctrl-C.
 *
 * node scripts/redis-local.js cluster|standalone [--masters N] [--replicas N]
 */
import { parseArgs } from 'node:util';
import { RedisServerMissingError, startLocalRedis } from '../lib/local-redis.js';

let parsed;
try {
  parsed = parseArgs({ allowPositionals: true, options: { masters: { type: 'string', default: '3' }, replicas: { type: 'string', default: '0' } }, strict: true });
} catch (err) {
  process.stderr.write(`${(err as Error).message}\nusage: node scripts/redis-local.js cluster|standalone [--masters N] [--replicas N]\n`);
  process.exit(2);
}
const mode = parsed.positionals[0];
const masters = Number(parsed.values.masters);
const replicas = Number(parsed.values.replicas);
if (
  (mode !== 'cluster' && mode !== 'standalone') ||
  parsed.positionals.length !== 1 ||
  !Number.isInteger(masters) ||
  masters < 3 ||
  !Number.isInteger(replicas) ||
  replicas < 0 ||
  (mode === 'standalone' && replicas > 0)
) {
  process.stderr.write('usage: node scripts/redis-local.js cluster|standalone [--masters N (at least 3)] [--replicas N (per master, cluster only)]\n');
  process.exit(2);
}

try {
  const local = await startLocalRedis({ mode, masters, replicas });
  const shape = mode === 'cluster' ? `${masters} masters, ${replicas} replica${replicas === 1 ? '' : 's'} each; ` : '';
  process.stdout.write(`TG_REDIS_URL=${local.url}\n(${shape}Ctrl-C stops the servers)\n`);
  const stop = () => void local.stop().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
} catch (err) {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(err instanceof RedisServerMissingError ? 127 : 1);
}
