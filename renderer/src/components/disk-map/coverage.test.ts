import { describe, expect, it } from 'vitest';
import type { Extent } from '../../../../agent-core/api/extents.js';
import {
  buildExtentIndex,
  coveredBelow,
  coveredBytes,
  fillCellCoverage,
  fillCellCoverageFromList,
  gallopTo,
  intersects,
  lastStartingAtOrBefore,
  toExtentIndex,
} from './coverage.js';

/** Deterministic PRNG (mulberry32) so a failure can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function bruteCovered(extents: readonly Extent[], start: number, end: number): number {
  let total = 0;
  // A plain scan; it stops at the first extent past the range since the list is sorted.
  for (const [s, length] of extents) {
    if (s >= end) break;
    const lo = Math.max(s, start);
    const hi = Math.min(s + length, end);
    if (hi > lo) total += hi - lo;
  }
  return total;
}

/** Sorted, non-overlapping extents in 4 KiB blocks over `sizeBytes`. */
function randomExtents(count: number, sizeBytes: number, seed: number): Extent[] {
  const random = prng(seed);
  const block = 4096;
  const slot = Math.floor(sizeBytes / count / block) * block;
  const list: Extent[] = [];
  for (let i = 0; i < count; i++) {
    const slotStart = i * slot;
    const lengthBlocks = 1 + Math.floor(random() * (slot / block - 1));
    const gapBlocks = Math.floor(random() * (slot / block - lengthBlocks));
    list.push([slotStart + gapBlocks * block, lengthBlocks * block]);
  }
  return list;
}

