/**
 * Messages between workers.
 *
 * The disconnect message of a graceful handover: the new owner, having taken the lease,
 * tells the old owner to stop forwarding. It is only a prompt: the old owner believes the
 * lease in Redis, never the message, so a forged, stale or malformed one changes nothing.
 */

export interface Disconnect {
  partition: number;
  /** Fencing token of the new owner. */
  token: number;
  /** The new owner. */
  owner: string;
}

export function encodeDisconnect(d: Disconnect): string {
  return JSON.stringify({ type: 'disconnect', ...d });
}

/**
 * An offer notice: the owner offered a partition's lease to the receiver, which reads the
 * leases at once rather than at its next periodic look. Also only a prompt: a forged one costs
 * one read of the leases.
 */
export interface OfferNotice {
  partition: number;
  /** The offering owner. */
  from: string;
}

export function encodeOffer(o: OfferNotice): string {
  return JSON.stringify({ type: 'offer', ...o });
}

export function parseOffer(raw: string, partitions: number): OfferNotice | null {
  const m = fieldsOf(raw, 'offer', partitions);
  if (!m || typeof m.from !== 'string' || m.from.length === 0 || m.from.length > 200) return null;
  return { partition: m.partition as number, from: m.from };
}

/** The fields of a message that is a JSON object, or null (anything may arrive on a channel). */
export function jsonFields(raw: string): Record<string, unknown> | null {
  let m: unknown;
  try {
    m = JSON.parse(raw);
  } catch {
    return null;
  }
  return typeof m === 'object' && m !== null && !Array.isArray(m) ? (m as Record<string, unknown>) : null;
}

/** The fields of a JSON message of the given type about an existing partition, or null. */
function fieldsOf(raw: string, type: string, partitions: number): Record<string, unknown> | null {
  const fields = jsonFields(raw);
  if (!fields) return null;
  const p = fields.partition;
  if (fields.type !== type || !Number.isInteger(p) || (p as number) < 0 || (p as number) >= partitions) return null;
  return fields;
}

/** The message, or null when it is not a well-formed disconnect for a partition that exists. */
export function parseDisconnect(raw: string, partitions: number): Disconnect | null {
  const m = fieldsOf(raw, 'disconnect', partitions);
  if (!m) return null;
  const { partition, token, owner } = m;
  if (!Number.isInteger(token) || (token as number) < 1) return null;
  if (typeof owner !== 'string' || owner.length === 0 || owner.length > 200) return null;
  return { partition: partition as number, token: token as number, owner };
}

/**
 * A gap announcement: the owner of a partition took it over from an expired lease, so
 * nobody forwarded its events between `from` and `to` (Redis ms). Every other worker that
 * heard all of them (it listens on the partition's master and kept its shadow buffer
 * meanwhile) replays what it kept.
 */
export interface GapNotice {
  partition: number;
  from: number;
  to: number;
  /** The announcing owner, which replays its own buffer itself. */
  by: string;
}

export function encodeGap(g: GapNotice): string {
  return JSON.stringify({ type: 'gap', ...g });
}

export function parseGap(raw: string, partitions: number): GapNotice | null {
  const m = fieldsOf(raw, 'gap', partitions);
  if (!m) return null;
  const { partition, from, to, by } = m;
  if (!Number.isInteger(from) || !Number.isInteger(to) || (from as number) < 0 || (to as number) < (from as number)) return null;
  if (typeof by !== 'string' || by.length === 0) return null;
  return { partition: partition as number, from: from as number, to: to as number, by };
}
