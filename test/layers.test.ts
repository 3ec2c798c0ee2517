/** The modules of lib/ point one way: no import cycle (the worker wires the rest; nothing imports it back). */
import { expect } from 'chai';
import { readdirSync, readFileSync } from 'node:fs';

const LIB = new URL('../lib/', import.meta.url);

/** Module -> the lib/ modules it imports (type-only imports included: a cycle of types is a cycle of ideas). */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of readdirSync(LIB).filter((f) => f.endsWith('.ts'))) {
    const source = readFileSync(new URL(file, LIB), 'utf8');
    const deps = [...source.matchAll(/^import\s[^;]*?from '\.\/([a-z-]+)\.js';/gms)].map((m) => `${m[1]}.ts`);
    graph.set(file, deps);
  }
  return graph;
}

function cycles(graph: Map<string, string[]>): string[][] {
  const found: string[][] = [];
  const state = new Map<string, 'open' | 'done'>();
  const path: string[] = [];
  const visit = (node: string): void => {
    if (state.get(node) === 'done') return;
    if (state.get(node) === 'open') {
      found.push([...path.slice(path.indexOf(node)), node]);
      return;
    }
    state.set(node, 'open');
    path.push(node);
    for (const dep of graph.get(node) ?? []) visit(dep);
    path.pop();
    state.set(node, 'done');
  };
  for (const node of graph.keys()) visit(node);
  return found;
}

describe('lib/ layering', () => {
  it('has no import cycle, and nothing but the worker imports the worker', () => {
    const graph = importGraph();
    expect(graph.get('worker.ts')).to.include('http-server.ts');
    expect(cycles(graph)).to.deep.equal([]);
    expect([...graph].filter(([, deps]) => deps.includes('worker.ts')).map(([file]) => file)).to.deep.equal([]);
  });
});
