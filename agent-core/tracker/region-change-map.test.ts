import { describe, expect, it } from 'vitest';
import { StrataError } from '../api/errors.js';
import type { Extent } from '../extents.js';
import { plainBitmapBytes } from './change-map.js';
import { BITMAP_HEADER_BYTES, RegionChangeMap } from './region-change-map.js';
import { everyOtherBlockWrites, typicalDayWrites } from './synthetic-writes.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

function rng(seed: number): (n: number) => number {
  let state = seed >>> 0;
  return (n) => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return Math.floor((state / 4294967296) * n);
  };
}

/** The simplest possible tracker: a set of block numbers. */
class SetReference {
  readonly blocks = new Set<number>();
  constructor(
    readonly sizeBytes: number,
    readonly blockSizeBytes: number,
  ) {}
  get blockCount(): number {
    return Math.ceil(this.sizeBytes / this.blockSizeBytes);
  }
  mark(offsetBytes: number, lengthBytes: number): void {
    const end = Math.min(offsetBytes + lengthBytes, this.sizeBytes);
    for (let o = offsetBytes; o < end; o = (Math.floor(o / this.blockSizeBytes) + 1) * this.blockSizeBytes) {
      this.blocks.add(Math.floor(o / this.blockSizeBytes));
    }
  }
  runs(): Extent[] {
    const out: Extent[] = [];
    let start = -1;
    for (let b = 0; b <= this.blockCount; b++) {
      if (b < this.blockCount && this.blocks.has(b)) {
        if (start < 0) start = b;
      } else if (start >= 0) {
        const startBytes = start * this.blockSizeBytes;
        out.push({ startBytes, lengthBytes: Math.min(b * this.blockSizeBytes, this.sizeBytes) - startBytes });
        start = -1;
      }
    }
    return out;
  }
  markedBytes(): number {
    let sum = 0;
    for (const e of this.runs()) sum += e.lengthBytes;
    return sum;
  }
}

function expectSame(map: RegionChangeMap, ref: SetReference): void {
  const runs = [...map.runs()];
  expect(runs).toEqual(ref.runs());
  // Sorted, disjoint and maximal: each run starts after the previous one ends, never touching it.
  for (let i = 1; i < runs.length; i++) {
    expect(runs[i]!.startBytes).toBeGreaterThan(runs[i - 1]!.startBytes + runs[i - 1]!.lengthBytes);
  }
  expect(map.markedBytes).toBe(ref.markedBytes());
  for (let b = 0; b < ref.blockCount; b++) {
    if (map.isMarked(b) !== ref.blocks.has(b)) expect({ block: b, marked: map.isMarked(b) }).toEqual({ block: b, marked: ref.blocks.has(b) });
  }
  expect(map.memoryBytes()).toBeLessThanOrEqual(plainBitmapBytes(map.sizeBytes, map.blockSizeBytes) + BITMAP_HEADER_BYTES);
}

type Pattern = 'scattered' | 'clustered' | 'mixed';

/** Random writes: unaligned, overlapping, adjacent to the last one, huge, empty and past the end. */
function randomWrite(random: (n: number) => number, sizeBytes: number, pattern: Pattern, last: { end: number }): [number, number] {
  const kind = random(20);
  let offset: number;
  let length: number;
  if (pattern === 'clustered') {
    const hot = Math.floor((random(4) * sizeBytes) / 8);
    offset = hot + random(sizeBytes / 64);
    length = 1 + random(600);
  } else if (kind === 0 && pattern === 'mixed') {
    offset = random(sizeBytes);
    length = random(sizeBytes / 3);
  } else if (kind === 1) {
    offset = last.end;
    length = 1 + random(9000);
  } else if (kind === 2) {
    offset = sizeBytes - random(3000);
    length = random(10000);
  } else if (kind === 3) {
    offset = random(sizeBytes);
    length = 0;
  } else {
    offset = random(sizeBytes);
    length = 1 + random(3 * 4096);
  }
  last.end = offset + length;
  return [offset, length];
}

