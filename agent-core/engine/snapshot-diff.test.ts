import { describe, expect, it } from 'vitest';
import { ExtentKind } from '../repo/format.js';
import type { MapExtent } from '../repo/map-page.js';
import { differingExtents, storedExtents } from './snapshot-diff.js';

const K = 4096;
const data = (startBytes: number, lengthBytes: number, chunkId: string, offsetInChunkBytes = 0): MapExtent => ({ startBytes, lengthBytes, kind: ExtentKind.data, chunkId, offsetInChunkBytes });
const zero = (startBytes: number, lengthBytes: number): MapExtent => ({ startBytes, lengthBytes, kind: ExtentKind.zero });
const unmapped = (startBytes: number, lengthBytes: number): MapExtent => ({ startBytes, lengthBytes, kind: ExtentKind.unmapped });

describe('storedExtents', () => {
  it('keeps data and zeros, merged, and drops unmapped space', () => {
    expect(storedExtents([data(0, 2 * K, 'a'), zero(2 * K, K), unmapped(3 * K, 5 * K), data(8 * K, K, 'b')])).toEqual([
      { startBytes: 0, lengthBytes: 3 * K },
      { startBytes: 8 * K, lengthBytes: K },
    ]);
  });
});

describe('differingExtents', () => {
  it('finds nothing between a map and itself', () => {
    const m = [data(0, 4 * K, 'a'), unmapped(4 * K, 4 * K), zero(8 * K, K)];
    expect(differingExtents(m, m, K)).toEqual([]);
  });

  it('sees the same chunk split differently as the same content', () => {
    const a = [data(0, 4 * K, 'a', 0)];
    const b = [data(0, K, 'a', 0), data(K, 3 * K, 'a', K)];
    expect(differingExtents(a, b, K)).toEqual([]);
  });

  it('reports a rewritten block, a shifted offset and a kind change, merging neighbours', () => {
    const a = [data(0, 8 * K, 'a'), unmapped(8 * K, 4 * K)];
    const b = [data(0, 2 * K, 'a'), data(2 * K, K, 'new'), data(3 * K, K, 'a', 4 * K), data(4 * K, 4 * K, 'a', 4 * K), zero(8 * K, K), unmapped(9 * K, 3 * K)];
    expect(differingExtents(a, b, K)).toEqual([{ startBytes: 2 * K, lengthBytes: 2 * K }, { startBytes: 8 * K, lengthBytes: K }]);
  });

  it('rounds a difference inside a block out to the whole block', () => {
    const a = [data(0, 100, 'a'), data(100, 2 * K - 100, 'a', 100)];
    const b = [data(0, 100, 'b'), data(100, 2 * K - 100, 'a', 100)];
    expect(differingExtents(a, b, K)).toEqual([{ startBytes: 0, lengthBytes: K }]);
  });

  it('counts the grown tail of a larger disk when it holds data', () => {
    const a = [data(0, 4 * K, 'a')];
    const b = [data(0, 4 * K, 'a'), unmapped(4 * K, 2 * K), data(6 * K, 2 * K, 'c')];
    expect(differingExtents(a, b, K)).toEqual([{ startBytes: 6 * K, lengthBytes: 2 * K }]);
    expect(differingExtents(b, a, K)).toEqual([{ startBytes: 6 * K, lengthBytes: 2 * K }]);
  });
});
