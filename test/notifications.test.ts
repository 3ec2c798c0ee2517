import { expect } from 'chai';
import { missingFlags, withRequiredFlags } from '../lib/notifications.js';

describe('notification flags', () => {
  it('accepts K with every needed class, A included', () => {
    expect(missingFlags('KA')).to.equal('');
    expect(missingFlags('AKE')).to.equal('');
    expect(missingFlags('Kg$lshzxe')).to.equal('');
  });

  it('names what is missing', () => {
    expect(missingFlags('')).to.equal('Kg$lshzxe');
    expect(missingFlags('Ex')).to.equal('Kg$lshze');
    expect(missingFlags('EA')).to.equal('K');
  });

  it('adds what is missing to what is set', () => {
    expect(missingFlags(withRequiredFlags('Ex'))).to.equal('');
    expect(withRequiredFlags('Ex').startsWith('Ex')).to.equal(true);
  });
});