describe('coverage', () => {
  const extents: Extent[] = [
    [0, 10],
    [20, 5],
    [30, 10],
  ];
  const index = buildExtentIndex(extents);

  it('counts the bytes of every extent and of none', () => {
    expect(index.totalBytes).toBe(25);
    expect(buildExtentIndex([]).totalBytes).toBe(0);
    expect(coveredBytes(buildExtentIndex([]), 0, 100)).toBe(0);
  });

  it('is exact on ranges that start, end and fall inside gaps and extents', () => {
    expect(coveredBytes(index, 0, 10)).toBe(10);
    expect(coveredBytes(index, 5, 22)).toBe(7);
    expect(coveredBytes(index, 10, 20)).toBe(0);
    expect(coveredBytes(index, 24, 31)).toBe(2);
    expect(coveredBytes(index, 0, 1000)).toBe(25);
    expect(coveredBytes(index, 40, 1000)).toBe(0);
    expect(coveredBytes(index, 35, 35)).toBe(0);
    expect(coveredBytes(index, 36, 30)).toBe(0);
    expect(coveredBelow(index, 0)).toBe(0);
    expect(coveredBelow(index, 25)).toBe(15);
  });

  it('finds the last extent starting at or before an offset', () => {
    expect(lastStartingAtOrBefore(index, -1)).toBe(-1);
    expect(lastStartingAtOrBefore(index, 0)).toBe(0);
    expect(lastStartingAtOrBefore(index, 19)).toBe(0);
    expect(lastStartingAtOrBefore(index, 20)).toBe(1);
    expect(lastStartingAtOrBefore(index, 1e15)).toBe(2);
  });

  it('gallops to the same extent a plain search finds', () => {
    const many = buildExtentIndex(Array.from({ length: 1000 }, (_, i): Extent => [i * 10, 5]));
    for (const [from, offset] of [[0, 0], [0, 9], [0, 10], [3, 9999], [3, 35], [999, 10_000], [500, 5004]] as const) {
      expect(gallopTo(many, offset, from)).toBe(lastStartingAtOrBefore(many, offset));
    }
  });

  it('takes a list or an index built earlier', () => {
    expect(toExtentIndex(index)).toBe(index);
    expect(toExtentIndex(extents).totalBytes).toBe(25);
  });

  it('tells whether a range touches any extent', () => {
    expect(intersects(index, 10, 20)).toBe(false);
    expect(intersects(index, 19, 21)).toBe(true);
  });

  it('fills per-cell fractions and clips the last cell at the disk end', () => {
    const out = new Float32Array(5);
    fillCellCoverage(index, 0, 10, 5, 45, out);
    expect(Array.from(out)).toEqual([1, 0, 0.5, 1, 0]);
    fillCellCoverage(index, 30, 8, 3, 42, out);
    // cells [30,38) [38,42) clipped, [46,..) past the end
    expect(Array.from(out.subarray(0, 3))).toEqual([1, 0.5, 0]);
  });

  const sizeBytes = 2 * 1024 ** 4;
  const big = randomExtents(1_000_000, sizeBytes, 42);
  const bigIndex = buildExtentIndex(big);

  it('answers a 2 TiB, one-million-extent map like a brute-force scan on random ranges', () => {
    expect(bigIndex.totalBytes).toBe(bruteCovered(big, 0, sizeBytes));
    const random = prng(7);
    for (let q = 0; q < 40; q++) {
      // Mix of tiny (block-sized) and wide ranges, at unaligned offsets too.
      const start = Math.floor(random() * sizeBytes);
      const width = q % 2 === 0 ? Math.floor(random() * 1024 ** 2) : Math.floor(random() * sizeBytes * 0.01);
      const end = Math.min(sizeBytes, start + width);
      expect(coveredBytes(bigIndex, start, end)).toBe(bruteCovered(big, start, end));
    }
  }, 60_000);

  it('fills cells of a 1M-extent map exactly like per-cell brute force', () => {
    const cells = 24;
    const out = new Float32Array(cells);
    const random = prng(3);
    for (const bytesPerCell of [4096, 4096 * 37, 1024 ** 3]) {
      const first = Math.floor(random() * (sizeBytes - cells * bytesPerCell) / 4096) * 4096;
      fillCellCoverage(bigIndex, first, bytesPerCell, cells, sizeBytes, out);
      for (let c = 0; c < cells; c++) {
        const s = first + c * bytesPerCell;
        expect(out[c]).toBeCloseTo(bruteCovered(big, s, s + bytesPerCell) / bytesPerCell, 6);
      }
    }
  }, 60_000);

  it('fills cells straight from the list exactly as fillCellCoverage does from its index', () => {
    const small: Extent[] = [
      [0, 10],
      [20, 5],
      [30, 10],
      [44, 30],
    ];
    // Windows that start before, inside and past the extents; cells clipped at the limit and wholly past it.
    const cases: [list: Extent[], first: number, bytesPerCell: number, cells: number, limit: number][] = [
      [small, 0, 10, 8, 80],
      [small, 3, 7, 9, 80],
      [small, 25, 4, 6, 80],
      [small, 70, 8, 3, 74],
      [small, 90, 8, 3, 95],
      [small, 0, 100, 1, 74],
      [[], 0, 4096, 4, 16384],
      [big.slice(0, 20_000), 0, 4096 * 64, 700, sizeBytes],
      [big.slice(0, 20_000), 123_456_789, 4096 * 1000, 500, sizeBytes],
      [big, 0, 4096 * 2 ** 16, 8200, sizeBytes],
      [big, 4096 * 2 ** 12 * 1000, 4096 * 2 ** 12, 7000, sizeBytes],
    ];
    for (const [list, first, bytesPerCell, cells, limit] of cases) {
      const expected = new Float32Array(cells);
      fillCellCoverage(buildExtentIndex(list), first, bytesPerCell, cells, limit, expected);
      const out = new Float32Array(cells).fill(-1);
      expect(fillCellCoverageFromList(list, first, bytesPerCell, cells, limit, out)).toBe(true);
      expect(Array.from(out)).toEqual(Array.from(expected));
    }
    // An extent at or past the limit: it declines, and writes nothing.
    const out = new Float32Array(4).fill(-1);
    expect(fillCellCoverageFromList(small, 0, 10, 4, 40, out)).toBe(false);
    expect(Array.from(out)).toEqual([-1, -1, -1, -1]);
  }, 60_000);
});
