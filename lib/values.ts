/**
 * How a key's value appears in a ticket (DESIGN.md, sink contract): strings verbatim,
 * other types as JSON, nothing when the key does not exist. Pure, so the formats are
 * unit-tested without Redis.
 */
import type { ValueRead } from './scripts.js';

export interface TicketValue {
  type: string;
  /** Absent when the key does not exist. */
  value?: Buffer | string;
}

function text(b: unknown): string {
  return Buffer.isBuffer(b) ? b.toString('utf8') : String(b);
}

function pairs(flat: readonly unknown[]): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) out.push([text(flat[i]), text(flat[i + 1])]);
  return out;
}

export function formatValue(read: Pick<ValueRead, 'type' | 'value'>): TicketValue {
  const { type, value } = read;
  switch (type) {
    case 'none':
      return { type };
    case 'string':
      return { type, value: value as Buffer };
    case 'hash':
      return { type, value: JSON.stringify(Object.fromEntries(pairs(value as unknown[]))) };
    case 'list':
      return { type, value: JSON.stringify((value as unknown[]).map(text)) };
    case 'set':
      // SMEMBERS has no order; sorting makes equal sets give equal tickets.
      return { type, value: JSON.stringify((value as unknown[]).map(text).sort()) };
    case 'zset':
      return { type, value: JSON.stringify(pairs(value as unknown[]).map(([m, s]) => [m, Number(s)])) };
    case 'stream':
      return {
        type,
        value: JSON.stringify((value as [unknown, unknown[]][]).map(([id, fields]) => [text(id), Object.fromEntries(pairs(fields))])),
      };
    default:
      return { type };
  }
}
