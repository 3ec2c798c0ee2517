import { expect } from 'chai';
import { formatValue } from '../lib/values.js';

const b = (s: string) => Buffer.from(s);

describe('ticket values', () => {
  it('gives strings verbatim, binary included', () => {
    const raw = Buffer.from([0, 255, 10]);
    expect(formatValue({ type: 'string', value: raw }).value).to.equal(raw);
  });

  it('gives no value for a missing key', () => {
    expect(formatValue({ type: 'none' })).to.deep.equal({ type: 'none' });
  });

  it('gives other types as JSON', () => {
    expect(formatValue({ type: 'hash', value: [b('f'), b('1'), b('g'), b('2')] }).value).to.equal('{"f":"1","g":"2"}');
    expect(formatValue({ type: 'list', value: [b('x'), b('y')] }).value).to.equal('["x","y"]');
    expect(formatValue({ type: 'set', value: [b('y'), b('x')] }).value).to.equal('["x","y"]');
    expect(formatValue({ type: 'zset', value: [b('m'), b('1.5')] }).value).to.equal('[["m",1.5]]');
    expect(formatValue({ type: 'stream', value: [[b('1-0'), [b('f'), b('v')]]] }).value).to.equal('[["1-0",{"f":"v"}]]');
  });
});
