/** A worker's start against a Redis that stops answering for a while, and against one that refuses. */
import { expect } from 'chai';
import { Redis, type RedisOptions } from 'ioredis';
import { startLocalRedis } from '../lib/local-redis.js';
import { silentLogger } from '../lib/logger.js';
import { ANSWER_WAIT_MS, clockOffset } from '../lib/redis.js';
import { passesWithFailover, StartSteps } from '../lib/start-steps.js';
import { waitFor } from './helpers/redis.js';

/** A standalone Redis holding k = 'answered', stopped (SIGSTOP) while `body` runs, until it calls `resume`. */
async function whileStopped(options: RedisOptions, body: (redis: Redis, resume: () => void) => Promise<void>): Promise<void> {
  const server = await startLocalRedis({ mode: 'standalone' });
  const node = server.nodes[0]!;
  const redis = new Redis({ host: '127.0.0.1', port: node.port, ...options });
  let stopped = false;
  const resume = () => {
    if (stopped) process.kill(node.pid!, 'SIGCONT');
    stopped = false;
  };
  try {
    await redis.set('k', 'answered');
    process.kill(node.pid!, 'SIGSTOP');
    stopped = true;
    await body(redis, resume);
  } finally {
    resume();
    redis.disconnect();
    await server.stop();
  }
}

describe('start steps', () => {
  it('tells what a failover answers from what a working Redis refuses', () => {
    for (const passing of ['Command timed out', 'CLUSTERDOWN The cluster is down', 'TRYAGAIN Multiple keys request during rehashing of slot', 'LOADING Redis is loading the dataset in memory', 'Connection is closed.']) {
      expect(passesWithFailover(new Error(passing)), passing).to.equal(true);
    }
    for (const fatal of ["NOPERM User tg has no permissions to run the 'time' command", 'ERR unknown command', 'OOM command not allowed when used memory > maxmemory']) {
      expect(passesWithFailover(new Error(fatal)), fatal).to.equal(false);
    }
  });

  it('asks a step again while Redis does not answer (SIGSTOP), and has its answer once Redis is back', async function () {
    this.timeout(30000);
    await whileStopped({ commandTimeout: 300 }, async (redis, resume) => {
      const warnings: unknown[] = [];
      const logger = silentLogger();
      logger.warn = ((...args: unknown[]) => (warnings.push(args), logger)) as typeof logger.warn;
      const steps = new StartSteps(20000, new AbortController().signal, logger);
      const answer = steps.run('read', () => redis.get('k'));
      // Several timeouts seen and retried before Redis answers again.
      await waitFor(() => warnings.length >= 2, { timeoutMs: 10000, what: 'two retried timeouts' });
      resume();
      expect(await answer).to.equal('answered');
    });
  });

  it('asks a repeatable step anew when it goes unanswered, not after the command timeout: a frozen master and its promoted replica', async function () {
    this.timeout(30000);
    // No command timeout: only a new ask gets past the frozen server.
    await whileStopped({}, async (frozen) => {
      const replica = await startLocalRedis({ mode: 'standalone' });
      const promoted = new Redis({ host: '127.0.0.1', port: replica.nodes[0]!.port });
      try {
        await promoted.set('k', 'promoted');
        const steps = new StartSteps(20000, new AbortController().signal, silentLogger());
        const asks: string[] = [];
        // The first ask reaches the frozen master; later ones route as a slot map read anew would.
        const answer = await steps.ask('read', () => {
          asks.push(asks.length === 0 ? 'frozen' : 'promoted');
          return (asks.length === 1 ? frozen : promoted).get('k');
        });
        expect(answer).to.equal('promoted');
        expect(asks).to.deep.equal(['frozen', 'promoted']);
      } finally {
        promoted.disconnect();
        await replica.stop();
      }
    });
  });

  it('takes the first answer of any ask: an earlier one that answers late is not asked over again', async function () {
    this.timeout(30000);
    await whileStopped({}, async (redis, resume) => {
      const steps = new StartSteps(20000, new AbortController().signal, silentLogger());
      let asks = 0;
      // Every ask waits on the stopped server until it goes on; the first's answer ends the step.
      const answer = steps.ask('read', () => (++asks === 1 ? redis.get('k') : new Promise<string>(() => undefined)));
      await waitFor(() => asks >= 2, { timeoutMs: 10000, what: 'a second ask' });
      resume();
      expect(await answer).to.equal('answered');
    });
  });

  it('fails no later ask when an earlier one times out at last (a command timeout longer than the promotion)', async function () {
    this.timeout(30000);
    const steps = new StartSteps(20000, new AbortController().signal, silentLogger());
    let asks = 0;
    const answer = await steps.ask('read', () => {
      // The first ask's command timeout comes while the second waits; the third reaches the promoted replica.
      if (++asks === 1) return new Promise<string>((_, reject) => setTimeout(() => reject(new Error('Command timed out')), ANSWER_WAIT_MS + 500));
      if (asks === 2) return new Promise<string>(() => undefined);
      return Promise.resolve('promoted');
    });
    expect(answer).to.equal('promoted');
    expect(asks).to.equal(3);
  });

  it('takes no server time that came later than its bound (a stalled master), and asks again', async function () {
    this.timeout(30000);
    // The first ask reaches one stalled server, later asks another, let go only once the first answered.
    await whileStopped({}, (first, resumeFirst) =>
      whileStopped({}, async (later, resumeLater) => {
        const steps = new StartSteps(20000, new AbortController().signal, silentLogger());
        let asks = 0;
        let firstSettled = false;
        const offset = steps.ask('server time', () => {
          if (++asks > 1) return clockOffset(later, 1000);
          return clockOffset(first, 1000).finally(() => (firstSettled = true));
        });
        await waitFor(() => asks >= 2, { timeoutMs: 10000, what: 'a second ask' });
        // Answered 2 s or more after it was sent: off by up to half of that, more than the bound allows.
        resumeFirst();
        await waitFor(() => firstSettled, { timeoutMs: 5000, what: 'the first ask settled' });
        resumeLater();
        // Both servers read this machine's clock: the true offset is 0.
        expect(Math.abs(await offset)).to.be.below(500);
      }),
    );
  });

  it('gives up at the deadline naming TG_CONNECT_TIMEOUT_MS, and at once on what a working Redis refuses', async () => {
    const steps = new StartSteps(200, new AbortController().signal, silentLogger());
    let calls = 0;
    const late = await steps.run('layout', () => Promise.reject(new Error(`Command timed out ${++calls}`))).catch((err: Error) => err);
    expect(String(late)).to.contain("start step 'layout'").and.contain('TG_CONNECT_TIMEOUT_MS=200');
    expect(calls).to.be.greaterThan(1);
    calls = 0;
    const refused = await steps.run('layout', () => Promise.reject(new Error(`NOPERM no ${++calls}`))).catch((err: Error) => err);
    expect(String(refused)).to.equal('Error: NOPERM no 1');
  });
});
