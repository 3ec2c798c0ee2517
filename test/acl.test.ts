/**
 * The README's least-privilege ACL line, read from the README itself, on a TLS-only Redis with
 * client certificates: a worker running as that user makes tickets (reading watched keys only
 * through EVALSHA_RO, never refused a command), and the user is refused what it must not do.
 */
import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { keyId } from '../lib/coalescer.js';
import { startLocalRedis, type LocalRedis } from '../lib/local-redis.js';
import { connect, detectTarget, type RedisClient } from '../lib/redis.js';
import { GeneratorWorker } from '../lib/worker.js';
import { captureLogger } from './helpers/logs.js';
import { makeCertificates, type TestCertificates } from './helpers/tls.js';
import { testConfig, waitForFinal, type Expected } from './helpers/worker.js';

const README = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

describe('the README\'s ACL line, over TLS', function () {
  this.timeout(120000);
  let certs: TestCertificates;
  let server: LocalRedis;
  let admin: RedisClient;
  let worker: GeneratorWorker | undefined;
  const password = 'a-test-password';

  before(async () => {
    certs = makeCertificates();
    server = await startLocalRedis({ mode: 'standalone', tls: { ca: certs.ca, cert: certs.serverCert, key: certs.serverKey } });
  });
  after(async () => {
    await worker?.stop();
    await admin?.quit();
    await server.stop();
    rmSync(certs.dir, { recursive: true, force: true });
  });

  it('lets a worker make tickets, and refuses writes to watched keys, FLUSHALL, CONFIG SET and writing scripts on them', async () => {
    const tlsEnv = { TG_TLS_CA: certs.ca, TG_TLS_CERT: certs.clientCert, TG_TLS_KEY: certs.clientKey };
    const line = README.split('\n').find((l) => l.startsWith('ACL SETUSER tg-worker '));
    expect(line, 'the README has the ACL line').to.be.a('string');
    const args = line!.replace('<password>', password).split(' ').slice(1);
    admin = connect(await detectTarget(testConfig(server.url, 'tg', tlsEnv).redis));
    expect(await admin.call('ACL', ...args)).to.equal('OK');

    const url = server.url.replace('rediss://', `rediss://tg-worker:${password}@`);
    const { logger, records } = captureLogger();
    worker = new GeneratorWorker(testConfig(url, 'tg', tlsEnv), { logger });
    await worker.start();
    const expected: Expected = new Map();
    for (let i = 0; i < 50; i++) {
      await admin.set(`app:${i}`, `v${i}`);
      expected.set(keyId(Buffer.from(`app:${i}`)), `v${i}`);
    }
    await admin.hset('app:h', 'field', 'x');
    expected.set(keyId(Buffer.from('app:h')), '{"field":"x"}');
    await admin.del('app:3');
    expected.set(keyId(Buffer.from('app:3')), null);
    await waitForFinal(admin, 'tg', expected);
    expect(records.filter((r) => /NOPERM|no permissions/.test(JSON.stringify(r)))).to.deep.equal([]);

    const sha = createHash('sha1').update('return 1').digest('hex');
    const dryrun = async (...command: string[]) => String(await admin.call('ACL', 'DRYRUN', 'tg-worker', ...command).catch((err: unknown) => err));
    for (const refused of [['FLUSHALL'], ['FLUSHDB'], ['CONFIG', 'SET', 'notify-keyspace-events', ''], ['SET', 'app:1', 'x'], ['DEL', 'app:1'], ['EVALSHA', sha, '1', 'app:1'], ['KEYS', '*'], ['SCRIPT', 'FLUSH'], ['SHUTDOWN'], ['SUBSCRIBE', 'other']]) {
      expect(await dryrun(...refused), refused.join(' ')).to.match(/no permissions/);
    }
    for (const allowed of [['GET', 'app:1'], ['EVALSHA_RO', sha, '1', 'app:1'], ['XADD', 'tg:x', '*', 'a', 'b'], ['CONFIG', 'GET', 'notify-keyspace-events'], ['PSUBSCRIBE', '__keyspace@0__:*']]) {
      expect(await dryrun(...allowed), allowed.join(' ')).to.equal('OK');
    }
  });

  it('stops a worker whose user may not run CONFIG GET with a message naming both ways on, and TG_CHECK_NOTIFICATIONS=0 is one', async () => {
    const tlsEnv = { TG_TLS_CA: certs.ca, TG_TLS_CERT: certs.clientCert, TG_TLS_KEY: certs.clientKey };
    // The README's line for another prefix, as it says to write it, without CONFIG GET.
    const line = README.split('\n').find((l) => l.startsWith('ACL SETUSER tg-worker '))!;
    const args = line.replace('tg-worker', 'tg2-worker').replace('<password>', password).replaceAll('tg:*', 'tg2:*').replace(' +config|get', '').split(' ').slice(1);
    admin ??= connect(await detectTarget(testConfig(server.url, 'tg', tlsEnv).redis));
    expect(await admin.call('ACL', ...args)).to.equal('OK');
    const url = server.url.replace('rediss://', `rediss://tg2-worker:${password}@`);
    const refused = new GeneratorWorker(testConfig(url, 'tg2', tlsEnv), { logger: captureLogger().logger });
    let error: unknown;
    await refused.start().catch((err: unknown) => (error = err));
    expect(String(error)).to.contain('CONFIG GET was refused').and.contain('+config|get').and.contain('TG_CHECK_NOTIFICATIONS=0');
    await refused.stop().catch(() => undefined);

    const unchecked = new GeneratorWorker(testConfig(url, 'tg2', { ...tlsEnv, TG_CHECK_NOTIFICATIONS: '0' }), { logger: captureLogger().logger });
    try {
      await unchecked.start();
      await admin.set('tg2-app:k', 'v');
      await waitForFinal(admin, 'tg2', new Map([[keyId(Buffer.from('tg2-app:k')), 'v']]));
    } finally {
      await unchecked.stop();
    }
  });
});
