/**
 * Typed errors and the negative codes the Lua scripts in lua/ return, BullMQ's way:
 * a script signals a refusal with a negative integer, TypeScript turns it into a value
 * or an error with a name a caller can match on.
 */
import { REQUIRED_CLASSES } from './notifications.js';

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

const UNTRUSTED_CA = 'set TG_TLS_CA to the PEM file of the CA that signed the servers\' certificates';

/** What to set when a TLS handshake failed for a reason the configuration can fix (Node's error codes). */
const TLS_HINTS: Record<string, string> = {
  SELF_SIGNED_CERT_IN_CHAIN: UNTRUSTED_CA,
  DEPTH_ZERO_SELF_SIGNED_CERT: UNTRUSTED_CA,
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: UNTRUSTED_CA,
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: UNTRUSTED_CA,
  ERR_TLS_CERT_ALTNAME_INVALID: 'the certificate does not name the address connected to; set TG_TLS_SERVERNAME to a name it carries',
};

/** A master's maxmemory-policy could evict the system's keys, and TG_EVICTION_POLICY=refuse. */
export class EvictionPolicyError extends Error {
  override readonly name = 'EvictionPolicyError';
  constructor(readonly node: string, policy: string, risk: string) {
    super(
      `maxmemory-policy on ${node} is '${policy}', which could evict ${risk}. Set it to noeviction ` +
        `(redis-cli -h <host> -p <port> CONFIG SET maxmemory-policy noeviction), or set ` +
        `TG_EVICTION_POLICY=warn to start anyway.`,
    );
  }
}

/** The Redis user may not read notify-keyspace-events (CONFIG GET denied by an ACL). */
export class NotificationsUncheckedError extends Error {
  override readonly name = 'NotificationsUncheckedError';
  constructor(readonly node: string, denial: string) {
    super(
      `cannot check notify-keyspace-events on ${node}: CONFIG GET was refused (${denial}). Either grant the ` +
        `worker's user +config|get (the README's ACL line does), or make sure every master has at least ` +
        `'K${REQUIRED_CLASSES}' and set TG_CHECK_NOTIFICATIONS=0 to skip the check.`,
    );
  }
}

/**
 * The project's Redis cannot be used at start: no seed can be reached, or (`clusterDown`) the
 * seeds that answer say their Redis Cluster is down, so that every command would fail with
 * CLUSTERDOWN until the failing master is back or a replica took over.
 */
export class RedisUnavailableError extends Error {
  override readonly name = 'RedisUnavailableError';
  constructor(
    readonly url: string,
    cause: unknown,
    readonly clusterDown = false,
  ) {
    const hint = TLS_HINTS[(cause as NodeJS.ErrnoException | undefined)?.code ?? ''];
    const why = `${cause instanceof Error ? cause.message : String(cause)}${hint ? ` (${hint})` : ''}`;
    super(clusterDown ? `the Redis Cluster at ${url} (TG_REDIS_URL) is down: ${why}` : `cannot reach Redis at ${url} (TG_REDIS_URL): ${why}`);
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

/** An error's message, or what was thrown as text when it is no Error. */
export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
