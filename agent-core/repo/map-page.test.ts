import { describe, expect, it } from 'vitest';
import { ExtentKind, MAP_PAGE_MAGIC } from './format.js';
import { decodeMapPage, encodeMapPage, sliceExtent, splitIntoPages, type MapExtent } from './map-page.js';

const strataError = (code: string) => expect.objectContaining({ name: 'StrataError', code });

const CHUNK_A = 'aa'.repeat(32);
const CHUNK_B = 'bb'.repeat(32);

const unmapped = (startBytes: number, lengthBytes: number): MapExtent => ({ startBytes, lengthBytes, kind: ExtentKind.unmapped });
const zero = (startBytes: number, lengthBytes: number): MapExtent => ({ startBytes, lengthBytes, kind: ExtentKind.zero });
const data = (startBytes: number, lengthBytes: number, chunkId: string, offsetInChunkBytes: number): MapExtent => ({
  startBytes,
  lengthBytes,
  kind: ExtentKind.data,
  chunkId,
  offsetInChunkBytes,
});

/** A page at 1 MiB with every kind and one chunk named twice. */
const PAGE_START = 1 << 20;
const SAMPLE: MapExtent[] = [
  unmapped(PAGE_START, 4096),
  data(PAGE_START + 4096, 8192, CHUNK_A, 0),
  zero(PAGE_START + 12288, 4096),
  data(PAGE_START + 16384, 4096, CHUNK_B, 65536),
  data(PAGE_START + 20480, 4096, CHUNK_A, 8192),
];
const SAMPLE_LENGTH = 24576;

/** Joins adjacent pieces that one extent was split into (same kind, same chunk, contiguous in it). */
function rejoin(extents: readonly MapExtent[]): MapExtent[] {
  const out: MapExtent[] = [];
  for (const e of extents) {
    const last = out[out.length - 1];
    const continues =
      last !== undefined &&
      last.kind === e.kind &&
      last.startBytes + last.lengthBytes === e.startBytes &&
      (e.kind !== ExtentKind.data || (last.chunkId === e.chunkId && last.offsetInChunkBytes! + last.lengthBytes === e.offsetInChunkBytes));
    if (continues) out[out.length - 1] = { ...last, lengthBytes: last.lengthBytes + e.lengthBytes };
    else out.push(e);
  }
  return out;
}

describe('map page encoding', () => {
  it('round-trips every extent kind, keeping chunk ids and offsets', () => {
    const buf = encodeMapPage(PAGE_START, SAMPLE_LENGTH, SAMPLE);
    expect(decodeMapPage(buf, 'test page')).toEqual({ startBytes: PAGE_START, lengthBytes: SAMPLE_LENGTH, extents: SAMPLE });
  });

  it('lists each chunk id once and sizes extents as FORMAT.md §7 says', () => {
    const buf = encodeMapPage(PAGE_START, SAMPLE_LENGTH, SAMPLE);
    expect(buf.subarray(0, 8).equals(MAP_PAGE_MAGIC)).toBe(true);
    expect(buf.readUInt32LE(8)).toBe(1);
    expect(buf.readUInt32LE(28)).toBe(2);
    // header 32, 2 chunk ids, extent count, 2 non-data extents of 9 bytes, 3 data extents of 17
    expect(buf.length).toBe(32 + 2 * 32 + 4 + 2 * 9 + 3 * 17);
  });

  it('an empty page (no extents, no length) round-trips', () => {
    const buf = encodeMapPage(0, 0, []);
    expect(decodeMapPage(buf, 'test page')).toEqual({ startBytes: 0, lengthBytes: 0, extents: [] });
  });

  it('refuses extents with a gap or that do not cover the page', () => {
    expect(() => encodeMapPage(0, 8192, [zero(0, 4096), zero(5000, 3192)])).toThrow(strataError('Internal'));
    expect(() => encodeMapPage(0, 8192, [zero(0, 4096)])).toThrow(strataError('Internal'));
  });
});

