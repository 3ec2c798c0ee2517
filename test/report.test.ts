/**
 * The load test's HTML report in a real browser: headless Chromium renders it from a real run,
 * every chart draws points and a screenshot is written; a report with no samples fails. Runs
 * when Chromium is installed (Debian: chromium) and says so when it is not.
 */
import { expect } from 'chai';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chartsOf, emptyCharts, findChromium, renderReport } from '../loadtest/render-report.js';
import { html, loadChartLibrary, type Report } from '../loadtest/report.js';
import { runLoadtest } from './helpers/loadtest.js';
import { clusterUrl } from './helpers/redis.js';

describe('the load-test report', function () {
  this.timeout(120000);

  it('tells an empty chart from a drawn one', () => {
    expect(emptyCharts(chartsOf('<body data-charts="[{&quot;title&quot;:&quot;Backlog&quot;,&quot;points&quot;:[12]}]">'))).to.equal('');
    expect(emptyCharts(chartsOf('<body data-charts="[{&quot;title&quot;:&quot;Freshness&quot;,&quot;points&quot;:[9,0]}]">'))).to.contain('Freshness');
    expect(emptyCharts(chartsOf('<body><p>no script ran</p></body>'))).to.contain('no chart');
  });

  describe('in headless Chromium', () => {
    const chromium = findChromium();
    let dir: string;
    before(function () {
      if (!chromium) {
        process.stdout.write('      chromium not installed (Debian: apt-get install -y chromium): the report is not rendered in a browser\n');
        this.skip();
      }
      dir = mkdtempSync(join(tmpdir(), 'tg-report-'));
    });
    after(() => dir && rmSync(dir, { recursive: true, force: true }));

    it('draws every chart of a real SIGINT run, with points, offline, and saves a screenshot', async () => {
      const { code, report, output } = await runLoadtest(clusterUrl(), ['--workers', '2', '--chaos', 'sigint', '--interval', '3', '--duration', '8', '--rate', '500', '--keys', '500']);
      expect(code, output).to.equal(0);
      expect(report!.signals.length).to.be.at.least(1);
      const page = join(dir, 'report.html');
      const text = html(report!, loadChartLibrary());
      // Offline: nothing is fetched from anywhere.
      expect(text).to.not.match(/<script[^>]+src=|<link[^>]+href=/);
      writeFileSync(page, text);
      const png = join(dir, 'report.png');
      const { problem, charts } = renderReport(chromium!, page, png);
      expect(problem).to.equal('');
      expect(charts!.map((c) => c.title)).to.deep.equal(['Throughput', 'Backlog', 'Freshness (write to ticket)', 'Workers alive']);
      expect(statSync(png).size).to.be.above(20000);
      process.stdout.write(`      measured: ${charts!.map((c) => `${c.title} ${c.points.join('+')} points`).join(', ')}; screenshot ${statSync(png).size} bytes\n`);
    });

    it('fails a report whose charts have nothing to draw', () => {
      const page = join(dir, 'empty.html');
      const empty = { command: 'none', machine: 'none', signals: [], samples: [], freshnessMs: { p50: NaN, p95: NaN, p99: NaN, max: NaN } } as unknown as Report;
      writeFileSync(page, html({ ...empty, keysLost: 0, lossPercent: 0, writeRate: 0, ticketsPerWrite: 0, settleSeconds: 0, keysOffRedis: 0, convergeSeconds: 0, sustainedTicketsPerSec: 0 }, loadChartLibrary()));
      expect(renderReport(chromium!, page, join(dir, 'empty.png')).problem).to.contain('empty chart');
    });
  });
});
