/**
 * Structured JSON logs: every line carries the worker id; partition-scoped code logs
 * through `logger.child({ partition })`.
 */
import winston from 'winston';
import type { LogLevel } from './config.js';

export type Logger = winston.Logger;

export function createLogger(level: LogLevel, workerId: string): Logger {
  return winston.createLogger({
    level,
    defaultMeta: { worker: workerId },
    format: winston.format.combine(winston.format.timestamp(), winston.format.errors({ stack: true }), winston.format.json()),
    transports: [new winston.transports.Console()],
  });
}

/** A logger that drops everything, for library use without a worker. */
export function silentLogger(): Logger {
  return winston.createLogger({ silent: true, transports: [new winston.transports.Console()] });
}
