/**
 * The load test's report: the figures, a table for people, JSON for scripts, and a
 * self-contained HTML page with charts of throughput, backlog, freshness and workers over
 * time, every signal marked and named. The charts are drawn by uPlot, bundled into the page so
 * it opens offline. Pure functions of what the run measured, but for reading uPlot's files.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

export interface Sample {
  /** Seconds since the load started. */
  t: number;
  writesPerSec: number;
  ticketsPerSec: number;
  /** Dirty-stream entries plus waiting ticket jobs. */
  backlog: number;
  workersAlive: number;
  /** Median write → ticket time of the tickets made in this second, ms. */
  freshnessMs: number | null;
  /** Its 99th percentile, ms. */
  freshnessP99Ms?: number | null;
}

export interface SignalRecord {
  t: number;
  signal: string;
  pid: number;
  /** SIGINT: ms until the worker exited. */
  exitMs?: number;
  exitCode?: number | string;
  /** SIGKILL: ms until every partition of the worker had a new owner. */
  takeoverMs?: number;
}

export interface Report {
  command: string;
  machine: string;
  redis: string;
  workers: number;
  chaos: string;
  rate: number;
  writes: number;
  keys: number;
  /** Keys whose newest ticket is not what the writer wrote last (under failover chaos, what Redis holds). */
  keysLost: number;
  lossPercent: number;
  /** Keys whose newest ticket is not what Redis holds after the load (absent keys included). */
  keysOffRedis: number;
  /** Seconds from the end of the load until no key was off Redis (or the settle timeout). */
  convergeSeconds: number;
  tickets: number;
  ticketsPerWrite: number;
  writeRate: number;
  /** Tickets per second while the load ran; with a flood, its writes per second from its start until none was left to ticket. */
  sustainedTicketsPerSec: number;
  /** The load was a --flood. */
  flood?: boolean;
  maxBacklog: number;
  finalBacklog: number;
  settleSeconds: number;
  freshnessMs: { p50: number; p95: number; p99: number; max: number };
  handovers: number;
  signals: SignalRecord[];
  baseline?: { ticketsPerSec: number; freshnessP50: number; freshnessP99: number; settleSeconds: number; keysLost: number };
  lostSample: string[];
  samples: Sample[];
}

export function percentiles(values: number[]): { p50: number; p95: number; p99: number; max: number } {
  const v = [...values].sort((a, b) => a - b);
  const at = (q: number) => (v.length ? v[Math.min(v.length - 1, Math.floor(q * v.length))]! : NaN);
  return { p50: at(0.5), p95: at(0.95), p99: at(0.99), max: v.length ? v[v.length - 1]! : NaN };
}

/** The middle value; the mean of the two middle ones for an even count. */
export function median(values: readonly number[]): number {
  const v = [...values].sort((a, b) => a - b);
  return (v[Math.floor((v.length - 1) / 2)]! + v[Math.ceil((v.length - 1) / 2)]!) / 2;
}

const fmt = (n: number | undefined, digits = 0) => (n === undefined || Number.isNaN(n) ? '-' : n.toFixed(digits));

export function table(r: Report): string {
  const kills = r.signals.filter((s) => s.takeoverMs !== undefined).map((s) => s.takeoverMs!);
  const exits = r.signals.filter((s) => s.exitMs !== undefined).map((s) => s.exitMs!);
  const rows: [string, string][] = [
    ['workers / chaos', `${r.workers} / ${r.chaos} (${r.signals.length} signals)`],
    ['writes / keys', `${r.writes} / ${r.keys} at ${fmt(r.writeRate)} writes/s`],
    ['keys lost', `${r.keysLost} (${r.lossPercent.toFixed(3)} %)`],
    ['tickets', `${r.tickets} (${r.ticketsPerWrite.toFixed(3)} per write)`],
    [r.flood ? 'writes/s got through (flood)' : 'sustained tickets/s', fmt(r.sustainedTicketsPerSec)],
    ['freshness p50/p95/p99/max', `${fmt(r.freshnessMs.p50)} / ${fmt(r.freshnessMs.p95)} / ${fmt(r.freshnessMs.p99)} / ${fmt(r.freshnessMs.max)} ms`],
    ['backlog max / at end', `${r.maxBacklog} / ${r.finalBacklog}`],
    ['settled after the load', `${r.settleSeconds.toFixed(1)} s`],
    ['keys off Redis after the load', `${r.keysOffRedis}, converged ${r.convergeSeconds.toFixed(1)} s after the load`],
    ['handovers (moved partitions)', String(r.handovers)],
    ['takeover after SIGKILL', kills.length ? `${kills.map((k) => fmt(k)).join(', ')} ms` : '-'],
    ['graceful exit after SIGINT', exits.length ? `${exits.map((k) => fmt(k)).join(', ')} ms` : '-'],
  ];
  if (r.baseline) {
    rows.push([r.flood ? 'baseline writes/s (ratio)' : 'baseline tickets/s (ratio)', `${fmt(r.baseline.ticketsPerSec)} (cluster/baseline ${(r.sustainedTicketsPerSec / r.baseline.ticketsPerSec).toFixed(2)})`]);
    rows.push(['baseline freshness p50/p99', `${fmt(r.baseline.freshnessP50)} / ${fmt(r.baseline.freshnessP99)} ms, ${r.baseline.keysLost} keys lost`]);
  }
  return rows.map(([k, v]) => `  ${k.padEnd(30)} ${v}`).join('\n');
}

