import { expect } from 'chai';
import { announcesMembership, parseEvent } from '../lib/events.js';
import { encodeDisconnect, encodeGap, parseDisconnect, parseGap } from '../lib/control.js';

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

describe('gap notices', () => {
  it('round-trips a gap notice', () => {
    const g = { partition: 3, from: 100, to: 250, by: 'w1' };
    expect(parseGap(encodeGap(g), 271)).to.deep.equal(g);
  });

  for (const [what, raw] of [
    ['not JSON', 'gap!'],
    ['a disconnect message', '{"type":"disconnect","partition":1,"token":1,"owner":"w"}'],
    ['an end before the start', '{"type":"gap","partition":1,"from":10,"to":5,"by":"w"}'],
    ['a partition out of range', '{"type":"gap","partition":999,"from":1,"to":5,"by":"w"}'],
    ['no sender', '{"type":"gap","partition":1,"from":1,"to":5}'],
  ]) {
    it(`rejects ${what}`, () => {
      expect(parseGap(raw!, 271)).to.equal(null);
    });
  }

  it('reads cluster events, and nothing else from the events channel', () => {
    expect(parseEvent(JSON.stringify({ type: 'joined', worker: 'w1', at: 1 }))).to.deep.equal({ type: 'joined', worker: 'w1', at: 1 });
    const moved = { type: 'moved', partition: 3, from: null, to: 'w2', token: 7, how: 'acquired', at: 2 };
    expect(parseEvent(JSON.stringify(moved))).to.deep.equal(moved);
    for (const bad of ['not json', 'null', '{"type":"joined","at":1}', '{"type":"moved","partition":"x","to":"a","token":1,"how":"acquired","at":1}', '{"type":"left","worker":"w","reason":"why","at":1}', '{"type":"joined","worker":"w"}']) {
      expect(parseEvent(bad), bad).to.equal(null);
    }
  });

  it('takes a join or a leave of another worker as news, nothing else (its own, moves, forgeries)', () => {
    const event = (e: object) => JSON.stringify({ at: 1, ...e });
    expect(announcesMembership(event({ type: 'joined', worker: 'w2' }), 'w1')).to.equal(true);
    expect(announcesMembership(event({ type: 'left', worker: 'w2', reason: 'silent' }), 'w1')).to.equal(true);
    expect(announcesMembership(event({ type: 'joined', worker: 'w1' }), 'w1')).to.equal(false);
    expect(announcesMembership(event({ type: 'moved', partition: 3, from: null, to: 'w2', token: 7, how: 'acquired' }), 'w1')).to.equal(false);
    expect(announcesMembership('{"type":"joined"}', 'w1')).to.equal(false);
    expect(announcesMembership('not json', 'w1')).to.equal(false);
  });
});
