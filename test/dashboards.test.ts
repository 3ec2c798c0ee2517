/**
 * dashboards/: the Grafana dashboard and the Prometheus alert rules parse, and every metric they
 * name is one a real worker serves on /metrics.
 */
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { createMetrics } from '../lib/metrics.js';
import type { GeneratorWorker } from '../lib/worker.js';
import { randomPrefix, standaloneUrl } from './helpers/redis.js';
import { startWorker, testConfig } from './helpers/worker.js';

const read = (file: string) => readFileSync(new URL(`../dashboards/${file}`, import.meta.url), 'utf8');
const namedIn = (expr: string) => [...expr.matchAll(/\btg_[a-z_]+/g)].map((m) => m[0]);

interface Panel {
  title: string;
  targets: { expr: string }[];
}
interface Rule {
  alert: string;
  expr: string;
  labels: { severity: string };
  annotations: { summary: string; description: string };
}

describe('dashboards', function () {
  this.timeout(60000);
  let worker: GeneratorWorker;
  let served: Set<string>;
  before(async () => {
    worker = await startWorker(testConfig(standaloneUrl(), randomPrefix()));
    const text = await createMetrics(worker).metrics();
    served = new Set(text.split('\n').filter((l) => l && !l.startsWith('#')).map((l) => /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(l)![0]));
  });
  after(() => worker.stop());

  it('has a Grafana dashboard whose every query names metrics the worker serves', () => {
    const dashboard = JSON.parse(read('grafana-dashboard.json')) as { panels: Panel[] };
    const titles = dashboard.panels.map((p) => p.title.toLowerCase()).join(' | ');
    for (const topic of ['events in', 'backlog', 'tickets/s', 'freshness', 'subscriber lag', 'partitions per worker', 'handovers', 'takeovers', 'repairs', 'divergences', 'failed']) expect(titles).to.contain(topic);
    const metrics = new Set(dashboard.panels.flatMap((p) => p.targets.flatMap((t) => namedIn(t.expr))));
    expect(metrics.size).to.be.at.least(12);
    expect([...metrics].filter((m) => !served.has(m))).to.deep.equal([]);
    process.stdout.write(`      measured: dashboard metrics, each on /metrics: ${[...metrics].sort().join(', ')}\n`);
  });

  it('has Prometheus alert rules, each complete, naming only metrics the worker serves', () => {
    const rules = (parse(read('prometheus-rules.yml')) as { groups: { rules: Rule[] }[] }).groups.flatMap((g) => g.rules);
    expect(rules.map((r) => r.alert)).to.include.members(['TicketListenerLagging', 'TicketPartitionsWithoutOwner', 'TicketDivergencesFound', 'TicketJobsFailed', 'TicketBacklogGrowing']);
    for (const rule of rules) {
      expect(rule.expr, rule.alert).to.be.a('string');
      expect(rule.labels.severity, rule.alert).to.be.oneOf(['warning', 'critical']);
      expect(rule.annotations.summary, rule.alert).to.be.a('string');
      expect(rule.annotations.description, rule.alert).to.be.a('string');
    }
    const metrics = new Set(rules.flatMap((r) => namedIn(r.expr)));
    expect([...metrics].filter((m) => !served.has(m))).to.deep.equal([]);
    process.stdout.write(`      measured: alert-rule metrics, each on /metrics: ${[...metrics].sort().join(', ')}\n`);
  });
});
