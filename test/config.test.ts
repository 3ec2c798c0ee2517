import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, parseRedisUrl } from '../lib/config.js';
import { ConfigError } from '../lib/errors.js';

function problems(env: Record<string, string>, argv: string[] = []): string[] {
  try {
    loadConfig(env, argv);
  } catch (err) {
    if (err instanceof ConfigError) return [...err.problems];
    throw err;
  }
  return [];
}

describe('config', () => {
  it('has the documented defaults', () => {
    const c = loadConfig({}, []);
    expect(c.prefix).to.equal('tg');
    expect(c.watch).to.equal('*');
    expect(c.partitions).to.equal(271);
    expect(c.leaseTtlMs).to.equal(3000);
    expect(c.renewIntervalMs).to.equal(1000);
    expect(c.httpPort).to.equal(null);
    expect(c.redis.seeds).to.deep.equal([{ host: '127.0.0.1', port: 6379 }]);
  });

  it('reads environment variables, and a flag wins over its variable', () => {
    const c = loadConfig({ TG_PARTITIONS: '100', TG_PREFIX: 'env' }, ['--prefix', 'flag', '--lease-ttl-ms=900']);
    expect(c.partitions).to.equal(100);
    expect(c.prefix).to.equal('flag');
    expect(c.leaseTtlMs).to.equal(900);
    expect(c.renewIntervalMs).to.equal(300);
  });

  it('reads the TLS files at start, and names what does not fit: a missing file, TLS settings without rediss://, a certificate without its key', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tg-pem-'));
    try {
      const pem = join(dir, 'ca.pem');
      writeFileSync(pem, '-----BEGIN CERTIFICATE-----\nMII\n-----END CERTIFICATE-----\n');
      writeFileSync(join(dir, 'not.pem'), 'hello');
      const c = loadConfig({ TG_REDIS_URL: 'rediss://127.0.0.1:6380', TG_TLS_CA: pem, TG_TLS_SERVERNAME: 'redis.internal' }, []);
      expect(c.redis.tlsFiles?.ca?.toString()).to.contain('BEGIN CERTIFICATE');
      expect(c.redis.tlsFiles?.servername).to.equal('redis.internal');
      expect(problems({ TG_REDIS_URL: 'rediss://h:1', TG_TLS_CA: join(dir, 'missing.pem') })[0]).to.match(/^TG_TLS_CA: cannot read .*ENOENT/);
      expect(problems({ TG_REDIS_URL: 'rediss://h:1', TG_TLS_CA: join(dir, 'not.pem') })[0]).to.match(/^TG_TLS_CA: .* not a PEM file/);
      expect(problems({ TG_REDIS_URL: 'redis://h:1', TG_TLS_CA: pem })[0]).to.equal('TG_TLS_CA: set, but TG_REDIS_URL is not rediss:// (TLS)');
      expect(problems({ TG_REDIS_URL: 'rediss://h:1' }, ['--tls-cert', pem])[0]).to.equal('TG_TLS_KEY: needed with --tls-cert (mutual TLS takes both)');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('takes a boolean flag without a value', () => {
    expect(loadConfig({}, ['--configure-notifications']).configureNotifications).to.equal(true);
    expect(loadConfig({ TG_CONFIGURE_NOTIFICATIONS: '1' }, []).configureNotifications).to.equal(true);
    expect(loadConfig({ TG_CONFIGURE_NOTIFICATIONS: '0' }, []).configureNotifications).to.equal(false);
  });

  it('names the setting of every bad value, all at once', () => {
    const found = problems({ TG_PARTITIONS: 'abc', TG_CONCURRENCY: '0' }, ['--log-level', 'loud', '--bogus']);
    expect(found).to.have.length(4);
    expect(found.join('\n')).to.contain('TG_PARTITIONS').and.contain('TG_CONCURRENCY').and.contain('--log-level').and.contain("'--bogus'");
  });

  it('rejects zero partitions and more than there are slots', () => {
    expect(problems({ TG_PARTITIONS: '0' })[0]).to.contain('TG_PARTITIONS');
    expect(problems({}, ['--partitions', '16385'])[0]).to.contain('--partitions');
  });

  it('rejects a lease TTL not above the renew interval', () => {
    const [p] = problems({ TG_LEASE_TTL_MS: '1000', TG_RENEW_INTERVAL_MS: '1000' });
    expect(p).to.contain('TG_LEASE_TTL_MS').and.contain('TG_RENEW_INTERVAL_MS');
    expect(problems({ TG_LEASE_TTL_MS: '1000', TG_RENEW_INTERVAL_MS: '600' })[0]).to.contain('TG_RENEW_INTERVAL_MS');
  });

  it('rejects unparseable Redis URLs', () => {
    expect(problems({ TG_REDIS_URL: 'not a url' })[0]).to.contain('TG_REDIS_URL');
    expect(problems({ TG_REDIS_URL: 'http://localhost:6379' })[0]).to.contain('redis://');
    expect(problems({}, ['--redis-url', 'redis://a:1/x'])[0]).to.contain('--redis-url');
    expect(problems({}, ['--redis-url']))
      .to.have.length(1)
      .and.satisfy((p: string[]) => p[0]!.includes('needs a value'));
  });

  it('rejects a prefix that would break key hash tags', () => {
    expect(problems({ TG_PREFIX: 'a{b}' })[0]).to.contain('TG_PREFIX');
    expect(problems({ TG_PREFIX: 'a:b' })[0]).to.contain('TG_PREFIX');
  });

  it('parses seeds, credentials, TLS and the database', () => {
    const r = parseRedisUrl('rediss://user:s%40cret@h1:7000,rediss://h2:7001');
    expect(r.seeds).to.deep.equal([
      { host: 'h1', port: 7000 },
      { host: 'h2', port: 7001 },
    ]);
    expect(r.username).to.equal('user');
    expect(r.password).to.equal('s@cret');
    expect(r.tls).to.equal(true);
    expect(r.display).to.not.contain('cret');
    expect(parseRedisUrl('redis://[::1]:6380/3')).to.include({ db: 3 });
    expect(parseRedisUrl('redis://[::1]:6380/3').seeds[0]).to.deep.equal({ host: '::1', port: 6380 });
  });
});
