/** Worker ids are typed as CLI arguments: never one an argument parser takes for an option. */
import { expect } from 'chai';
import { newWorkerId } from '../lib/worker-id.js';

describe('worker ids', () => {
  it('are 21 letters and digits, unique, and never start with a dash', () => {
    const ids = Array.from({ length: 2000 }, () => newWorkerId());
    for (const id of ids) expect(id).to.match(/^[0-9A-Za-z]{21}$/);
    expect(new Set(ids).size).to.equal(ids.length);
  });
});
