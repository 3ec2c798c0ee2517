/**
 * TLS-only Redis servers (standalone and a 3-master cluster, bus and replication over TLS too)
 * with a private CA that also signs the clients' certificates (tls-auth-clients yes): a worker
 * and `tg` reach them with TG_TLS_CA, TG_TLS_CERT and TG_TLS_KEY, and an untrusted CA is named.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { keyId } from '../lib/coalescer.js';
import { loadConfig } from '../lib/config.js';
import { startLocalRedis, type LocalRedis } from '../lib/local-redis.js';
import { connect, detectTarget } from '../lib/redis.js';
import type { GeneratorWorker } from '../lib/worker.js';
import { runLoadtest } from './helpers/loadtest.js';
import { randomPrefix } from './helpers/redis.js';
import { makeCertificates, type TestCertificates } from './helpers/tls.js';
import { startWorker, testConfig, waitForFinal, type Expected } from './helpers/worker.js';

const TG = fileURLToPath(new URL('../bin/tg.js', import.meta.url));

describe('over TLS, with a private CA and client certificates', function () {
  this.timeout(120000);
  let certs: TestCertificates;
  const servers: Partial<Record<'standalone' | 'cluster', LocalRedis>> = {};
  let worker: GeneratorWorker | undefined;
  const tlsEnv = () => ({ TG_TLS_CA: certs.ca, TG_TLS_CERT: certs.clientCert, TG_TLS_KEY: certs.clientKey });

  before(async () => {
    certs = makeCertificates();
    const tls = { ca: certs.ca, cert: certs.serverCert, key: certs.serverKey };
    [servers.standalone, servers.cluster] = await Promise.all([startLocalRedis({ mode: 'standalone', tls }), startLocalRedis({ mode: 'cluster', tls })]);
  });
  after(async () => {
    await Promise.all(Object.values(servers).map((s) => s.stop()));
    rmSync(certs.dir, { recursive: true, force: true });
  });
  afterEach(async () => {
    await worker?.stop();
    worker = undefined;
  });

  for (const mode of ['standalone', 'cluster'] as const) {
    it(`makes tickets through a TLS-only ${mode} Redis, and tg reads them back`, async () => {
      const url = servers[mode]!.url;
      expect(url).to.match(/^rediss:\/\//);
      const prefix = randomPrefix();
      const config = testConfig(url, prefix, { TG_WATCH: `${prefix}-k:*`, ...tlsEnv() });
      const redis = connect(await detectTarget(config.redis));
      try {
        worker = await startWorker(config);
        const expected: Expected = new Map();
        for (let i = 0; i < 100; i++) {
          await redis.set(`${prefix}-k:${i}`, `v${i}`);
          expected.set(keyId(Buffer.from(`${prefix}-k:${i}`)), `v${i}`);
        }
        await waitForFinal(redis, prefix, expected);
        const tg = spawnSync(process.execPath, [TG, 'info', '--json'], { env: { ...process.env, TG_REDIS_URL: url, TG_PREFIX: prefix, ...tlsEnv() }, encoding: 'utf8', timeout: 30000 });
        expect(tg.status, tg.stderr).to.equal(0);
        const info = JSON.parse(tg.stdout) as { members: unknown[]; ticketsTotal: number };
        expect(info.members).to.have.length(1);
        expect(info.ticketsTotal).to.be.at.least(100);
      } finally {
        await redis.quit();
      }
    });

    it(`runs the load test over TLS on the ${mode} Redis: 0 keys lost`, async () => {
      const { code, report, output } = await runLoadtest(servers[mode]!.url, ['--workers', '1', '--chaos', 'none', '--writes', '3000', '--keys', '500', '--rate', '1000'], tlsEnv());
      expect(report, output).to.not.equal(undefined);
      expect(code, output).to.equal(0);
      expect(report!.writes).to.equal(3000);
      expect(report!.keysLost).to.equal(0);
    });

    it(`names TG_TLS_CA when the ${mode} server's CA is not trusted`, async () => {
      let refused: unknown;
      await detectTarget(loadConfig({ TG_REDIS_URL: servers[mode]!.url }, []).redis).catch((err: unknown) => (refused = err));
      expect(String(refused)).to.contain('TG_TLS_CA').and.contain('certificate');
    });
  }
});
