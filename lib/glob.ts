/**
 * Redis glob matching (the rules of stringmatchlen: `*`, `?`, `[abc]`, `[^a]`, `[a-z]`,
 * `\x`), byte for byte. Redis filters keyspace events by the watch glob itself; a gap
 * repair, which lists keys a slot at a time, has to apply the same filter here.
 */

const STAR = 0x2a;
const QUESTION = 0x3f;
const OPEN = 0x5b;
const CLOSE = 0x5d;
const CARET = 0x5e;
const DASH = 0x2d;
const BACKSLASH = 0x5c;

function matchAt(p: Buffer, pi: number, s: Buffer, si: number): boolean {
  while (pi < p.length) {
    const c = p[pi]!;
    if (c === STAR) {
      while (pi + 1 < p.length && p[pi + 1] === STAR) pi++;
      if (pi + 1 === p.length) return true;
      for (let k = si; k <= s.length; k++) if (matchAt(p, pi + 1, s, k)) return true;
      return false;
    }
    if (si >= s.length) return false;
    if (c === QUESTION) {
      pi++;
      si++;
      continue;
    }
    if (c === OPEN) {
      let i = pi + 1;
      const negate = p[i] === CARET;
      if (negate) i++;
      let matched = false;
      while (i < p.length && p[i] !== CLOSE) {
        if (p[i] === BACKSLASH && i + 1 < p.length) {
          if (p[i + 1] === s[si]) matched = true;
          i += 2;
        } else if (i + 2 < p.length && p[i + 1] === DASH && p[i + 2] !== CLOSE) {
          const lo = Math.min(p[i]!, p[i + 2]!);
          const hi = Math.max(p[i]!, p[i + 2]!);
          if (s[si]! >= lo && s[si]! <= hi) matched = true;
          i += 3;
        } else {
          if (p[i] === s[si]) matched = true;
          i++;
        }
      }
      if (negate) matched = !matched;
      if (!matched) return false;
      pi = i < p.length ? i + 1 : i;
      si++;
      continue;
    }
    if (c === BACKSLASH && pi + 1 < p.length) {
      if (p[pi + 1] !== s[si]) return false;
      pi += 2;
      si++;
      continue;
    }
    if (c !== s[si]) return false;
    pi++;
    si++;
  }
  return si === s.length;
}

/** A matcher for one glob; `*` alone matches everything without work. */
export function globMatcher(glob: string): (key: Buffer) => boolean {
  if (glob === '*') return () => true;
  const pattern = Buffer.from(glob);
  return (key) => matchAt(pattern, 0, key, 0);
}
