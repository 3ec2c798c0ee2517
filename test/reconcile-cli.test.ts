/** `tg reconcile`: one pass on demand that reports what differs, and appends it with --repair. */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { Keys } from '../lib/keys.js';
import { keySlot, partitionOfSlot } from '../lib/slots.js';
import { exitOf, killIfRunning, spawnWorker, type WorkerProcess } from './helpers/process.js';
import { clusterUrl, randomPrefix } from './helpers/redis.js';
import { client, waitForConvergence } from './helpers/worker.js';

const TG = fileURLToPath(new URL('../bin/tg.js', import.meta.url));
const run = promisify(execFile);

describe('tg reconcile', function () {
  this.timeout(120000);
  let worker: WorkerProcess | undefined;
  afterEach(() => killIfRunning(worker));

  it('reports keys whose newest ticket is not what Redis holds, and appends them to the dirty streams with --repair', async () => {
    const prefix = randomPrefix();
    const redis = await client(clusterUrl());
    const env = { ...process.env, TG_REDIS_URL: clusterUrl(), TG_PREFIX: prefix, TG_WATCH: `${prefix}-k:*`, TG_RECONCILE_GRACE_MS: '200' };
    try {
      worker = spawnWorker({ TG_REDIS_URL: clusterUrl(), TG_PREFIX: prefix, TG_WATCH: `${prefix}-k:*`, TG_RECONCILE_RATE: '0' });
      await worker.waitForLog('started');
      const keys = Array.from({ length: 50 }, (_, i) => `${prefix}-k:${i}`);
      for (const k of keys) await redis.set(k, `v:${k}`);
      await waitForConvergence(redis, prefix, keys, 30000);
      worker.proc.kill('SIGINT');
      expect(await exitOf(worker, 30000)).to.equal(0);

      const clean = JSON.parse((await run(process.execPath, [TG, 'reconcile', '--json'], { env })).stdout) as { differ: unknown[]; keysCompared: number };
      expect(clean.differ).to.deep.equal([]);
      expect(clean.keysCompared).to.be.at.least(50);

      // Behind the workers' back: nobody listens now.
      await redis.set(keys[3]!, 'changed');
      await redis.del(keys[4]!);
      const { stdout } = await run(process.execPath, [TG, 'reconcile', '--json'], { env });
      const report = JSON.parse(stdout) as { differ: { key: string; exists: boolean }[]; repaired: boolean };
      expect(report.differ.map((d) => [d.key, d.exists]).sort()).to.deep.equal([[keys[3], true], [keys[4], false]].sort());
      expect(report.repaired).to.equal(false);

      const partition = partitionOfSlot(keySlot(keys[3]!), 271);
      const one = await run(process.execPath, [TG, 'reconcile', '--partition', String(partition), '--repair'], { env });
      expect(one.stdout).to.match(/1 partition\(s\), \d+ keys compared, [12] differ/);
      expect(await redis.xlen(new Keys(prefix).dirty(partition))).to.be.at.least(1);
      const bad = await run(process.execPath, [TG, 'reconcile', '--partition', '999'], { env }).then(
        () => ({ code: 0, stderr: '' }),
        (err: { code: number; stderr: string }) => err,
      );
      expect(bad.code).to.equal(2);
      expect(bad.stderr).to.contain("--partition: '999' is not a partition");
    } finally {
      await redis.quit();
    }
  });
});