describe('map page decoding', () => {
  const good = encodeMapPage(PAGE_START, SAMPLE_LENGTH, SAMPLE);

  it('rejects the page cut short at every length as Corrupt', () => {
    for (let length = 0; length < good.length; length++) {
      expect(() => decodeMapPage(good.subarray(0, length), 'test page')).toThrow(strataError('Corrupt'));
    }
  });

  it('rejects trailing bytes after the last extent', () => {
    expect(() => decodeMapPage(Buffer.concat([good, Buffer.alloc(1)]), 'test page')).toThrow(strataError('Corrupt'));
  });

  it('rejects an unknown extent kind', () => {
    const bad = Buffer.from(good);
    const firstExtent = 32 + 2 * 32 + 4;
    bad[firstExtent] = 7;
    expect(() => decodeMapPage(bad, 'test page')).toThrow(/unknown kind 7/);
  });

  it('rejects extents that do not add up to the page length', () => {
    const bad = Buffer.from(good);
    bad.writeBigUInt64LE(BigInt(SAMPLE_LENGTH + 4096), 20);
    expect(() => decodeMapPage(bad, 'test page')).toThrow(/does not cover its span exactly/);
  });

  it('rejects a data extent naming a chunk the page does not list', () => {
    const bad = Buffer.from(good);
    const secondExtentChunkIndex = 32 + 2 * 32 + 4 + 9 + 9;
    bad.writeUInt32LE(2, secondExtentChunkIndex);
    expect(() => decodeMapPage(bad, 'test page')).toThrow(/references chunk 2 of 2/);
  });

  it('rejects a wrong magic as Corrupt and a newer version as Unsupported', () => {
    const badMagic = Buffer.from(good);
    badMagic[3] = 0;
    expect(() => decodeMapPage(badMagic, 'test page')).toThrow(strataError('Corrupt'));
    const newer = Buffer.from(good);
    newer.writeUInt32LE(2, 8);
    expect(() => decodeMapPage(newer, 'test page')).toThrow(strataError('Unsupported'));
  });
});

describe('sliceExtent', () => {
  it('moves into the chunk along with the disk for data extents', () => {
    expect(sliceExtent(data(100, 50, CHUNK_A, 10), 20, 30)).toEqual(data(120, 30, CHUNK_A, 30));
  });

  it('only moves the start for zero and unmapped extents', () => {
    expect(sliceExtent(zero(100, 50), 20, 30)).toEqual(zero(120, 30));
    expect(sliceExtent(unmapped(0, 50), 49, 1)).toEqual(unmapped(49, 1));
  });
});

describe('splitIntoPages', () => {
  it('splits a data extent crossing a page boundary, advancing its offset in the chunk', () => {
    const pages = splitIntoPages([unmapped(0, 100), data(100, 200, CHUNK_A, 4), zero(300, 100)], 400, 256);
    expect(pages).toEqual([
      { startBytes: 0, lengthBytes: 256, extents: [unmapped(0, 100), data(100, 156, CHUNK_A, 4)] },
      { startBytes: 256, lengthBytes: 144, extents: [data(256, 44, CHUNK_A, 160), zero(300, 100)] },
    ]);
  });

  it('splits one extent spanning several pages into one piece per page', () => {
    const pages = splitIntoPages([data(0, 1000, CHUNK_B, 0)], 1000, 256);
    expect(pages.map((p) => [p.startBytes, p.lengthBytes])).toEqual([
      [0, 256],
      [256, 256],
      [512, 256],
      [768, 232],
    ]);
    expect(pages.map((p) => p.extents[0]!.offsetInChunkBytes)).toEqual([0, 256, 512, 768]);
  });

  it('does not cut an extent that ends exactly on a page boundary', () => {
    const pages = splitIntoPages([zero(0, 256), unmapped(256, 256)], 512, 256);
    expect(pages).toEqual([
      { startBytes: 0, lengthBytes: 256, extents: [zero(0, 256)] },
      { startBytes: 256, lengthBytes: 256, extents: [unmapped(256, 256)] },
    ]);
  });

  it('gives pages that each encode and that re-join to the input, for many random maps', () => {
    let seed = 12345;
    const next = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    for (let round = 0; round < 200; round++) {
      const pageBytes = 4096 * (1 + next(8));
      const extents: MapExtent[] = [];
      let at = 0;
      const count = 1 + next(12);
      for (let i = 0; i < count; i++) {
        const length = 512 * (1 + next(40));
        const kind = next(3);
        if (kind === 0) extents.push(unmapped(at, length));
        else if (kind === 1) extents.push(zero(at, length));
        else extents.push(data(at, length, next(2) ? CHUNK_A : CHUNK_B, 512 * next(100)));
        at += length;
      }
      const pages = splitIntoPages(extents, at, pageBytes);
      let expectedStart = 0;
      for (const p of pages) {
        expect(p.startBytes).toBe(expectedStart);
        expect(p.lengthBytes).toBe(Math.min(pageBytes, at - p.startBytes));
        expect(decodeMapPage(encodeMapPage(p.startBytes, p.lengthBytes, p.extents), 'page')).toEqual(p);
        expectedStart += p.lengthBytes;
      }
      expect(expectedStart).toBe(at);
      expect(rejoin(pages.flatMap((p) => p.extents))).toEqual(rejoin(extents));
    }
  });
});
