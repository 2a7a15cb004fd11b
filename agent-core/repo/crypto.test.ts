import { createHmac, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { deriveKeys, newKeys, passwordKey, SEAL_OVERHEAD_BYTES, seal, unseal, unwrapKeys, wrapKeys, type KdfParams } from './crypto.js';
import { LABELS } from './format.js';

// A cheap scrypt cost keeps these tests fast; the parameters travel with the key file anyway.
const kdf: KdfParams = { N: 1024, r: 8, p: 1, salt: Buffer.alloc(32, 7).toString('base64') };

const strataError = (code: string) => expect.objectContaining({ name: 'StrataError', code });

describe('seal and unseal', () => {
  const keys = newKeys(true);
  const aad = Buffer.from('strata test aad');
  const plain = randomBytes(1000);

  it('round-trips and adds exactly a nonce and a tag', () => {
    const sealed = seal(keys, plain, aad);
    expect(sealed.length).toBe(plain.length + SEAL_OVERHEAD_BYTES);
    expect(unseal(keys, sealed, aad, 'test object').equals(plain)).toBe(true);
  });

  it('uses a fresh nonce each time, so equal plaintexts seal differently', () => {
    expect(seal(keys, plain, aad).equals(seal(keys, plain, aad))).toBe(false);
  });

  it('reports a flipped bit anywhere (nonce, ciphertext, tag) as Corrupt', () => {
    const sealed = seal(keys, plain, aad);
    for (const at of [0, 11, 12, 500, sealed.length - 16, sealed.length - 1]) {
      const bad = Buffer.from(sealed);
      bad[at]! ^= 0x01;
      expect(() => unseal(keys, bad, aad, 'test object')).toThrow(strataError('Corrupt'));
    }
  });

  it('reports wrong associated data as Corrupt and names the object', () => {
    const sealed = seal(keys, plain, aad);
    expect(() => unseal(keys, sealed, Buffer.from('another role'), 'Blob 42')).toThrow(/Blob 42 failed authentication/);
    expect(() => unseal(keys, sealed, Buffer.from('another role'), 'Blob 42')).toThrow(strataError('Corrupt'));
  });

  it('reports another key as Corrupt', () => {
    const sealed = seal(keys, plain, aad);
    expect(() => unseal(newKeys(true), sealed, aad, 'test object')).toThrow(strataError('Corrupt'));
  });

  it('reports an input shorter than nonce plus tag as Corrupt', () => {
    expect(() => unseal(keys, Buffer.alloc(SEAL_OVERHEAD_BYTES - 1), aad, 'test object')).toThrow(strataError('Corrupt'));
  });

  it('is the identity without an encryption key', () => {
    const plainKeys = newKeys(false);
    const sealed = seal(plainKeys, plain, aad);
    expect(sealed.equals(plain)).toBe(true);
    expect(unseal(plainKeys, sealed, Buffer.from('any aad'), 'test object').equals(plain)).toBe(true);
  });
});

describe('keys', () => {
  it('derives the block key as HMAC(idKey, label)', () => {
    const idKey = Buffer.alloc(32, 3);
    const expected = createHmac('sha256', idKey).update(LABELS.blockKey).digest();
    expect(deriveKeys(null, idKey).blockKey.equals(expected)).toBe(true);
  });

  it('new keys are random and have an encryption key only when asked', () => {
    const a = newKeys(true);
    const b = newKeys(true);
    expect(a.encKey).toHaveLength(32);
    expect(a.idKey.equals(b.idKey)).toBe(false);
    expect(newKeys(false).encKey).toBeNull();
  });

  it('wrapped keys unwrap with the same password to the same keys', () => {
    const keys = newKeys(true);
    const wrapped = wrapKeys(keys, passwordKey('correct horse', kdf));
    const back = unwrapKeys(wrapped, passwordKey('correct horse', kdf));
    expect(back).not.toBeNull();
    expect(back!.encKey!.equals(keys.encKey!)).toBe(true);
    expect(back!.idKey.equals(keys.idKey)).toBe(true);
    expect(back!.blockKey.equals(keys.blockKey)).toBe(true);
  });

  it('a wrong password unwraps to null, not to an error', () => {
    const wrapped = wrapKeys(newKeys(true), passwordKey('correct horse', kdf));
    expect(unwrapKeys(wrapped, passwordKey('battery staple', kdf))).toBeNull();
  });

  it('the same password under another salt is a different wrapping key', () => {
    const other: KdfParams = { ...kdf, salt: Buffer.alloc(32, 8).toString('base64') };
    expect(passwordKey('pw', kdf).equals(passwordKey('pw', other))).toBe(false);
    expect(passwordKey('pw', kdf).equals(passwordKey('pw', { ...kdf }))).toBe(true);
  });

  it('refuses to wrap the keys of an unencrypted repository', () => {
    expect(() => wrapKeys(newKeys(false), passwordKey('pw', kdf))).toThrow(strataError('Internal'));
  });
});
