import { describe, expect, it } from 'vitest';
import { alignExtents, bitmapToExtents, complementExtents, intersectExtents, normalizeExtents, totalBytes } from './extents.js';

const x = (startBytes: number, lengthBytes: number) => ({ startBytes, lengthBytes });

describe('extents', () => {
  it('normalize merges overlapping and touching runs and drops empty ones', () => {
    expect(normalizeExtents([x(10, 5), x(0, 10), x(30, 0), x(14, 6), x(40, 2)])).toEqual([x(0, 20), x(40, 2)]);
  });

  it('intersect keeps only the common parts', () => {
    expect(intersectExtents([x(0, 10), x(20, 10)], [x(5, 20)])).toEqual([x(5, 5), x(20, 5)]);
  });

  it('complement covers the gaps up to the size', () => {
    expect(complementExtents([x(2, 3), x(8, 2)], 12)).toEqual([x(0, 2), x(5, 3), x(10, 2)]);
    expect(complementExtents([], 7)).toEqual([x(0, 7)]);
  });

  it('align widens outward and clamps to the limit', () => {
    expect(alignExtents([x(5, 2), x(4100, 10)], 4096, 6000)).toEqual([x(0, 6000)]);
    expect(alignExtents([x(5000, 100)], 4096, 100000)).toEqual([x(4096, 4096)]);
  });

  it('bitmap runs follow LSB-first bit order, across whole-byte fast paths', () => {
    // bits: byte0 = 0b00000110 (units 1,2), byte1 = 0xff (8..15), byte2 = 0x01 (16)
    const runs = bitmapToExtents(Uint8Array.from([0b110, 0xff, 0x01, 0x00]), 32, 1024, 1 << 20);
    expect(runs).toEqual([x((1 << 20) + 1024, 2048), x((1 << 20) + 8 * 1024, 9 * 1024)]);
    expect(totalBytes(runs)).toBe(11 * 1024);
  });

  it('bitmap runs stop at the bit count even if padding bits are set', () => {
    expect(bitmapToExtents(Uint8Array.from([0xff]), 3, 4096, 0)).toEqual([x(0, 3 * 4096)]);
  });
});
