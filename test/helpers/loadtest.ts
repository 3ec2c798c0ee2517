/** Runs `npm run loadtest` (loadtest/run.js) against the test cluster and returns its JSON report. */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Report } from '../../loadtest/report.js';

export async function runLoadtest(url: string, args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; report: Report | undefined; output: string }> {
  const out = mkdtempSync(join(tmpdir(), 'tg-loadtest-'));
  try {
    const run = spawn(process.execPath, [fileURLToPath(new URL('../../loadtest/run.js', import.meta.url)), ...args, '--out', out], {
      env: { ...process.env, ...env, TG_REDIS_URL: url },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let output = '';
    run.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    const code = await new Promise<number | null>((resolve) => run.on('exit', resolve));
    const file = readdirSync(out).find((f) => f.endsWith('-report.json'));
    return { code, output, report: file ? (JSON.parse(readFileSync(join(out, file), 'utf8')) as Report) : undefined };
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}