function escape(s: string): string {
  return s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
}

/** The chart library the page carries inline: uPlot's script and style sheet. */
export interface ChartLibrary {
  js: string;
  css: string;
}

export function loadChartLibrary(): ChartLibrary {
  const dist = join(dirname(createRequire(import.meta.url).resolve('uplot/package.json')), 'dist');
  return { js: readFileSync(join(dist, 'uPlot.iife.min.js'), 'utf8'), css: readFileSync(join(dist, 'uPlot.min.css'), 'utf8') };
}

/** JSON that is safe inside a <script> element. */
function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c');
}

/**
 * Draws the charts once the page has loaded, and records on <body data-charts> each chart's
 * title and how many points it drew, for a headless browser to check (loadtest/render-report.ts).
 */
const DRAW = `
const { samples, signals } = REPORT;
const t = samples.map((s) => s.t);
const charts = [
  { title: 'Throughput', unit: 'per second', series: [['writes/s', 'writesPerSec', '#7f8c8d'], ['tickets/s', 'ticketsPerSec', '#2980b9']] },
  { title: 'Backlog', unit: 'dirty entries + waiting jobs', series: [['backlog', 'backlog', '#8e44ad']] },
  // Logarithmic: a p50 of 15 ms stays readable under a p99 of seconds.
  { title: 'Freshness (write to ticket)', unit: 'ms', log: true, series: [['p50', 'freshnessMs', '#27ae60'], ['p99', 'freshnessP99Ms', '#c0392b']] },
  { title: 'Workers alive', unit: 'workers', series: [['workers', 'workersAlive', '#34495e']] },
];
const colours = { SIGKILL: '#c0392b', SIGINT: '#e67e22', SIGTERM: '#e67e22' };
// Every signal as a dashed vertical line, named at the top of the plot.
const signalMarks = {
  hooks: {
    draw: [(u) => {
      const { ctx, bbox } = u;
      ctx.save();
      ctx.font = String(Math.round(10 * devicePixelRatio)) + 'px sans-serif';
      for (const s of signals) {
        const x = Math.round(u.valToPos(s.t, 'x', true));
        if (x < bbox.left || x > bbox.left + bbox.width) continue;
        ctx.strokeStyle = ctx.fillStyle = colours[s.signal] || '#e67e22';
        ctx.setLineDash([4 * devicePixelRatio, 3 * devicePixelRatio]);
        ctx.beginPath();
        ctx.moveTo(x, bbox.top);
        ctx.lineTo(x, bbox.top + bbox.height);
        ctx.stroke();
        ctx.fillText(s.signal + ' ' + s.pid, x + 3 * devicePixelRatio, bbox.top + 11 * devicePixelRatio);
      }
      ctx.restore();
    }],
  },
};
const drawn = [];
for (const c of charts) {
  const box = document.createElement('section');
  document.getElementById('charts').appendChild(box);
  const data = [t, ...c.series.map(([, field]) => samples.map((s) => (s[field] == null ? null : c.log ? Math.max(1, s[field]) : s[field])))];
  new uPlot({
    title: c.title,
    width: 1100,
    height: 260,
    plugins: [signalMarks],
    scales: { x: { time: false }, y: c.log ? { distr: 3 } : {} },
    axes: [
      { label: 'seconds since the load started', values: (u, ticks) => ticks.map((v) => v + ' s') },
      { label: c.unit, size: 70 },
    ],
    series: [{ label: 'time', value: (u, v) => (v == null ? '-' : v.toFixed(1) + ' s') }, ...c.series.map(([label, , stroke]) => ({ label, stroke, width: 2, spanGaps: false, value: (u, v) => (v == null ? '-' : String(Math.round(v)) + ' ' + c.unit) }))],
  }, data, box);
  drawn.push({ title: c.title, points: data.slice(1).map((d) => d.filter((v) => v != null).length) });
}
document.body.dataset.charts = JSON.stringify(drawn);
`;

export function html(r: Report, lib: ChartLibrary): string {
  const legend = r.signals.length ? `Dashed lines mark the ${r.signals.length} signals: ${[...new Set(r.signals.map((s) => s.signal))].join(', ')} (named with the pid).` : 'No signal was sent.';
  return `<!doctype html><html><head><meta charset="utf-8"><title>Ticket generator load test</title>
<style>${lib.css}
body{font-family:sans-serif;margin:24px;max-width:1140px}pre{background:#f6f6f6;padding:12px}section{margin:18px 0}</style></head><body>
<h1>Load test: ${r.keysLost === 0 ? '0 keys lost' : `${r.keysLost} keys lost`}</h1>
<p><code>${escape(r.command)}</code> on ${escape(r.machine)}. ${legend} Hover a chart to read its values.</p>
<pre>${escape(table(r))}</pre>
<div id="charts"></div>
<script>${lib.js}</script>
<script>const REPORT = ${scriptJson({ samples: r.samples, signals: r.signals })};${DRAW}</script>
</body></html>
`;
}
