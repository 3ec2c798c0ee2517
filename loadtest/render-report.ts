/**
 * `npm run report:render -- <report.html> [out.png]`: opens a load-test report in headless
 * Chromium, fails when a chart drew nothing (or the page drew no chart at all), and saves a
 * screenshot of the whole page. Exit 0: every chart drew points and the screenshot is written;
 * 1: a chart is empty or the page did not render; 2: no Chromium (install the Debian package
 * `chromium`) or bad arguments.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

/** The Chromium on the PATH (or in CHROMIUM), null when there is none. */
export function findChromium(): string | null {
  for (const candidate of [process.env.CHROMIUM, 'chromium', 'chromium-browser', 'google-chrome']) {
    if (candidate && spawnSync(candidate, ['--version'], { stdio: 'ignore' }).status === 0) return candidate;
  }
  return null;
}

export interface ChartDrawn {
  title: string;
  /** Points drawn, per series. */
  points: number[];
}

/** The charts a rendered page recorded on <body data-charts>, or null when it recorded none. */
export function chartsOf(dom: string): ChartDrawn[] | null {
  const attribute = /<body[^>]*\sdata-charts="([^"]*)"/.exec(dom)?.[1];
  if (attribute === undefined) return null;
  return JSON.parse(attribute.replace(/&quot;/g, '"').replace(/&amp;/g, '&')) as ChartDrawn[];
}

/** What is wrong with the charts, '' when every chart drew points in every series. */
export function emptyCharts(charts: ChartDrawn[] | null): string {
  if (charts === null || charts.length === 0) return 'the page drew no chart (did its script run?)';
  const empty = charts.filter((c) => c.points.some((n) => n === 0)).map((c) => c.title);
  return empty.length ? `empty chart(s): ${empty.join(', ')}` : '';
}

const HEADLESS = ['--headless', '--no-sandbox', '--disable-gpu', '--hide-scrollbars', '--virtual-time-budget=5000'];

export function renderReport(chromium: string, page: string, png: string): { problem: string; charts: ChartDrawn[] | null } {
  const url = pathToFileURL(resolve(page)).href;
  const dom = spawnSync(chromium, [...HEADLESS, '--dump-dom', url], { encoding: 'utf8', timeout: 60000, maxBuffer: 64 * 1024 * 1024 });
  const charts = dom.status === 0 ? chartsOf(dom.stdout) : null;
  const problem = dom.status === 0 ? emptyCharts(charts) : `chromium failed (${dom.status ?? dom.signal}): ${dom.stderr.slice(0, 500)}`;
  if (problem) return { problem, charts };
  const shot = spawnSync(chromium, [...HEADLESS, '--window-size=1200,2100', `--screenshot=${resolve(png)}`, url], { encoding: 'utf8', timeout: 60000 });
  if (shot.status !== 0 || !existsSync(png) || statSync(png).size === 0) return { problem: `no screenshot written: ${shot.stderr.slice(0, 500)}`, charts };
  return { problem: '', charts };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const [page, png = (process.argv[2] ?? 'report').replace(/\.html$/, '') + '.png'] = process.argv.slice(2);
  if (!page || !existsSync(page)) {
    process.stderr.write('usage: node loadtest/render-report.js <report.html> [out.png]\n');
    process.exit(2);
  }
  const chromium = findChromium();
  if (!chromium) {
    process.stderr.write('no Chromium found (chromium, chromium-browser, or CHROMIUM=path); Debian: apt-get install -y chromium\n');
    process.exit(2);
  }
  const { problem, charts } = renderReport(chromium, page, png);
  if (problem) {
    process.stderr.write(`${page}: ${problem}\n`);
    process.exit(1);
  }
  process.stdout.write(`${charts!.map((c) => `${c.title}: ${c.points.join(' + ')} points`).join('; ')}\nscreenshot: ${png}\n`);
}
