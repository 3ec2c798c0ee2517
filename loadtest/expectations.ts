/**
 * What the load writer leaves behind and the verifier checks: the final state of every
 * key it touched, and when that state was written.
 */
import type { StoredTicket } from '../lib/ticket-reader.js';

export type FinalState =
  | { kind: 'string'; value: string; writtenAt: number }
  | { kind: 'hash'; fields: Record<string, string>; writtenAt: number }
  /** Deleted or expired; `existed` false when it never existed, so no change (and no ticket) happened. */
  | { kind: 'gone'; writtenAt: number; existed: boolean };

export interface WriterResult {
  prefix: string;
  writes: number;
  startedAt: number;
  endedAt: number;
  /** Final state of every key touched, by key name (the load uses printable names). */
  keys: Record<string, FinalState>;
}

/** Whether a key's latest ticket carries its final state. */
export function ticketMatches(state: FinalState, ticket: StoredTicket | undefined): boolean {
  if (!ticket) return state.kind === 'gone' && !state.existed;
  switch (state.kind) {
    case 'gone':
      return ticket.value === undefined;
    case 'string':
      return ticket.type === 'string' && ticket.value?.toString() === state.value;
    case 'hash': {
      if (ticket.type !== 'hash' || ticket.value === undefined) return false;
      const got = JSON.parse(ticket.value.toString()) as Record<string, string>;
      const want = Object.entries(state.fields);
      return want.length === Object.keys(got).length && want.every(([f, v]) => got[f] === v);
    }
  }
}

/** Write time carried in a value the writer produced (`<epoch ms>:...`), or undefined. */
export function writtenAtOf(ticket: StoredTicket): number | undefined {
  if (!ticket.value) return undefined;
  const text = ticket.value.toString();
  const m = ticket.type === 'hash' ? /"at":"(\d+)"/.exec(text) : /^(\d+):/.exec(text);
  return m ? Number(m[1]) : undefined;
}
