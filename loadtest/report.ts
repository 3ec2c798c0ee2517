/**
 * The load test's report: the figures, a table for people, JSON for scripts, and a
 * self-contained HTML page with SVG charts of throughput, backlog and freshness over
 * time, every signal marked. Pure functions of what the run measured.
 */

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
  /** Tickets per second while the load ran. */
  sustainedTicketsPerSec: number;
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

const fmt = (n: number | undefined, digits = 0) => (n === undefined || Number.isNaN(n) ? '-' : n.toFixed(digits));

export function table(r: Report): string {
  const kills = r.signals.filter((s) => s.takeoverMs !== undefined).map((s) => s.takeoverMs!);
  const exits = r.signals.filter((s) => s.exitMs !== undefined).map((s) => s.exitMs!);
  const rows: [string, string][] = [
    ['workers / chaos', `${r.workers} / ${r.chaos} (${r.signals.length} signals)`],
    ['writes / keys', `${r.writes} / ${r.keys} at ${fmt(r.writeRate)} writes/s`],
    ['keys lost', `${r.keysLost} (${r.lossPercent.toFixed(3)} %)`],
    ['tickets', `${r.tickets} (${r.ticketsPerWrite.toFixed(3)} per write)`],
    ['sustained tickets/s', fmt(r.sustainedTicketsPerSec)],
    ['freshness p50/p95/p99/max', `${fmt(r.freshnessMs.p50)} / ${fmt(r.freshnessMs.p95)} / ${fmt(r.freshnessMs.p99)} / ${fmt(r.freshnessMs.max)} ms`],
    ['backlog max / at end', `${r.maxBacklog} / ${r.finalBacklog}`],
    ['settled after the load', `${r.settleSeconds.toFixed(1)} s`],
    ['keys off Redis after the load', `${r.keysOffRedis}, converged ${r.convergeSeconds.toFixed(1)} s after the load`],
    ['handovers (moved partitions)', String(r.handovers)],
    ['takeover after SIGKILL', kills.length ? `${kills.map((k) => fmt(k)).join(', ')} ms` : '-'],
    ['graceful exit after SIGINT', exits.length ? `${exits.map((k) => fmt(k)).join(', ')} ms` : '-'],
  ];
  if (r.baseline) {
    rows.push(['baseline tickets/s (ratio)', `${fmt(r.baseline.ticketsPerSec)} (cluster/baseline ${(r.sustainedTicketsPerSec / r.baseline.ticketsPerSec).toFixed(2)})`]);
    rows.push(['baseline freshness p50/p99', `${fmt(r.baseline.freshnessP50)} / ${fmt(r.baseline.freshnessP99)} ms, ${r.baseline.keysLost} keys lost`]);
  }
  return rows.map(([k, v]) => `  ${k.padEnd(30)} ${v}`).join('\n');
}

function escape(s: string): string {
  return s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
}

/** One SVG line chart of a sample field, signals drawn as vertical marks. */
function chart(title: string, samples: Sample[], pick: (s: Sample) => number | null, signals: SignalRecord[], color: string): string {
  const W = 900;
  const H = 180;
  const pad = 40;
  const tMax = Math.max(1, ...samples.map((s) => s.t), ...signals.map((s) => s.t));
  const values = samples.map(pick).filter((v): v is number => v !== null);
  const yMax = Math.max(1, ...values);
  const x = (t: number) => pad + ((W - 2 * pad) * t) / tMax;
  const y = (v: number) => H - pad + 10 - ((H - 2 * pad) * v) / yMax;
  const points = samples
    .map((s) => [s.t, pick(s)] as const)
    .filter((p): p is readonly [number, number] => p[1] !== null)
    .map(([t, v]) => `${x(t).toFixed(1)},${y(v).toFixed(1)}`)
    .join(' ');
  const marks = signals
    .map((s) => `<line x1="${x(s.t)}" x2="${x(s.t)}" y1="20" y2="${H - pad + 10}" stroke="${s.signal === 'SIGKILL' ? '#c0392b' : '#e67e22'}" stroke-dasharray="4 3"><title>${s.signal} pid ${s.pid} at ${s.t.toFixed(1)} s</title></line>`)
    .join('');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" role="img" aria-label="${escape(title)}">
<text x="${pad}" y="14" font-size="13" font-family="sans-serif">${escape(title)} (max ${yMax.toFixed(0)})</text>
<line x1="${pad}" y1="${H - pad + 10}" x2="${W - pad}" y2="${H - pad + 10}" stroke="#999"/>
<line x1="${pad}" y1="20" x2="${pad}" y2="${H - pad + 10}" stroke="#999"/>
<text x="${W - pad}" y="${H - 8}" font-size="11" text-anchor="end" font-family="sans-serif">${tMax.toFixed(0)} s</text>
${marks}<polyline fill="none" stroke="${color}" stroke-width="1.5" points="${points}"/></svg>`;
}

export function html(r: Report): string {
  return `<!doctype html><html><head><meta charset="utf-8"><title>Ticket generator load test</title>
<style>body{font-family:sans-serif;margin:24px}pre{background:#f6f6f6;padding:12px}</style></head><body>
<h1>Load test: ${r.keysLost === 0 ? '0 keys lost' : `${r.keysLost} keys lost`}</h1>
<p><code>${escape(r.command)}</code> on ${escape(r.machine)}; dashed lines: SIGINT (orange), SIGKILL (red).</p>
<pre>${escape(table(r))}</pre>
${chart('tickets/s', r.samples, (s) => s.ticketsPerSec, r.signals, '#2980b9')}
${chart('writes/s', r.samples, (s) => s.writesPerSec, r.signals, '#7f8c8d')}
${chart('backlog (dirty entries + waiting jobs)', r.samples, (s) => s.backlog, r.signals, '#8e44ad')}
${chart('freshness p50 (write → ticket, ms)', r.samples, (s) => s.freshnessMs, r.signals, '#27ae60')}
</body></html>
`;
}
