/** A winston logger that keeps its records in memory, for tests that wait on what a worker logged. */
import { Writable } from 'node:stream';
import winston from 'winston';
import type { Logger } from '../../lib/logger.js';

export interface CapturedLogger {
  logger: Logger;
  records: Record<string, unknown>[];
}

export function captureLogger(): CapturedLogger {
  const records: Record<string, unknown>[] = [];
  const stream = new Writable({
    objectMode: true,
    write(info: Record<string, unknown>, _encoding, done) {
      records.push(info);
      done();
    },
  });
  return { logger: winston.createLogger({ level: 'debug', transports: [new winston.transports.Stream({ stream })] }), records };
}
