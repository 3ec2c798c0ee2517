/**
 * Typed errors and the negative codes the Lua scripts in lua/ return, BullMQ's way:
 * a script signals a refusal with a negative integer, TypeScript turns it into a value
 * or an error with a name a caller can match on.
 */

export enum LeaseCode {
  /** Another worker holds the lease. */
  Held = -1,
  /** The caller's token is no longer the partition's current token: it was superseded. */
  Superseded = -2,
  /** The lease is not offered to the caller (handover). */
  NotOffered = -3,
}

/** Invalid configuration: every problem found, each naming its setting. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(readonly problems: readonly string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
  }
}

/** Keyspace notifications are off (or too narrow) on a Redis master. */
export class NotificationsDisabledError extends Error {
  override readonly name = 'NotificationsDisabledError';
  constructor(
    readonly node: string,
    readonly current: string,
    readonly required: string,
  ) {
    super(
      `notify-keyspace-events on ${node} is '${current}', which lacks '${required}': ` +
        `keyspace notifications are needed to see changes. Enable them on every master ` +
        `(redis-cli -h <host> -p <port> CONFIG SET notify-keyspace-events K${required.replace('K', '')}), ` +
        `or set TG_CONFIGURE_NOTIFICATIONS=1 to let the worker enable them.`,
    );
  }
}

/** The project's Redis cannot be reached at start. */
export class RedisUnavailableError extends Error {
  override readonly name = 'RedisUnavailableError';
  constructor(readonly url: string, cause: unknown) {
    super(`cannot reach Redis at ${url} (TG_REDIS_URL): ${cause instanceof Error ? cause.message : String(cause)}`);
  }
}

/** A ticket handler module named by TG_HANDLER could not be used. */
export class HandlerError extends Error {
  override readonly name = 'HandlerError';
}

/** A stop asked for while the worker still waited for Redis: nothing was started, nothing to stop. */
export class StartAborted extends Error {
  override readonly name = 'StartAborted';
  constructor() {
    super('stopped while waiting for Redis');
  }
}
