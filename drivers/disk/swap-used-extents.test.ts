// Swap maps on mkswap images: the header page only, at any page size, and a volume tail past the
// swap area kept.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileSource } from '../source/file-source.js';
import { Scratch, makeContent, patchFile, run } from '../../test-support/disk.js';
import { readSwapUsedExtents } from './swap-used-extents.js';

const MiB = 1 << 20;

let scratch: Scratch;
beforeAll(() => {
  scratch = new Scratch('strata-swap-');
});
afterAll(() => scratch.cleanup());

async function mapImage(image: string) {
  const source = await FileSource.open(image);
  try {
    return await readSwapUsedExtents(source, 0, source.sizeBytes);
  } finally {
    await source.close();
  }
}

describe('readSwapUsedExtents', () => {
  it('keeps only the header page of a swap area full of stale pages', async () => {
    const image = scratch.image('swap.img', 16 * MiB);
    patchFile(image, 0, makeContent(16 * MiB, 'random', 3));
    run('mkswap', ['-L', 'sw', image]);
    const map = await mapImage(image);
    expect(map.extents).toEqual([{ startBytes: 0, lengthBytes: 4096 }]);
    expect(map.usedBytes).toBe(4096);
    expect(map.fsSizeBytes).toBe(16 * MiB);
  });

  it('finds the header page of a 64 KiB-page swap', async () => {
    const image = scratch.image('swap-64k.img', 16 * MiB);
    run('mkswap', ['--pagesize', '65536', image]);
    const map = await mapImage(image);
    expect(map.extents).toEqual([{ startBytes: 0, lengthBytes: 65536 }]);
  });

  it('keeps the part of the volume past the swap area', async () => {
    const image = scratch.image('swap-short.img', 16 * MiB);
    run('mkswap', [image, String(8 * 1024)]); // an 8 MiB swap area (size in KiB)
    const map = await mapImage(image);
    expect(map.fsSizeBytes).toBe(8 * MiB);
    expect(map.extents).toEqual([
      { startBytes: 0, lengthBytes: 4096 },
      { startBytes: 8 * MiB, lengthBytes: 8 * MiB },
    ]);
  });
});
