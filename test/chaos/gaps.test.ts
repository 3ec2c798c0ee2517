/**
 * Gaps no subscriber heard: every subscriber connection of a master killed, a standalone
 * Redis restarted with its data, and the SIGKILL restart loop under load. Writes made
 * while nobody listened are repaired; 0 final values may be lost.
 */
import { expect } from 'chai';
import { Redis } from 'ioredis';
import { keyId } from '../../lib/coalescer.js';
import { parseRedisUrl } from '../../lib/config.js';
import { startLocalRedis, type LocalRedis } from '../../lib/local-redis.js';
import { masters, type RedisClient } from '../../lib/redis.js';
import { keySlot } from '../../lib/slots.js';
import { killIfRunning, startWorkers, stopWorkers, type WorkerProcess } from '../helpers/process.js';
import { runLoadtest } from '../helpers/loadtest.js';
import { clusterUrl, randomPrefix, waitFor } from '../helpers/redis.js';
import { backgroundLoad, type BackgroundLoad } from '../helpers/load.js';
import { client, waitForFinal, type Expected } from '../helpers/worker.js';

function measured(line: string): void {
  process.stdout.write(`      measured: ${line}\n`);
}

/** Sets (no deletes: a deletion nobody heard leaves no key for a scan to find) at a bounded pace. */
function steadyLoad(redis: RedisClient, prefix: string, expected: Expected, keys: number, perTick: number): BackgroundLoad {
  return backgroundLoad({ perTick, pauseMs: 10, max: 100000 }, async (n) => {
    const key = `${prefix}-k:load:${n % keys}`;
    const value = `v${n}`;
    await redis.set(key, value);
    // Recorded once acknowledged: a write that failed during an outage is no final value.
    expected.set(keyId(Buffer.from(key)), value);
  });
}

describe('gap repair under chaos', function () {
  this.timeout(300000);
  let procs: WorkerProcess[] = [];
  afterEach(() => procs.forEach(killIfRunning));

  it('loses 0 when CLIENT KILL TYPE pubsub cuts every subscriber of a master mid-load', async () => {
    const prefix = randomPrefix();
    const redis = await client(clusterUrl());
    try {
      procs = await startWorkers(clusterUrl(), prefix, 2, redis, { TG_LOG_LEVEL: 'debug' });
      const expected: Expected = new Map();
      const load = steadyLoad(redis, prefix, expected, 2000, 10);
      await waitFor(() => load.writes() > 1500, { timeoutMs: 20000, what: 'load before the kill' });
      const [master] = await masters(redis, { cluster: true, settings: parseRedisUrl(clusterUrl()) });
      const inMaster = (k: string) => master!.ranges.some(([a, b]) => keySlot(k) >= a && keySlot(k) <= b);
      const markers = Array.from({ length: 200 }, (_, i) => `${prefix}-k:marker:${i}`).filter(inMaster).slice(0, 20);
      const direct = new Redis({ host: master!.host, port: master!.port });
      // The workers whose partitions live on this master listen there (each worker only where its partitions live).
      const listeners = String(await direct.client('LIST')).split('\n').filter((l) => /name=tg-keyspace/.test(l)).length;
      // One pipeline on one connection: Redis runs these writes right after the kill, before
      // any subscriber can reconnect, so only the repair can ticket them.
      const pipeline = direct.pipeline().client('KILL', 'TYPE', 'pubsub');
      for (const m of markers) pipeline.set(m, `marker:${m}`);
      const replies = await pipeline.exec();
      direct.disconnect();
      const killed = replies![0]![1] as number;
      for (const m of markers) expected.set(keyId(Buffer.from(m)), `marker:${m}`);
      await waitFor(() => load.writes() > 4000, { timeoutMs: 20000, what: 'load after the kill' });
      await load.stop();
      await waitForFinal(redis, prefix, expected, 60000);
      const repairs = procs.flatMap((w) => w.logs.filter((l) => l.message === 'partitions compared with the ticket index'));
      expect(listeners).to.be.at.least(1);
      expect(killed).to.be.at.least(listeners);
      expect(repairs.length).to.be.greaterThan(0);
      measured(`subscriber kill: ${killed} connections cut, ${load.writes()} writes + ${markers.length} unheard markers, 0 lost; repair marked ${repairs.reduce((n, l) => n + Number(l.keysMarked), 0)} keys in ${repairs.map((l) => l.ms).join('+')} ms`);
      await stopWorkers(procs, 'SIGTERM');
    } finally {
      await redis.quit();
    }
  });

  it('loses 0 when a standalone Redis restarts mid-load with its data kept', async () => {
    const prefix = randomPrefix();
    const server: LocalRedis = await startLocalRedis({ mode: 'standalone', appendonly: true });
    const redis = await client(server.url);
    // The restart resets this client's connection too; it reconnects, and the load retries.
    redis.on('error', () => undefined);
    try {
      procs = await startWorkers(server.url, prefix, 2, redis, { TG_LOG_LEVEL: 'debug' });
      const expected: Expected = new Map();
      const load = steadyLoad(redis, prefix, expected, 1000, 5);
      await waitFor(() => load.writes() > 1000, { timeoutMs: 20000, what: 'load before the restart' });
      const node = server.nodes[0]!;
      await node.stop();
      await node.start();
      const direct = new Redis({ host: '127.0.0.1', port: node.port });
      const markers = Array.from({ length: 20 }, (_, i) => `${prefix}-k:after-restart:${i}`);
      for (const m of markers) {
        await direct.set(m, `marker:${m}`);
        expected.set(keyId(Buffer.from(m)), `marker:${m}`);
      }
      direct.disconnect();
      await waitFor(() => load.writes() > 3000, { timeoutMs: 30000, what: 'load after the restart' });
      await load.stop();
      await waitForFinal(redis, prefix, expected, 60000);
      const repairs = procs.flatMap((w) => w.logs.filter((l) => l.message === 'partitions compared with the ticket index'));
      expect(repairs.length).to.be.greaterThan(0);
      measured(`Redis restart: ${load.writes()} writes + ${markers.length} markers, 0 lost; repairs marked ${repairs.reduce((n, l) => n + Number(l.keysMarked), 0)} keys`);
      await stopWorkers(procs, 'SIGTERM');
    } finally {
      await redis.quit();
      await server.stop();
    }
  });

  it('keeps 0 keys lost while a worker is SIGKILLed every 8 s for 45 s under 1,000 writes/s', async () => {
    const { code, report, output } = await runLoadtest(clusterUrl(), ['--workers', '3', '--chaos', 'sigkill', '--interval', '8', '--duration', '45', '--rate', '1000', '--keys', '3000']);
    expect(report, output).to.not.equal(undefined);
    expect(code, output).to.equal(0);
    expect(report!.signals.length).to.be.at.least(5);
    expect(report!.writeRate).to.be.at.least(950);
    expect(report!.keysLost).to.equal(0);
    measured(`SIGKILL loop: ${report!.signals.length} signals, ${report!.writes} writes at ${report!.writeRate.toFixed(0)}/s to ${report!.keys} keys, ${report!.keysLost} lost, ${report!.ticketsPerWrite.toFixed(3)} tickets per write`);
  });
});