describe('RegionChangeMap', () => {
  const cases: Array<{ pattern: Pattern; blockSizeBytes: number; regionBlocks: number; seed: number; expectShape: string }> = [
    { pattern: 'scattered', blockSizeBytes: 512, regionBlocks: 512, seed: 1, expectShape: 'runs' },
    { pattern: 'clustered', blockSizeBytes: 512, regionBlocks: 512, seed: 2, expectShape: 'leaves' },
    { pattern: 'mixed', blockSizeBytes: 4096, regionBlocks: 64, seed: 3, expectShape: 'any' },
    { pattern: 'scattered', blockSizeBytes: 4096, regionBlocks: 64, seed: 4, expectShape: 'flat' },
  ];
  for (const c of cases) {
    it(`agrees with a set of blocks over thousands of ${c.pattern} marks at ${c.blockSizeBytes}-byte blocks`, () => {
      const sizeBytes = 64 * MiB + 1234; // a partial last block
      const map = new RegionChangeMap(sizeBytes, { blockSizeBytes: c.blockSizeBytes, regionBlocks: c.regionBlocks });
      const ref = new SetReference(sizeBytes, c.blockSizeBytes);
      const random = rng(c.seed);
      const last = { end: 0 };
      const shapes = new Set<string>();
      for (let i = 1; i <= 4000; i++) {
        const [offset, length] = randomWrite(random, sizeBytes, c.pattern, last);
        map.mark(offset, length);
        ref.mark(offset, length);
        const shape = map.shape();
        shapes.add(shape.flat ? 'flat' : shape.bitmapRegions > 0 ? 'leaves' : 'runs');
        if (i % 500 === 0) expectSame(map, ref);
      }
      if (c.expectShape !== 'any') expect(shapes).toContain(c.expectShape);
    });
  }

  it('widens unaligned writes outward so no touched block is lost', () => {
    const map = new RegionChangeMap(1 * MiB);
    map.mark(4095, 2); // touches blocks 0 and 1
    map.mark(3 * 4096 + 4095, 1); // block 3 only
    expect([...map.runs()]).toEqual([
      { startBytes: 0, lengthBytes: 2 * 4096 },
      { startBytes: 3 * 4096, lengthBytes: 4096 },
    ]);
    expect(map.isMarked(2)).toBe(false);
  });

  it('clips writes past the end of the device and counts the partial last block by its bytes', () => {
    const map = new RegionChangeMap(10_000);
    map.mark(9_000, 50_000);
    expect([...map.runs()]).toEqual([{ startBytes: 8192, lengthBytes: 10_000 - 8192 }]);
    expect(map.markedBytes).toBe(10_000 - 8192);
    map.mark(20_000, 4096);
    expect(map.markedBytes).toBe(10_000 - 8192);
  });

  it('refuses negative or fractional ranges with InvalidInput', () => {
    const map = new RegionChangeMap(1 * MiB);
    expect(() => map.mark(-1, 10)).toThrow(StrataError);
    expect(() => map.mark(0, 1.5)).toThrow(/whole, non-negative/);
    expect(() => new RegionChangeMap(1 * MiB, { regionBlocks: 12 })).toThrow(StrataError);
  });

  it('tracks devices past 2^32 blocks with 64-bit runs', () => {
    const sizeBytes = 20 * 1024 * GiB; // 20 TiB: 5.4 billion 4 KiB blocks
    const map = new RegionChangeMap(sizeBytes);
    map.mark(sizeBytes - 3 * 4096, 2 * 4096);
    map.mark(2 ** 32 * 4096, 4096);
    map.mark(0, 4096);
    expect([...map.runs()]).toEqual([
      { startBytes: 0, lengthBytes: 4096 },
      { startBytes: 2 ** 32 * 4096, lengthBytes: 4096 },
      { startBytes: sizeBytes - 3 * 4096, lengthBytes: 2 * 4096 },
    ]);
    expect(map.isMarked(2 ** 32)).toBe(true);
    expect(map.memoryBytes()).toBeLessThan(4 * KiB);
  });

  it('merge marks the union, also across block sizes', () => {
    const sizeBytes = 16 * MiB;
    const a = new RegionChangeMap(sizeBytes, { regionBlocks: 64 });
    const b = new RegionChangeMap(sizeBytes, { blockSizeBytes: 512, regionBlocks: 64 });
    const ref = new SetReference(sizeBytes, 4096);
    const random = rng(9);
    const last = { end: 0 };
    for (let i = 0; i < 2000; i++) {
      const [offset, length] = randomWrite(random, sizeBytes, 'scattered', last);
      (i % 2 === 0 ? a : b).mark(offset, length);
      ref.mark(offset, length);
    }
    a.merge(b);
    expectSame(a, ref);
    a.merge(a);
    expectSame(a, ref);
  });

  it('takeAndReset during a burst of marks loses nothing and hands back independent maps', async () => {
    const sizeBytes = 32 * MiB;
    const live = new RegionChangeMap(sizeBytes, { regionBlocks: 64 });
    const ref = new SetReference(sizeBytes, 4096);
    const random = rng(21);
    const taken: RegionChangeMap[] = [];
    let done = false;
    // The feed: marks arrive in order, yielding to the event loop between small batches, as a
    // tracker's child-process output would.
    const feed = (async () => {
      const last = { end: 0 };
      for (let i = 0; i < 20_000; i++) {
        const [offset, length] = randomWrite(random, sizeBytes, 'mixed', last);
        live.mark(offset, length);
        ref.mark(offset, length);
        if (i % 7 === 0) await new Promise((resolve) => setImmediate(resolve));
      }
      done = true;
    })();
    // The backup: takes the map at arbitrary moments while the feed runs.
    while (!done) {
      taken.push(live.takeAndReset());
      await new Promise((resolve) => setImmediate(resolve));
    }
    await feed;
    taken.push(live.takeAndReset());
    expect(taken.length).toBeGreaterThan(100);
    expect(live.markedBytes).toBe(0);
    expect([...live.runs()]).toEqual([]);

    const union = new RegionChangeMap(sizeBytes);
    for (const t of taken) union.merge(t);
    expectSame(union, ref);

    // A map handed back does not see marks made after it was taken.
    const before = taken[0]!.markedBytes;
    live.mark(0, sizeBytes);
    expect(taken[0]!.markedBytes).toBe(before);
  });

  it('holds a typical day on a 100 GiB device in at most 64 KiB', () => {
    const sizeBytes = 100 * GiB;
    const map = new RegionChangeMap(sizeBytes);
    let peak = 0;
    for (const w of typicalDayWrites(sizeBytes)) {
      map.mark(w.offsetBytes, w.lengthBytes);
      peak = Math.max(peak, map.memoryBytes());
    }
    expect(map.memoryBytes()).toBeLessThanOrEqual(64 * KiB);
    expect(peak).toBeLessThanOrEqual(64 * KiB);
    expect(map.markedBytes).toBeGreaterThan(1 * GiB);
    expect(map.shape().flat).toBe(false);
  });

  it('never holds more than a plain bitmap when every other block of 100 GiB is written', () => {
    const sizeBytes = 100 * GiB;
    const bitmapBytes = plainBitmapBytes(sizeBytes);
    expect(bitmapBytes).toBe(3_276_800); // seed 003's figure
    const map = new RegionChangeMap(sizeBytes);
    let i = 0;
    let peak = 0;
    for (const w of everyOtherBlockWrites(sizeBytes)) {
      map.mark(w.offsetBytes, w.lengthBytes);
      if (++i % 4096 === 0) peak = Math.max(peak, map.memoryBytes());
    }
    expect(map.memoryBytes()).toBeLessThanOrEqual(bitmapBytes + BITMAP_HEADER_BYTES);
    expect(peak).toBeLessThanOrEqual(bitmapBytes + BITMAP_HEADER_BYTES);
    expect(map.markedBytes).toBe(sizeBytes / 2);
    expect(map.isMarked(0)).toBe(true);
    expect(map.isMarked(1)).toBe(false);
    expect(map.isMarked(26_214_398)).toBe(true);
  });
});
