/**
 * The hardest load: `redis-cli --pipe`, a client nobody here wrote, sending commands to every
 * master at once at full speed. Keys are split by the master serving their slot (--pipe does
 * not follow redirections); every value is unique, and 1 command in 40 is a DEL.
 */
import { spawn } from 'node:child_process';
import type { MasterNode } from '../lib/redis.js';
import { keySlot } from '../lib/slots.js';

/** One command in RESP, as --pipe reads it. */
function resp(...args: string[]): string {
  return `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`;
}

/** Per master, `rounds` passes over the keys: SET to a unique value, DEL for 1 command in 40. */
export function floodPayloads(masters: readonly MasterNode[], keys: readonly string[], rounds: number): { payloads: string[]; commands: number } {
  const owner = (key: string) => masters.findIndex((m) => m.ranges.some(([a, b]) => keySlot(key) >= a && keySlot(key) <= b));
  const at = keys.map(owner);
  const parts = masters.map(() => [] as string[]);
  let commands = 0;
  for (let round = 0; round < rounds; round++) {
    keys.forEach((key, i) => {
      // Shifted each round, so a key is deleted in some rounds and set in others.
      parts[at[i]!]!.push(++commands % 40 === round % 40 ? resp('DEL', key) : resp('SET', key, `r${round}-${i}-${commands}`));
    });
  }
  return { payloads: parts.map((p) => p.join('')), commands };
}

/** Sends a payload to one master with `redis-cli --pipe`; rejects on any error reply. */
export function pipe(m: MasterNode, payload: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const cli = spawn('redis-cli', ['-h', m.host, '-p', String(m.port), '--pipe'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    cli.stdout.on('data', (d: Buffer) => (out += d.toString()));
    cli.stderr.on('data', (d: Buffer) => (out += d.toString()));
    cli.on('error', reject);
    cli.on('exit', (code) => (code === 0 && /errors: 0/.test(out) ? resolve() : reject(new Error(`redis-cli --pipe to ${m.host}:${m.port} exited ${code}: ${out.trim()}`))));
    cli.stdin.end(payload);
  });
}

/** Floods every master at once; returns the commands sent and the ms it took. */
export async function flood(masters: readonly MasterNode[], keys: readonly string[], rounds: number): Promise<{ commands: number; ms: number }> {
  const { payloads, commands } = floodPayloads(masters, keys, rounds);
  const t0 = Date.now();
  await Promise.all(masters.map((m, i) => pipe(m, payloads[i]!)));
  return { commands, ms: Date.now() - t0 };
}
