// Seeded randomness for the bench: the same seed builds the same files and the same changes, so two
// runs (or two machines) compare like with like.
import { createCipheriv, createHash } from 'node:crypto';

/** A small, fast 32-bit generator (mulberry32); good enough for picking words and sizes. */
export function createRng(seed) {
  let state = createHash('sha256').update(String(seed)).digest().readUInt32LE(0);
  const next = () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    /** uniform in [0, 1) */
    next,
    /** integer in [lo, hi] */
    int: (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)),
    pick: (items) => items[Math.floor(next() * items.length)],
    /** log-uniform, so sizes spread over orders of magnitude like real files do */
    logInt: (lo, hi) => Math.round(Math.exp(Math.log(lo) + next() * (Math.log(hi) - Math.log(lo)))),
    shuffle(items) {
      for (let i = items.length - 1; i > 0; i--) {
        const j = Math.floor(next() * (i + 1));
        [items[i], items[j]] = [items[j], items[i]];
      }
      return items;
    },
  };
}

/**
 * Incompressible bytes from AES-CTR keyed by the seed: deterministic like a PRNG, but at memory
 * speed, which matters when the image holds hundreds of MiB of them.
 */
export function createByteStream(seed) {
  const key = createHash('sha256').update(`bytes:${seed}`).digest();
  const cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  return { take: (sizeBytes) => cipher.update(Buffer.alloc(sizeBytes)) };
}
