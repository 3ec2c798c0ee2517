/**
 * `node workers/start.js [--flags]`: one worker process. The only place that deals with
 * the process itself: configuration checked before any connection, and one shutdown path
 * (SIGINT or SIGTERM) raced against a deadline; a second signal exits at once with 1.
 */
import { loadConfig, usage, type Config } from '../lib/config.js';
import { ConfigError, StartAborted } from '../lib/errors.js';
import { GeneratorWorker } from '../lib/worker.js';

const args = process.argv.slice(2);
if (args.includes('--help') || args.includes('-h')) {
  process.stdout.write(`usage: node workers/start.js [--flag value ...]\nEach flag can also be set by its environment variable:\n${usage()}\n`);
  process.exit(0);
}

let config: Config;
try {
  config = loadConfig(process.env, args);
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  process.stderr.write(`${err.message}\n`);
  process.exit(2);
}

const worker = new GeneratorWorker(config);
const { logger } = worker;
let stopping: Promise<void> | undefined;

function shutdown(signal: NodeJS.Signals): void {
  if (stopping) {
    logger.warn('second signal: exiting now', { signal });
    process.exit(1);
  }
  logger.info('shutdown requested', { signal, deadlineMs: config.shutdownTimeoutMs });
  // A start still waiting for Redis ends now instead of at its connect timeout.
  worker.abortStart();
  const deadline = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), config.shutdownTimeoutMs).unref());
  // A signal during the start stops what the start set up, once it has.
  const stopped = starting.then(() => worker.stop(), () => undefined).then(() => 'done' as const);
  stopping = Promise.race([stopped, deadline]).then(
    (outcome) => {
      if (outcome === 'timeout') {
        logger.error('graceful stop missed its deadline; the next owners of the partitions it still holds compare them with Redis', { deadlineMs: config.shutdownTimeoutMs, ...worker.leftBehind() });
        process.exit(1);
      }
      logger.info('exiting', { code: 0 });
      // Let winston flush its last lines before the process ends.
      setImmediate(() => process.exit(0));
    },
    (err: unknown) => {
      logger.error('graceful stop failed', { err: String(err) });
      process.exit(1);
    },
  );
}

process.on('SIGINT', () => shutdown('SIGINT'));
process.on('SIGTERM', () => shutdown('SIGTERM'));

const starting = worker.start();
starting.catch((err: unknown) => {
  // Stopped before Redis answered: the shutdown path exits 0.
  if (err instanceof StartAborted) return;
  logger.error(err instanceof Error ? err.message : String(err), { fatal: true, error: err instanceof Error ? err.name : undefined });
  process.exitCode = 1;
  setImmediate(() => process.exit(1));
});
