import { expect } from 'chai';
import { encodeDisconnect, parseDisconnect } from '../lib/control.js';

describe('control messages', () => {
  it('round-trips a disconnect message', () => {
    const d = { partition: 17, token: 4, owner: 'w1' };
    expect(parseDisconnect(encodeDisconnect(d), 271)).to.deep.equal(d);
  });

  for (const [what, raw] of [
    ['not JSON', '{nope'],
    ['JSON null', 'null'],
    ['another type', '{"type":"hello","partition":1,"token":1,"owner":"w"}'],
    ['a partition out of range', '{"type":"disconnect","partition":271,"token":1,"owner":"w"}'],
    ['a negative partition', '{"type":"disconnect","partition":-1,"token":1,"owner":"w"}'],
    ['a fractional token', '{"type":"disconnect","partition":1,"token":1.5,"owner":"w"}'],
    ['a string token', '{"type":"disconnect","partition":1,"token":"7","owner":"w"}'],
    ['no owner', '{"type":"disconnect","partition":1,"token":1}'],
    ['an empty owner', '{"type":"disconnect","partition":1,"token":1,"owner":""}'],
  ]) {
    it(`rejects ${what}`, () => {
      expect(parseDisconnect(raw!, 271)).to.equal(null);
    });
  }
});
