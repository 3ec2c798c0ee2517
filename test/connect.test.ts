/** The cluster connections `connect` makes: what they leave behind when they end, and what waits on a master replaced. */
import { spawn } from 'node:child_process';
import { expect } from 'chai';
import { refreshingRoutes } from '../lib/redis.js';
import { keySlot } from '../lib/slots.js';
import { withFrozenMaster } from './helpers/frozen-master.js';
import { clusterUrl, outcomeWithin } from './helpers/redis.js';

const REDIS_MODULE = new URL('../lib/redis.js', import.meta.url).href;
const CONFIG_MODULE = new URL('../lib/config.js', import.meta.url).href;

describe('cluster connections', () => {
  it('let the process exit when quit() comes while a periodic slot-map read is under way', async function () {
    this.timeout(30000);
    // A periodic read is held 1 s (its callback delayed), and the client quits meanwhile.
    const script = `
      const { connect, detectTarget } = await import(${JSON.stringify(REDIS_MODULE)});
      const { loadConfig } = await import(${JSON.stringify(CONFIG_MODULE)});
      const client = connect(await detectTarget(loadConfig({ TG_REDIS_URL: ${JSON.stringify(clusterUrl())} }, []).redis));
      await client.get('x');
      const read = client.refreshSlotsCache.bind(client);
      let reading;
      const underWay = new Promise((resolve) => (reading = resolve));
      client.refreshSlotsCache = (callback) => {
        reading();
        read((err) => setTimeout(() => callback?.(err), 1000));
      };
      await underWay;
      await client.quit();
      process.stdout.write('quit\\n');
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    let timer: NodeJS.Timeout | undefined;
    const outcome = await new Promise<string>((resolve) => {
      child.on('exit', (code) => resolve(`exit ${code}`));
      timer = setTimeout(() => resolve('still running 20 s after its start'), 20000);
    });
    clearTimeout(timer);
    if (child.exitCode === null) child.kill('SIGKILL');
    expect(out).to.contain('quit');
    expect(outcome, out).to.equal('exit 0');
  });
});

describe('cluster connections while a master is frozen and its replica takes over', function () {
  this.timeout(60000);

  it('send what waits on the frozen master to the replica that took over when their slot map is read again meanwhile (refreshingRoutes)', async () => {
    const key = 'k';
    await withFrozenMaster(keySlot(key), 60000, async ({ redis, replicated, freeze, promote }) => {
      await redis.set(key, 'v');
      await replicated();
      freeze();
      // Not wrapped by followFailover: a command of any caller (BullMQ's, a leave's ZREM). ioredis
      // drops the node the new map no longer lists and sends what waited on it where the map says.
      const waiting = outcomeWithin(refreshingRoutes([redis], redis.get(key)), 20000);
      await promote();
      expect(await waiting).to.equal('v');
    });
  });
});
