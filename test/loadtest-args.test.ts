/** The load test's command line (loadtest/args.ts): a bad option or value is named with the usage, before anything starts. */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';

const script = (name: string) => fileURLToPath(new URL(`../loadtest/${name}.js`, import.meta.url));

function run(name: string, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  // No TG_REDIS_URL: a run that got past its options would start a local cluster, which the timeout would show.
  const env = { PATH: process.env.PATH ?? '' };
  return new Promise((resolve) =>
    execFile(process.execPath, [script(name), ...args], { env, timeout: 20000 }, (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    ),
  );
}

describe('load test command line', () => {
  for (const [args, names] of [
    [['--workers', '2.5'], "--workers: '2.5' must be a whole number"],
    [['--chaos', 'sometimes'], "--chaos: 'sometimes' must be sigint, sigkill, none, failover or stall"],
    [['--duration', '0.5'], "--duration: '0.5' must be a number of at least 1"],
    [['--max-loss=-1'], "--max-loss: '-1' must be a number of at least 0"],
    [['--external'], '--external needs --prefix'],
    [['--wrkers', '3'], "Unknown option '--wrkers'"],
  ] as [string[], string][]) {
    it(`exits 2 naming the problem and the usage on ${args.join(' ')}`, async () => {
      const r = await run('run', ...args);
      expect(r.code).to.equal(2);
      expect(r.stderr).to.contain(names).and.contain('usage: npm run loadtest -- [options]').and.contain('--settle-timeout S');
    });
  }

  it('takes fractional seconds where seconds are asked for', async () => {
    // --interval 2.5 passes; the run then stops at the next bad value, before it starts anything.
    const r = await run('run', '--interval', '2.5', '--rate', '10.5');
    expect(r.code).to.equal(2);
    expect(r.stderr.split('\n')[0]).to.equal("--rate: '10.5' must be a whole number of at least 1");
  });

  it('prints the usage on --help and exits 0', async () => {
    const r = await run('run', '--help');
    expect(r.code).to.equal(0);
    expect(r.stdout).to.contain('usage: npm run loadtest -- [options]').and.contain('--verify-only FILE');
  });

  it('the load writer names a missing option', async () => {
    const r = await run('writer', '--url', 'redis://127.0.0.1:1', '--prefix', 'p');
    expect(r.code).to.equal(2);
    expect(r.stderr).to.contain('--out is required').and.contain('usage: node loadtest/writer.js');
  });
});
