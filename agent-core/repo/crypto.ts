// The repository's cryptography: password key wrapping (scrypt + AES-256-GCM), blob sealing
// (AES-256-GCM with the blob's type and id as associated data) and keyed ids (HMAC-SHA256).
import { createCipheriv, createDecipheriv, createHmac, randomBytes, scryptSync, timingSafeEqual } from 'node:crypto';
import { StrataError } from '../api/errors.js';
import { KDF_DEFAULTS, LABELS } from './format.js';

const NONCE_BYTES = 12;
const TAG_BYTES = 16;
export const SEAL_OVERHEAD_BYTES = NONCE_BYTES + TAG_BYTES;

/** The repository's secrets. encKey is absent in unencrypted repositories. */
export interface RepoKeys {
  readonly encKey: Buffer | null;
  /** Keys chunk, map and snapshot ids, so that an id reveals nothing of the content. */
  readonly idKey: Buffer;
  /** Keys the per-block digests (derived from idKey). */
  readonly blockKey: Buffer;
}

export function hmac(key: Buffer, ...parts: Uint8Array[]): Buffer {
  const h = createHmac('sha256', key);
  for (const p of parts) h.update(p);
  return h.digest();
}

export function deriveKeys(encKey: Buffer | null, idKey: Buffer): RepoKeys {
  return { encKey, idKey, blockKey: hmac(idKey, Buffer.from(LABELS.blockKey)) };
}

export function newKeys(encrypted: boolean): RepoKeys {
  return deriveKeys(encrypted ? randomBytes(32) : null, randomBytes(32));
}

/** Seals plaintext: nonce ‖ ciphertext ‖ tag, authenticated together with aad. Identity without a key. */
export function seal(keys: RepoKeys, plaintext: Uint8Array, aad: Uint8Array): Buffer {
  if (!keys.encKey) return Buffer.from(plaintext.buffer, plaintext.byteOffset, plaintext.byteLength);
  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv('aes-256-gcm', keys.encKey, nonce);
  cipher.setAAD(aad);
  const body = Buffer.concat([nonce, cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
  return body;
}

/** Opens a sealed buffer; a tampered or mis-keyed one is Corrupt (what names it is the caller's). */
export function unseal(keys: RepoKeys, sealed: Uint8Array, aad: Uint8Array, what: string): Buffer {
  const buf = Buffer.from(sealed.buffer, sealed.byteOffset, sealed.byteLength);
  if (!keys.encKey) return buf;
  if (buf.length < SEAL_OVERHEAD_BYTES) throw new StrataError('Corrupt', `${what} is too short to be a sealed object; the repository is damaged.`);
  const nonce = buf.subarray(0, NONCE_BYTES);
  const tag = buf.subarray(buf.length - TAG_BYTES);
  const decipher = createDecipheriv('aes-256-gcm', keys.encKey, nonce);
  decipher.setAAD(aad);
  decipher.setAuthTag(tag);
  try {
    return Buffer.concat([decipher.update(buf.subarray(NONCE_BYTES, buf.length - TAG_BYTES)), decipher.final()]);
  } catch (cause) {
    throw new StrataError('Corrupt', `${what} failed authentication: it was altered or damaged; run \`strata verify --read-data\`.`, { cause });
  }
}

export interface KdfParams {
  N: number;
  r: number;
  p: number;
  salt: string;
}

export function newKdfParams(): KdfParams {
  return { ...KDF_DEFAULTS, salt: randomBytes(32).toString('base64') };
}

export function passwordKey(password: string, kdf: KdfParams): Buffer {
  return scryptSync(password, Buffer.from(kdf.salt, 'base64'), 32, { N: kdf.N, r: kdf.r, p: kdf.p, maxmem: 256 * kdf.N * kdf.r });
}

const WRAP_AAD = Buffer.from('strata v1 key');

/** Wraps the repository keys under a password-derived key. */
export function wrapKeys(keys: RepoKeys, wrappingKey: Buffer): string {
  if (!keys.encKey) throw new StrataError('Internal', 'Only encrypted repositories have wrapped keys.');
  return seal(deriveKeys(wrappingKey, Buffer.alloc(32)), Buffer.concat([keys.encKey, keys.idKey]), WRAP_AAD).toString('base64');
}

export function unwrapKeys(wrapped: string, wrappingKey: Buffer): RepoKeys | null {
  const sealed = Buffer.from(wrapped, 'base64');
  try {
    const raw = unseal(deriveKeys(wrappingKey, Buffer.alloc(32)), sealed, WRAP_AAD, 'key');
    if (raw.length !== 64) return null;
    return deriveKeys(raw.subarray(0, 32), raw.subarray(32, 64));
  } catch {
    return null;
  }
}

export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}
