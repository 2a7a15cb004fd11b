import { createHmac, randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { deriveKeys, hmac } from '../../agent-core/repo/crypto.js';
import { BlobType, Compression } from '../../agent-core/repo/format.js';
import { WorkerPool } from './worker-pool.js';

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

  it('seals a chunk that opens back to the same bytes, and refuses one whose id does not match', async () => {
    const sab = new SharedArrayBuffer(8192);
    const view = Buffer.from(sab);
    view.write('hello strata '.repeat(600));
    const digests = (await pool.hash(sab, [[0, 8192]])).digests;
    const id = hmac(keys.idKey, digests).toString('hex');
    const s = await pool.seal(sab, 0, 8192, BlobType.data, id);
    expect(s.compression).toBe(Compression.zstd);
    const raw = await pool.open(s.sealed, BlobType.data, id, s.compression, 8192);
    expect(raw.equals(view)).toBe(true);
    await expect(pool.open(s.sealed, BlobType.data, 'f'.repeat(64), s.compression, 8192)).rejects.toMatchObject({ code: 'Corrupt' });
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
      const sealed = await pool.seal(sab, offset, size, BlobType.data, id);
      expect((await pool.open(sealed.sealed, BlobType.data, id, sealed.compression, size)).equals(view.subarray(offset, offset + size))).toBe(true);
      return sealed;
    };
    expect((await sealOf(0)).compression).toBe(Compression.none);
    expect((await sealOf(size)).compression).toBe(Compression.zstd);
  });
});
