// A tracked incremental maps the disk as a checksum incremental of the same change does: the
// tracked pass reads only the marked blocks and maps the rest from the parent's extents without
// looking at them block by block, so every block must still come out of the same kind and with the
// same bytes. Its chunks differ by design: it stores every marked block without comparing, and
// gathers scattered blocks into a few chunks. Real repositories in temp directories; the source is a buffer with holes, and hashing
// and sealing run on the calling thread (the pool is a driver, exercised by agent/tracked-backup.test.ts).
import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { tempRepoDir, type TempRepoDir } from '../../test-support/repo-dir.js';
import type { BlockSource } from '../block-source.js';
import type { Extent } from '../extents.js';
import { hmac, type RepoKeys } from '../repo/crypto.js';
import { BlobType, Compression, ExtentKind } from '../repo/format.js';
import type { MapExtent } from '../repo/map-page.js';
import { sealBlob } from '../repo/pack.js';
import { Repository } from '../repo/repository.js';
import { runBackup, type BackupResult, type TrackedChanges } from './backup.js';
import type { BlockCompute, HashedWindow, SealedBlob, SealItem } from './compute.js';
import { loadExtents } from './parent-view.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const BS = 4 * KiB;
/** Not a whole number of blocks: the last block is partial. */
const SIZE = 20 * MiB + 1536;

/** The compute role on the calling thread: HMAC block digests, blobs stored uncompressed. */
class InlineCompute implements BlockCompute {
  constructor(private readonly keys: RepoKeys) {}

  async hash(window: SharedArrayBuffer, runs: readonly (readonly [number, number])[]): Promise<HashedWindow> {
    const digests: Buffer[] = [];
    const zeros: number[] = [];
    for (const [o, l] of runs) {
      for (let b = o; b < o + l; b += BS) {
        const block = Buffer.from(window, b, Math.min(BS, o + l - b));
        digests.push(hmac(this.keys.blockKey, block));
        zeros.push(block.every((x) => x === 0) ? 1 : 0);
      }
    }
    return { digests: Buffer.concat(digests), zeroMask: Uint8Array.from(zeros) };
  }

  async seal(window: SharedArrayBuffer, items: readonly SealItem[]): Promise<SealedBlob[]> {
    return items.map((i) => {
      const sealed = sealBlob(this.keys, i.type, i.idHex, Buffer.from(Buffer.from(window, i.offset, i.length)));
      return { sealed, storedLength: sealed.length, compression: Compression.none, rawLength: i.length };
    });
  }

  async open(): Promise<Buffer> {
    throw new Error('not used');
  }

  async check(): Promise<{ digests16: Buffer | null }> {
    throw new Error('not used');
  }

  async close(): Promise<void> {}
}

/** A disk in memory: reads come from `data`, and only `allocated` may hold data (the rest are holes). */
class MemoryDisk implements BlockSource {
  readonly path = 'memory-disk';
  readonly kind = 'block-device' as const;
  readonly sizeBytes = SIZE;
  readonly logicalSectorSize = 512;
  readonly physicalSectorSize = 4096;
  readonly data = Buffer.alloc(SIZE);
  allocated: Extent[] = [{ startBytes: 0, lengthBytes: SIZE }];
  bytesRead = 0;

  async read(offsetBytes: number, lengthBytes: number): Promise<Buffer> {
    return Buffer.from(this.data.subarray(offsetBytes, Math.min(SIZE, offsetBytes + lengthBytes)));
  }

  async readInto(target: Uint8Array, targetOffset: number, lengthBytes: number, offsetBytes: number): Promise<number> {
    const part = this.data.subarray(offsetBytes, Math.min(SIZE, offsetBytes + lengthBytes));
    target.set(part, targetOffset);
    this.bytesRead += part.length;
    return part.length;
  }

  async allocatedExtents(): Promise<Extent[]> {
    return this.allocated;
  }

  adviseSequential(): void {}

  async close(): Promise<void> {}

  /** Random bytes at offsetBytes; returns the extent written, as a tracker would mark it. */
  write(offsetBytes: number, lengthBytes: number): Extent {
    randomBytes(lengthBytes).copy(this.data, offsetBytes);
    return { startBytes: offsetBytes, lengthBytes };
  }
}

const ext = (startBytes: number, lengthBytes: number): Extent => ({ startBytes, lengthBytes });

