import { expect } from 'chai';
import { Redis } from 'ioredis';
import { globMatcher } from '../lib/glob.js';
import { standaloneUrl } from './helpers/redis.js';

const cases: [string, string, boolean][] = [
  ['*', 'anything', true],
  ['status:*', 'status:1', true],
  ['status:*', 'stat:1', false],
  ['h?llo', 'hello', true],
  ['h?llo', 'hllo', false],
  ['h[ae]llo', 'hallo', true],
  ['h[ae]llo', 'hillo', false],
  ['h[^e]llo', 'hallo', true],
  ['h[^e]llo', 'hello', false],
  ['h[a-b]llo', 'hbllo', true],
  ['h[a-b]llo', 'hcllo', false],
  ['a\\*b', 'a*b', true],
  ['a\\*b', 'axb', false],
  ['*:{*}:*', 'x:{tag}:y', true],
  ['a**b', 'ab', true],
  ['a*b*c', 'a-b-x-c', true],
  ['a*b*c', 'a-b-x-d', false],
];

describe('glob', () => {
  for (const [glob, key, want] of cases) {
    it(`'${glob}' ${want ? 'matches' : 'does not match'} '${key}'`, () => {
      expect(globMatcher(glob)(Buffer.from(key))).to.equal(want);
    });
  }

  it('agrees with Redis KEYS on every case, binary keys included', async () => {
    const r = new Redis(standaloneUrl());
    try {
      await r.select(9);
      await r.flushdb();
      const keys = [...new Set(cases.map(([, k]) => k))].map((k) => Buffer.from(k));
      keys.push(Buffer.from([0x73, 0x00, 0xff]));
      for (const k of keys) await r.set(k, '1');
      for (const glob of [...new Set(cases.map(([g]) => g)), 's?*', 's[\x00-\x7f]*']) {
        const redisSays = new Set((await r.keysBuffer(glob)).map((b) => b.toString('hex')));
        const ours = new Set(keys.filter(globMatcher(glob)).map((b) => b.toString('hex')));
        expect([...ours].sort(), glob).to.deep.equal([...redisSays].sort());
      }
      await r.flushdb();
    } finally {
      r.disconnect();
    }
  });
});
