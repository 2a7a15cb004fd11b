// The pure parts of convergence: what a pass re-reads, how it keeps the rest, and the frozen copy
// that serves only what it captured. The real thing, under a live writer, is agent/consistent-copy.test.ts.
import { describe, expect, it } from 'vitest';
import type { BlockSource } from '../block-source.js';
import { ExtentKind } from '../repo/format.js';
import type { MapExtent } from '../repo/map-page.js';
import { CapturedSource, changedBlocks, rereadPass } from './converge.js';

const KiB = 1024;

/** A source over a buffer, counting what it is asked to read. */
function bufferSource(data: Buffer): BlockSource & { reads: number } {
  const s = {
    path: 'memory',
    kind: 'block-device' as const,
    sizeBytes: data.length,
    logicalSectorSize: 512,
    physicalSectorSize: 4096,
    reads: 0,
    read: async (o: number, l: number) => data.subarray(o, Math.min(data.length, o + l)),
    readInto: async (t: Uint8Array, to: number, l: number, o: number) => {
      s.reads += l;
      const part = data.subarray(o, Math.min(data.length, o + l));
      t.set(part, to);
      return part.length;
    },
    allocatedExtents: async () => [{ startBytes: 0, lengthBytes: data.length }],
    adviseSequential: () => {},
    close: async () => {},
  };
  return s;
}

describe('convergence passes', () => {
  const disk = { allocated: [{ startBytes: 0, lengthBytes: 64 * KiB }], size: 64 * KiB, bs: 4 * KiB };

  it('re-reads changed blocks aligned outward, beyond the valid map, and everything after a gap', () => {
    const take = { changes: [{ startBytes: 5 * KiB, lengthBytes: 1 }, { startBytes: 60 * KiB, lengthBytes: 8 * KiB }], epochKey: 'b', previousEpochKey: 'a', gapReason: null };
    expect(changedBlocks(take, disk)).toEqual([
      { startBytes: 4 * KiB, lengthBytes: 4 * KiB },
      { startBytes: 60 * KiB, lengthBytes: 4 * KiB },
    ]);
    expect(changedBlocks({ ...take, gapReason: 'probe restarted (test)' }, disk)).toEqual(disk.allocated);
  });

  it('maps the re-read blocks as valid and keeps the rest of the previous pass, unmapped stays unmapped', () => {
    const previous: MapExtent[] = [
      { startBytes: 0, lengthBytes: 16 * KiB, kind: ExtentKind.data, chunkId: 'c'.repeat(64), offsetInChunkBytes: 0 },
      { startBytes: 16 * KiB, lengthBytes: 16 * KiB, kind: ExtentKind.zero },
      { startBytes: 32 * KiB, lengthBytes: 32 * KiB, kind: ExtentKind.unmapped },
    ];
    const source = bufferSource(Buffer.alloc(64 * KiB));
    const plan = rereadPass(previous, [{ startBytes: 40 * KiB, lengthBytes: 4 * KiB }], source, disk);
    expect(plan.valid).toEqual([
      { startBytes: 0, lengthBytes: 32 * KiB },
      { startBytes: 40 * KiB, lengthBytes: 4 * KiB },
    ]);
    expect(plan.toRead).toEqual([{ startBytes: 40 * KiB, lengthBytes: 4 * KiB }]);
    expect(plan).toMatchObject({ keepUnread: true, compare: false, base: previous, readGapBytes: 0 });
  });

  it('captures ranges in memory and serves exactly those, refusing anything else', async () => {
    const data = Buffer.alloc(64 * KiB);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7) & 0xff;
    const source = bufferSource(data);
    const captured = await CapturedSource.capture(source, [
      { startBytes: 4 * KiB, lengthBytes: 8 * KiB },
      { startBytes: 32 * KiB, lengthBytes: 4 * KiB },
    ]);
    expect(source.reads).toBe(12 * KiB);
    expect(captured.capturedBytes).toBe(12 * KiB);
    // Later writes to the source do not reach the copy.
    data.fill(0);
    const out = Buffer.alloc(8 * KiB);
    expect(await captured.readInto(out, 0, 8 * KiB, 4 * KiB)).toBe(8 * KiB);
    expect(out[0]).toBe(((4 * KiB) * 7) & 0xff);
    expect(out[100]).toBe(((4 * KiB + 100) * 7) & 0xff);
    await expect(captured.readInto(out, 0, 8 * KiB, 8 * KiB)).rejects.toMatchObject({ code: 'Internal' });
    expect(await captured.allocatedExtents()).toEqual([
      { startBytes: 4 * KiB, lengthBytes: 8 * KiB },
      { startBytes: 32 * KiB, lengthBytes: 4 * KiB },
    ]);
  });
});
