/**
 * What a worker's start asks of Redis, under one deadline (TG_CONNECT_TIMEOUT_MS). A Redis that is
 * unreachable or says its cluster is down is waited for; so is a step that hears what a failover
 * gives (a master frozen or dead, its replica not yet promoted: timeouts, CLUSTERDOWN), asked again
 * instead of ending the worker. What a working Redis would answer the same way (a denied command, a
 * bad setting) ends the start at once.
 */
import { setTimeout } from 'node:timers/promises';
import type { RedisSettings } from './config.js';
import { messageOf, RedisUnavailableError } from './errors.js';
import type { Logger } from './logger.js';
import { ANSWER_WAIT_MS, answerWithin, backoff, detectTarget, refreshRouting, unanswered, type RedisClient, type RedisTarget } from './redis.js';

/** What a Redis Cluster answers while a failover is under way, or what ioredis says while it replaces a connection. */
const FAILOVER_ANSWERS = [/^CLUSTERDOWN/, /^TRYAGAIN/, /^LOADING/, /^MASTERDOWN/, /^Failed to refresh slots cache/, /^CLUSTER SLOTS answered by no master/];

/** Whether an error is one a failover gives, gone once a replica took over. */
export function passesWithFailover(err: unknown): boolean {
  return unanswered(err) || FAILOVER_ANSWERS.some((answer) => answer.test(messageOf(err)));
}

/** A failure worth waiting out: the line to log while waiting, or null (fatal). */
type Waitable = (err: unknown) => { message: string; meta: Record<string, unknown> } | null;

export class StartSteps {
  private readonly deadline: number;
  /** Clients whose slot maps are read again before a step is retried: a timeout moves no slot, a new read does. */
  private readonly routing: RedisClient[] = [];

  /** `signal` ends any wait at once (a stop asked for meanwhile), rejecting with its reason. */
  constructor(
    private readonly timeoutMs: number,
    private readonly signal: AbortSignal,
    private readonly logger: Logger,
  ) {
    this.deadline = Date.now() + timeoutMs;
  }

  /**
   * The first reachable seed. A cluster that says it is down is waited for too: a worker started
   * during a failover would otherwise die on its first command.
   */
  target(settings: RedisSettings): Promise<RedisTarget> {
    return this.retry(
      () => detectTarget(settings, { up: true }),
      (err) => (err instanceof RedisUnavailableError ? { message: err.clusterDown ? 'Redis Cluster down; retrying' : 'Redis unreachable; retrying', meta: { url: settings.display, err: err.message } } : null),
      (err) => err,
    );
  }

  /** Clients the steps use: a frozen master's slots are sent to its replica once it took over. */
  routeBy(...clients: RedisClient[]): void {
    this.routing.push(...clients);
  }

  /** One step of the start, asked again while it fails as a failover makes it. */
  run<T>(step: string, call: () => Promise<T>): Promise<T> {
    return this.retry(
      call,
      (err) => (passesWithFailover(err) ? { message: 'a start step failed as during a failover; retrying', meta: { step, err: messageOf(err) } } : null),
      (err) => new Error(`start step '${step}' still failed after TG_CONNECT_TIMEOUT_MS=${this.timeoutMs}: ${messageOf(err)}`, { cause: err }),
    );
  }

  /**
   * A step that may be asked twice (a read, or a write whose repeat changes nothing), also asked
   * again when ANSWER_WAIT_MS pass without an answer: a master frozen before its replica took over
   * never answers, and waiting out the command timeout held the start that long after the
   * promotion. Earlier asks stay in flight; the first answer of any is taken.
   */
  ask<T>(step: string, call: () => Promise<T>): Promise<T> {
    let answered!: (value: T) => void;
    const answer = new Promise<T>((resolve) => (answered = resolve));
    return this.run(step, async () => {
      const asked = call();
      // An earlier ask that fails later (its command timeout) fails no later ask: only the newest's failure counts.
      asked.then(answered, () => undefined);
      return answerWithin(Promise.race([answer, asked]), ANSWER_WAIT_MS);
    });
  }

  private async retry<T>(call: () => Promise<T>, waitable: Waitable, late: (err: unknown) => unknown): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      this.signal.throwIfAborted();
      try {
        return await call();
      } catch (err) {
        const wait = waitable(err);
        if (wait === null) throw err;
        if (Date.now() >= this.deadline) throw late(err);
        this.logger.warn(wait.message, wait.meta);
        this.routing.forEach(refreshRouting);
        // An aborted pause rejects with a generic AbortError: the signal's own reason is what callers know.
        await setTimeout(Math.min(backoff(attempt), Math.max(0, this.deadline - Date.now())), undefined, { signal: this.signal }).catch(() => this.signal.throwIfAborted());
      }
    }
  }
}
