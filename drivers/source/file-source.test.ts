// FileSource on real files: the shared source contract on a dense and a sparse image, and the
// holes of a sparse image left out of its allocated extents.
import { execFileSync } from 'node:child_process';
import { closeSync, fdatasyncSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { fadvise } from '../../native/index.js';
import { makeContent, Scratch } from '../../test-support/disk.js';
import { runBlockSourceContract } from './block-source-contract.js';
import { FileSource } from './file-source.js';

const MiB = 1 << 20;
const scratch = new Scratch();
afterAll(() => scratch.cleanup());

let made = 0;

/** Writes only the 64 KiB pieces of content that hold a non-zero byte; the rest stays a hole. */
function sparseImage(content: Buffer): string {
  const file = scratch.image(`sparse-${made++}.img`, content.length);
  const fd = openSync(file, 'r+');
  try {
    for (let at = 0; at < content.length; at += 65536) {
      const piece = content.subarray(at, at + 65536);
      if (piece.some((b) => b !== 0)) writeSync(fd, piece, 0, piece.length, at);
    }
  } finally {
    closeSync(fd);
  }
  return file;
}

runBlockSourceContract(
  'FileSource, dense image of an odd size',
  async (content) => {
    const file = scratch.path(`dense-${made++}.img`);
    writeFileSync(file, content);
    return FileSource.open(file);
  },
  { sizeBytes: 4 * MiB + 300 },
);

runBlockSourceContract('FileSource, sparse image', async (content) => FileSource.open(sparseImage(content)), { sizeBytes: 8 * MiB });

/** Bytes of the file in the page cache, by util-linux fincore. */
function residentBytes(file: string): number {
  return Number(execFileSync('fincore', ['--bytes', '--noheadings', '--output', 'RES', file], { encoding: 'utf8' }).trim());
}

describe('FileSource', () => {
  it('prefetch asks the kernel to read a range into the page cache ahead of the reads', async () => {
    const file = scratch.path('cold.img');
    writeFileSync(file, makeContent(16 * MiB, 'random', 9));
    const fd = openSync(file, 'r');
    try {
      fdatasyncSync(fd);
      fadvise(fd, 0, 0, 'dontneed');
    } finally {
      closeSync(fd);
    }
    expect(residentBytes(file)).toBeLessThan(1 * MiB);
    const source = await FileSource.open(file);
    try {
      source.prefetch(4 * MiB, 8 * MiB);
      // Readahead completes in the background: wait for it (a cold read would not need to).
      for (let i = 0; i < 100 && residentBytes(file) < 8 * MiB; i++) await new Promise((r) => setTimeout(r, 20));
      expect(residentBytes(file)).toBeGreaterThanOrEqual(8 * MiB);
      expect(residentBytes(file)).toBeLessThan(12 * MiB);
    } finally {
      await source.close();
    }
  });

  it('lists only the written ranges of a sparse image, so holes are never read', async () => {
    const file = scratch.image('holes.img', 16 * MiB);
    const fd = openSync(file, 'r+');
    writeSync(fd, makeContent(MiB, 'random', 3), 0, MiB, 4 * MiB);
    writeSync(fd, makeContent(4096, 'random', 4), 0, 4096, 10 * MiB);
    closeSync(fd);
    const source = await FileSource.open(file);
    try {
      expect(source.sizeBytes).toBe(16 * MiB);
      expect(await source.allocatedExtents()).toEqual([
        { startBytes: 4 * MiB, lengthBytes: MiB },
        { startBytes: 10 * MiB, lengthBytes: 4096 },
      ]);
      expect((await source.read(2 * MiB, 4096)).every((b) => b === 0)).toBe(true);
    } finally {
      await source.close();
    }
  });

  it('ends its last extent at the end of a file whose size is not a whole block', async () => {
    const file = scratch.path('ragged.img');
    writeFileSync(file, makeContent(5000, 'random', 5));
    const source = await FileSource.open(file);
    try {
      expect(await source.allocatedExtents()).toEqual([{ startBytes: 0, lengthBytes: 5000 }]);
    } finally {
      await source.close();
    }
  });

  it('has no extents and reads nothing when the file is empty', async () => {
    const file = scratch.image('empty.img', 0);
    const source = await FileSource.open(file);
    try {
      expect(source.sizeBytes).toBe(0);
      expect(await source.allocatedExtents()).toEqual([]);
      expect((await source.read(0, 4096)).length).toBe(0);
    } finally {
      await source.close();
    }
  });
});
