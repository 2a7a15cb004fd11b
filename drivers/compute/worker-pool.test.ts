import { createHmac, randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { deriveKeys, hmac, unseal } from '../../agent-core/repo/crypto.js';
import { BlobType, Compression, LABELS, STORED_DIGEST_BYTES } from '../../agent-core/repo/format.js';
import { blobAad } from '../../agent-core/repo/pack.js';
import type { SealedBlob } from '../../agent-core/engine/compute.js';
import { WorkerPool } from './worker-pool.js';

/** One blob through the batch call. */
async function sealOne(pool: WorkerPool, sab: SharedArrayBuffer, offset: number, length: number, type: BlobType, idHex: string, inPlace = false): Promise<SealedBlob> {
  const [one] = await pool.seal(sab, [{ offset, length, type, idHex }], inPlace);
  return one!;
}

describe('the compute pool', () => {
  const keys = deriveKeys(randomBytes(32), randomBytes(32));
  const pool = new WorkerPool(keys, { blockSizeBytes: 4096, zstdLevel: 3, threads: 2 });
  afterAll(() => pool.close());

  it('hashes the blocks of each run and flags zero blocks', async () => {
    const sab = new SharedArrayBuffer(64 * 1024);
    const view = Buffer.from(sab);
    randomBytes(64 * 1024).copy(view);
    view.fill(0, 8192, 12288);
    const r = await pool.hash(sab, [[0, 16384], [32768, 8192]]);
    expect(r.digests.length).toBe(6 * 32);
    expect([...r.zeroMask]).toEqual([0, 0, 1, 0, 0, 0]);
    const want = createHmac('sha256', keys.blockKey).update(view.subarray(32768, 36864)).digest();
    expect(r.digests.subarray(4 * 32, 5 * 32).equals(want)).toBe(true);
  });

  it('hashes a small window on the calling thread and a large one on a worker, with the same digests', async () => {
    const sab = new SharedArrayBuffer(256 * 1024);
    const view = Buffer.from(sab);
    randomBytes(256 * 1024).copy(view);
    view.fill(0, 8192, 12288);
    const onWorker = await pool.hash(sab, [[0, 256 * 1024]]);
    const inline = [];
    for (let o = 0; o < 256 * 1024; o += 32 * 1024) inline.push(await pool.hash(sab, [[o, 16 * 1024], [o + 16 * 1024, 16 * 1024]]));
    expect(Buffer.concat(inline.map((h) => h.digests)).equals(onWorker.digests)).toBe(true);
    expect(Buffer.concat(inline.map((h) => Buffer.from(h.zeroMask))).equals(Buffer.from(onWorker.zeroMask))).toBe(true);
    expect(onWorker.zeroMask[2]).toBe(1);
  });

  it('seals a chunk that opens back to the same bytes, and refuses one whose id does not match', async () => {
    const sab = new SharedArrayBuffer(8192);
    const view = Buffer.from(sab);
    view.write('hello strata '.repeat(600));
    const digests = (await pool.hash(sab, [[0, 8192]])).digests;
    const id = hmac(keys.idKey, digests).toString('hex');
    const s = await sealOne(pool, sab, 0, 8192, BlobType.data, id);
    expect(s.compression).toBe(Compression.zstd);
    expect(s.storedLength).toBe(s.sealed!.length);
    const raw = await pool.open(s.sealed!, BlobType.data, id, s.compression, 8192);
    expect(raw.equals(view)).toBe(true);
    await expect(pool.open(s.sealed!, BlobType.data, 'f'.repeat(64), s.compression, 8192)).rejects.toMatchObject({ code: 'Corrupt' });
  });

  it('seals in place: the stored bytes replace the start of the range, and open back to the original', async () => {
    const sab = new SharedArrayBuffer(3 * 8192);
    const view = Buffer.from(sab);
    randomBytes(3 * 8192).copy(view);
    view.write('hello strata '.repeat(600), 8192, 'latin1');
    const original = Buffer.from(view);
    const idOf = async (offset: number) => hmac(keys.idKey, (await pool.hash(sab, [[offset, 8192]])).digests).toString('hex');
    const [textId, randomId] = [await idOf(8192), await idOf(2 * 8192)];
    const text = await sealOne(pool, sab, 8192, 8192, BlobType.data, textId, true);
    expect(text.sealed).toBeNull();
    expect(text.compression).toBe(Compression.zstd);
    expect(text.storedLength).toBeLessThan(8192);
    const stored = Buffer.from(view.subarray(8192, 8192 + text.storedLength));
    expect((await pool.open(stored, BlobType.data, textId, text.compression, 8192)).equals(original.subarray(8192, 2 * 8192))).toBe(true);
    // Incompressible and sealed (this pool encrypts): nonce and tag make it longer than the range,
    // so it comes back as a buffer of its own and the range keeps its bytes. The neighbours are untouched.
    const random = await sealOne(pool, sab, 2 * 8192, 8192, BlobType.data, randomId, true);
    expect(random).toMatchObject({ storedLength: 8192 + 28, compression: Compression.none });
    expect((await pool.open(random.sealed!, BlobType.data, randomId, random.compression, 8192)).equals(original.subarray(2 * 8192))).toBe(true);
    expect(view.subarray(2 * 8192).equals(original.subarray(2 * 8192))).toBe(true);
    expect(view.subarray(0, 8192).equals(original.subarray(0, 8192))).toBe(true);
  });

  it('seals in place in an unencrypted repository: compressed bytes over the raw ones, incompressible ones left where they are', async () => {
    const plainKeys = deriveKeys(null, randomBytes(32));
    const plain = new WorkerPool(plainKeys, { blockSizeBytes: 4096, zstdLevel: 3, threads: 1 });
    try {
      // Small chunks (no probe): zstd of 4 KiB of random bytes is longer than 4 KiB, so it is stored raw.
      const sab = new SharedArrayBuffer(2 * 4096);
      const view = Buffer.from(sab);
      randomBytes(4096).copy(view);
      view.write('hello strata '.repeat(400), 4096, 'latin1');
      const original = Buffer.from(view);
      for (const [offset, compression] of [[0, Compression.none], [4096, Compression.zstd]] as const) {
        const id = hmac(plainKeys.idKey, (await plain.hash(sab, [[offset, 4096]])).digests).toString('hex');
        const s = await sealOne(plain, sab, offset, 4096, BlobType.data, id, true);
        expect(s).toMatchObject({ sealed: null, compression, rawLength: 4096 });
        if (compression === Compression.none) expect(s.storedLength).toBe(4096);
        else expect(s.storedLength).toBeLessThan(4096);
        const stored = Buffer.from(view.subarray(offset, offset + s.storedLength));
        expect((await plain.open(stored, BlobType.data, id, s.compression, 4096)).equals(original.subarray(offset, offset + 4096))).toBe(true);
      }
    } finally {
      await plain.close();
    }
  });

  it('seals a batch in one task, each item as if alone, in order', async () => {
    const sab = new SharedArrayBuffer(4 * 8192);
    const view = Buffer.from(sab);
    randomBytes(4 * 8192).copy(view);
    view.write('hello strata '.repeat(600), 8192, 'latin1');
    const original = Buffer.from(view);
    const items = await Promise.all(
      [0, 1, 3].map(async (k) => ({ offset: k * 8192, length: 8192, type: BlobType.data, idHex: hmac(keys.idKey, (await pool.hash(sab, [[k * 8192, 8192]])).digests).toString('hex') })),
    );
    const rs = await pool.seal(sab, items, false);
    expect(rs.map((r) => r.compression)).toEqual([Compression.none, Compression.zstd, Compression.none]);
    for (const [k, r] of rs.entries()) {
      const { offset, idHex } = items[k]!;
      expect((await pool.open(r.sealed!, BlobType.data, idHex, r.compression, 8192)).equals(original.subarray(offset, offset + 8192))).toBe(true);
    }
    expect(await pool.seal(sab, [], true)).toEqual([]);
  });

  it("makes a data chunk's digests blob beside it when given its stored digests: the id and sealed bytes the engine would make", async () => {
    const sab = new SharedArrayBuffer(4 * 4096);
    randomBytes(4 * 4096).copy(Buffer.from(sab));
    const hashed = await pool.hash(sab, [[0, 4 * 4096]]);
    const idHex = hmac(keys.idKey, hashed.digests).toString('hex');
    const digests16 = new Uint8Array(4 * STORED_DIGEST_BYTES);
    for (let b = 0; b < 4; b++) digests16.set(hashed.digests.subarray(b * 32, b * 32 + STORED_DIGEST_BYTES), b * STORED_DIGEST_BYTES);
    const [withDigests, plain] = await pool.seal(sab, [{ offset: 0, length: 4 * 4096, type: BlobType.data, idHex, digests16 }, { offset: 0, length: 4096, type: BlobType.data, idHex }], true);
    expect(plain!.digests).toBeUndefined();
    const made = withDigests!.digests!;
    expect(made.idHex).toBe(hmac(keys.idKey, Buffer.from(LABELS.digestsBlob), Buffer.from(idHex, 'hex')).toString('hex'));
    const opened = unseal(keys, made.sealed, blobAad(BlobType.digests, Buffer.from(made.idHex, 'hex')), 'digests blob');
    expect(opened.equals(Buffer.from(digests16))).toBe(true);
  });

  it('stores a chunk whose samples do not shrink as it is, and compresses one with a compressible part among random data', async () => {
    const size = 256 * 1024;
    const sab = new SharedArrayBuffer(2 * size);
    const view = Buffer.from(sab);
    randomBytes(2 * size).copy(view);
    // The second chunk: random, but one 4 KiB stretch of text where a probe sample lands (its start).
    view.write('hello strata '.repeat(400), size, 'latin1');
    const sealOf = async (offset: number) => {
      const id = hmac(keys.idKey, (await pool.hash(sab, [[offset, size]])).digests).toString('hex');
      const sealed = await sealOne(pool, sab, offset, size, BlobType.data, id);
      expect((await pool.open(sealed.sealed!, BlobType.data, id, sealed.compression, size)).equals(view.subarray(offset, offset + size))).toBe(true);
      return sealed;
    };
    expect((await sealOf(0)).compression).toBe(Compression.none);
    expect((await sealOf(size)).compression).toBe(Compression.zstd);
  });
});