describe('a tracked incremental maps the disk as a checksum incremental does', () => {
  let dir: TempRepoDir;

  beforeEach(async () => {
    dir = tempRepoDir('strata-tracked-map-');
    await Repository.init(dir.backend, { encryption: 'none', password: null });
  });

  afterEach(() => dir.cleanup());

  async function backup(disk: MemoryDisk, valid: readonly Extent[], parentId: string | null, tracked: TrackedChanges | null): Promise<BackupResult & { map: readonly MapExtent[] }> {
    const repo = await Repository.open(dir.backend, () => null);
    const lock = await repo.lock(true, 'tracked map test');
    try {
      await repo.loadIndex();
      const parent = parentId ? { id: parentId, manifest: await repo.loadManifest(parentId) } : null;
      const compute = new InlineCompute(repo.keys);
      const r = await runBackup({ source: disk, sourceName: disk.path, validExtents: valid, layout: null, repo, compute, parent, tracked, hostname: 'test' });
      return { ...r, map: await loadExtents(repo, await repo.loadManifest(r.id)) };
    } finally {
      await lock.release();
    }
  }

  const take = (changes: Extent[], previousEpochKey: string, epochKey: string): TrackedChanges => ({ changes, previousEpochKey, epochKey, gapReason: null });

  /** The map as runs of one kind, chunks left out: what two snapshots of the same disk must agree on. */
  function kindsOf(map: readonly MapExtent[]): [number, number, ExtentKind][] {
    const out: [number, number, ExtentKind][] = [];
    for (const e of map) {
      const last = out.at(-1);
      if (last && last[2] === e.kind) last[1] += e.lengthBytes;
      else out.push([e.startBytes, e.lengthBytes, e.kind]);
    }
    return out;
  }

  /** Every data extent of the map reads back as the disk's bytes (chunks are stored uncompressed here), every zero extent is zeros. */
  async function expectMapHolds(map: readonly MapExtent[], disk: MemoryDisk): Promise<void> {
    const repo = await Repository.open(dir.backend, () => null);
    await repo.loadIndex();
    for (const e of map) {
      const want = disk.data.subarray(e.startBytes, e.startBytes + e.lengthBytes);
      if (e.kind === ExtentKind.zero) expect(want.every((x) => x === 0), `zeros at ${e.startBytes}`).toBe(true);
      if (e.kind !== ExtentKind.data) continue;
      const chunk = await repo.readBlob(e.chunkId!, BlobType.data);
      const got = chunk.subarray(e.offsetInChunkBytes!, e.offsetInChunkBytes! + e.lengthBytes);
      expect(got.equals(want), `data at ${e.startBytes}`).toBe(true);
    }
  }

  it('block for block, through kept windows, zeros, holes, validity changes, whole slots and a partial last block', async () => {
    const disk = new MemoryDisk();
    disk.write(1 * MiB, 4 * MiB); // data over windows 0 and 1
    disk.write(8 * MiB, 8 * MiB); // data over windows 2 and 3 (window 3 is never read below)
    disk.write(SIZE - 1536 - 8 * KiB, 8 * KiB + 1536); // the last blocks, the partial one too
    disk.data.fill(0, 9 * MiB, 10 * MiB);
    disk.allocated = [ext(0, 9 * MiB), ext(10 * MiB, SIZE - 10 * MiB)]; // a hole at 9 MiB
    const valid1 = [ext(0, 6 * MiB), ext(7 * MiB, 5 * MiB), ext(12 * MiB + 512 * KiB, SIZE - 12 * MiB - 512 * KiB)];
    const first = await backup(disk, valid1, null, take([], 'k0', 'k1'));
    expect(first.summary.mode).toBe('full');

    const marked: Extent[] = [];
    marked.push(disk.write(1 * MiB + 4 * KiB, 4 * KiB)); // scattered blocks over data
    marked.push(disk.write(2 * MiB + 40 * KiB, 8 * KiB));
    disk.data.fill(0, 4 * MiB, 4 * MiB + 16 * KiB); // zeros written over data
    marked.push(ext(4 * MiB, 16 * KiB));
    marked.push(disk.write(5 * MiB + 512 * KiB, 12 * KiB)); // data over zeros
    marked.push(ext(8 * MiB + 256 * KiB, 8 * KiB)); // rewritten with the same bytes, alone in its slot
    marked.push(disk.write(10 * MiB, 4 * KiB)); // data where the hole ended
    marked.push(disk.write(14 * MiB, 960 * KiB)); // most of a slot: stored whole
    marked[marked.length - 1] = ext(14 * MiB, 1 * MiB); // the tracker marks the whole slot
    marked.push(disk.write(SIZE - 1536 - 4 * KiB, 4 * KiB + 1536)); // the last block and the partial one
    disk.allocated = [ext(0, 9 * MiB), ext(10 * MiB, 5 * MiB + 512 * KiB), ext(15 * MiB + 768 * KiB, SIZE - 15 * MiB - 768 * KiB)]; // a discard
    disk.data.fill(0, 15 * MiB + 512 * KiB, 15 * MiB + 768 * KiB); // what a discarded range reads as
    marked.push(ext(15 * MiB + 512 * KiB, 256 * KiB));
    disk.write(12 * MiB + 4 * KiB, 16 * KiB); // becomes valid below without being written through the tracker
    // Validity moves: [3, 3.5) MiB is no longer valid, [12, 12.5) MiB becomes valid.
    const valid2 = [ext(0, 3 * MiB), ext(3 * MiB + 512 * KiB, 2 * MiB + 512 * KiB), ext(7 * MiB, SIZE - 7 * MiB)];

    disk.bytesRead = 0;
    const tracked = await backup(disk, valid2, first.id, take(marked, 'k1', 'k2'));
    expect(tracked.summary).toMatchObject({ mode: 'incremental', tracker: 'live' });
    const trackedRead = disk.bytesRead;
    disk.bytesRead = 0;
    const checksum = await backup(disk, valid2, first.id, null);
    expect(checksum.summary).toMatchObject({ mode: 'incremental', tracker: 'none' });
    expect(trackedRead).toBeLessThan(disk.bytesRead / 4);
    expect(kindsOf(tracked.map)).toEqual(kindsOf(checksum.map));
    await expectMapHolds(tracked.map, disk);
    await expectMapHolds(checksum.map, disk);
    expect(checksum.map.some((e) => e.kind === ExtentKind.unmapped && e.startBytes === 3 * MiB)).toBe(true);
    // The scattered blocks at 1 and 2 MiB went into one chunk (the zeros at 4 MiB end it); the checksum incremental cut one per run.
    const chunkAt = (map: readonly MapExtent[], at: number): string | undefined => map.find((e) => e.startBytes <= at && at < e.startBytes + e.lengthBytes)?.chunkId;
    expect(chunkAt(tracked.map, 1 * MiB + 4 * KiB)).toBe(chunkAt(tracked.map, 2 * MiB + 40 * KiB));
    expect(chunkAt(tracked.map, 1 * MiB + 4 * KiB)).not.toBe(chunkAt(tracked.map, 5 * MiB + 512 * KiB));
    expect(chunkAt(checksum.map, 1 * MiB + 4 * KiB)).not.toBe(chunkAt(checksum.map, 2 * MiB + 40 * KiB));
    // The block rewritten with its own bytes: the checksum incremental keeps the parent's chunk, the tracked one stores it.
    expect(chunkAt(checksum.map, 8 * MiB + 256 * KiB)).toBe(chunkAt(first.map, 8 * MiB + 256 * KiB));
    expect(chunkAt(tracked.map, 8 * MiB + 256 * KiB)).not.toBe(chunkAt(first.map, 8 * MiB + 256 * KiB));

    // A second tracked incremental over the first one's small chunks, against a checksum one over the checksum parent.
    const marked2 = [disk.write(1 * MiB + 8 * KiB, 4 * KiB), disk.write(14 * MiB + 4 * KiB, 8 * KiB), disk.write(17 * MiB, 4 * KiB)];
    const tracked2 = await backup(disk, valid2, tracked.id, take(marked2, 'k2', 'k3'));
    // The parent's partial last block is never held whole, so it is read every time.
    expect(tracked2.summary).toMatchObject({ mode: 'incremental', tracker: 'live', bytesRead: 16 * KiB + 1536 });
    const checksum2 = await backup(disk, valid2, checksum.id, null);
    expect(kindsOf(tracked2.map)).toEqual(kindsOf(checksum2.map));
    await expectMapHolds(tracked2.map, disk);
    await expectMapHolds(checksum2.map, disk);
  });
});
