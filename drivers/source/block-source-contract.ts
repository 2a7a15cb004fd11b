// The shared suite every BlockSource runs (image file, block device, later tracked devices and
// hypervisor disks): sizes, exact reads at any alignment, short reads only at the end, and
// allocated extents that never hide data. A new source is a new file plus one call.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { BlockSource } from '../../agent-core/block-source.js';
import { extentEnd } from '../../agent-core/extents.js';

export interface SourceContractOptions {
  /** Size of the content the suite asks for; a device needs whole sectors. */
  readonly sizeBytes: number;
  /** The source reads many sector-aligned runs in one call (readRunsInto); the suite checks that it does, and how. */
  readonly batchedReads?: boolean;
}

/**
 * Content for a source: random data with a zero gap in the middle, so extents and reads have a
 * hole to get wrong.
 */
export function contractContent(sizeBytes: number): Buffer {
  const content = randomBytes(sizeBytes);
  content.fill(0, Math.floor(sizeBytes / 4), Math.floor(sizeBytes / 2));
  return content;
}

/**
 * Runs the contract on sources from openWith, which must return a source whose bytes are exactly
 * content. The suite closes every source it opens.
 */
export function runBlockSourceContract(name: string, openWith: (content: Buffer) => Promise<BlockSource>, options: SourceContractOptions): void {
  const size = options.sizeBytes;

  async function withSource(test: (source: BlockSource, content: Buffer) => Promise<void>): Promise<void> {
    const content = contractContent(size);
    const source = await openWith(content);
    try {
      await test(source, content);
    } finally {
      await source.close();
    }
  }

  describe(`block source contract: ${name}`, () => {
    it('reports its size and a whole-sector geometry', () =>
      withSource(async (source) => {
        expect(source.sizeBytes).toBe(size);
        expect([512, 4096]).toContain(source.logicalSectorSize);
        expect(source.physicalSectorSize).toBeGreaterThanOrEqual(source.logicalSectorSize);
      }));

    it('reads any range, aligned or not, exactly as stored', () =>
      withSource(async (source, content) => {
        const ranges: Array<[number, number]> = [
          [0, 4096],
          [3 * 4096, 64 * 1024],
          [1000, 5000],
          [4095, 2],
          [Math.floor(size / 4) - 100, 200], // across the edge of the zero gap
          [size - 4096, 4096],
          [size - 100, 100],
          [0, size],
        ];
        for (const [offset, length] of ranges) {
          const got = await source.read(offset, length);
          expect(got.length, `read(${offset}, ${length})`).toBe(length);
          expect(got.equals(content.subarray(offset, offset + length)), `read(${offset}, ${length})`).toBe(true);
        }
      }));

    it('reads short only at the end, and nothing past it', () =>
      withSource(async (source, content) => {
        const tail = await source.read(size - 512, 8192);
        expect(tail.equals(content.subarray(size - 512))).toBe(true);
        expect((await source.read(size, 4096)).length).toBe(0);
        expect((await source.read(size + 8192, 4096)).length).toBe(0);
      }));

    it('reads into a caller buffer at an offset, touching nothing else, and returns the count', () =>
      withSource(async (source, content) => {
        const target = Buffer.from(new SharedArrayBuffer(3 * 65536)).fill(0xee);
        expect(await source.readInto(target, 65536, 65536, 8192)).toBe(65536);
        expect(target.subarray(65536, 131072).equals(content.subarray(8192, 8192 + 65536))).toBe(true);
        expect(target.subarray(0, 65536).every((b) => b === 0xee)).toBe(true);
        expect(target.subarray(131072).every((b) => b === 0xee)).toBe(true);
        expect(await source.readInto(target, 7, 1000, size - 300)).toBe(300);
        expect(target.subarray(7, 307).equals(content.subarray(size - 300))).toBe(true);
        expect(target[307]).toBe(0xee);
      }));

    if (options.batchedReads) {
      it('reads many sector-aligned runs in one call, each to its own place, short only at the end', () =>
        withSource(async (source, content) => {
          expect(source.readRunsInto, 'readRunsInto').toBeDefined();
          const sector = source.logicalSectorSize;
          const target = Buffer.from(new SharedArrayBuffer(1 << 20)).fill(0xee);
          // [target offset, length, source offset], at page offsets of the buffer and at odd ones. (A
          // SharedArrayBuffer's memory is not page-aligned, so O_DIRECT sources bounce all of them;
          // native/index.test.ts reads into page-aligned memory too.)
          const runs: [number, number, number][] = [
            [0, 4096, 8192],
            [8192, 3 * sector, Math.floor(size / 4 / sector) * sector - sector], // across the edge of the zero gap
            [65536 + 3, 2 * sector, 40 * sector],
            [131072, 65536, 0],
            [262144 + 1, 8192, size - sector], // the end: one sector, then nothing
          ];
          const got = await source.readRunsInto!(target, runs);
          expect(got).toEqual([4096, 3 * sector, 2 * sector, 65536, sector]);
          runs.forEach(([at, , from], i) => {
            expect(target.subarray(at, at + got[i]!).equals(content.subarray(from, from + got[i]!)), `run ${i}`).toBe(true);
            expect(target[at + got[i]!], `after run ${i}`).toBe(0xee);
          });
          expect(target.subarray(4096, 8192).every((b) => b === 0xee)).toBe(true);
          expect(target.subarray(8192 + 3 * sector, 65536 + 3).every((b) => b === 0xee)).toBe(true);
          // Off the sector grid (no backup asks for it, a read-back of odd extents might): still exact.
          const odd: [number, number, number][] = [
            [300_000, 1000, 4097],
            [400_000, 4096, 2 * sector],
          ];
          expect(await source.readRunsInto!(target, odd)).toEqual([1000, 4096]);
          for (const [at, l, from] of odd) expect(target.subarray(at, at + l).equals(content.subarray(from, from + l))).toBe(true);
        }));
    }

    it('serves many reads at once, each with its own bytes', () =>
      withSource(async (source, content) => {
        const offsets = Array.from({ length: 32 }, (_, i) => (i * 7919 * 512) % (size - 65536));
        const reads = await Promise.all(offsets.map((o) => source.read(o, 65536)));
        reads.forEach((got, i) => expect(got.equals(content.subarray(offsets[i]!, offsets[i]! + 65536))).toBe(true));
      }));

    it('lists allocated extents that are sorted, inside the source and cover every non-zero byte', () =>
      withSource(async (source, content) => {
        const extents = await source.allocatedExtents();
        let previousEnd = 0;
        for (const e of extents) {
          expect(e.lengthBytes).toBeGreaterThan(0);
          expect(e.startBytes).toBeGreaterThanOrEqual(previousEnd);
          previousEnd = extentEnd(e);
        }
        expect(previousEnd).toBeLessThanOrEqual(size);
        const covered = Buffer.alloc(size);
        for (const e of extents) covered.fill(1, e.startBytes, extentEnd(e));
        const hidden = content.findIndex((b, i) => b !== 0 && covered[i] === 0);
        expect(hidden, 'first non-zero byte outside every extent').toBe(-1);
      }));

    it('takes sequential-access advice without failing', () =>
      withSource(async (source, content) => {
        source.adviseSequential();
        expect((await source.read(0, 4096)).equals(content.subarray(0, 4096))).toBe(true);
      }));
  });
}
