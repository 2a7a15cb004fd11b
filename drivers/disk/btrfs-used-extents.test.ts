// btrfs used-block maps on mkfs.btrfs images filled through a kernel mount, checked against the
// chunk and extent trees as `btrfs inspect-internal dump-tree` prints them and against `btrfs filesystem df`.
import { closeSync, fsyncSync, openSync, writeSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { complementExtents, intersectExtents, normalizeExtents, totalBytes, type Extent } from '../../agent-core/extents.js';
import { FileSource } from '../source/file-source.js';
import { Scratch, patchFile, populate, requireRoot, run } from '../../test-support/disk.js';
import { readBtrfsUsedExtents } from './btrfs-used-extents.js';

const MiB = 1 << 20;

let scratch: Scratch;
beforeAll(() => {
  requireRoot();
  scratch = new Scratch('strata-btrfs-');
});
afterAll(() => scratch.cleanup());

async function mapImage(image: string) {
  const source = await FileSource.open(image);
  try {
    return await readBtrfsUsedExtents(source, 0, source.sizeBytes);
  } finally {
    await source.close();
  }
}

/**
 * The physical bytes btrfs-progs says are allocated: every EXTENT_ITEM and METADATA_ITEM of the
 * extent tree, mapped through every stripe of the CHUNK_ITEMs of the chunk tree, from dump-tree's text.
 */
function dumpTreeUsed(image: string, nodeSize: number): { used: Extent[]; treeBlocks: number; extentRootPhysical: number } {
  const chunks: Array<{ logical: number; length: number; offsets: number[] }> = [];
  let current: { logical: number; length: number; offsets: number[] } | null = null;
  for (const line of run('btrfs', ['inspect-internal', 'dump-tree', '-t', 'chunk', image]).split('\n')) {
    const key = /key \(FIRST_CHUNK_TREE CHUNK_ITEM (\d+)\)/.exec(line);
    if (key) {
      current = { logical: Number(key[1]), length: 0, offsets: [] };
      chunks.push(current);
      continue;
    }
    const length = /^\s+length (\d+) owner/.exec(line);
    if (length && current) current.length = Number(length[1]);
    const stripe = /^\s+stripe \d+ devid \d+ offset (\d+)/.exec(line);
    if (stripe && current) current.offsets.push(Number(stripe[1]));
  }
  const physical = (logical: number, length: number): Extent[] => {
    const c = chunks.find((x) => logical >= x.logical && logical + length <= x.logical + x.length);
    if (!c) throw new Error(`dump-tree lists logical ${logical} outside every chunk`);
    return c.offsets.map((o) => ({ startBytes: o + logical - c.logical, lengthBytes: length }));
  };
  const used: Extent[] = [];
  let treeBlocks = 0;
  let extentRootPhysical = -1;
  for (const line of run('btrfs', ['inspect-internal', 'dump-tree', '-t', 'extent', image]).split('\n')) {
    const root = /^(?:node|leaf) (\d+) /.exec(line);
    if (root && extentRootPhysical < 0) extentRootPhysical = physical(Number(root[1]), nodeSize)[0]!.startBytes;
    const e = /key \((\d+) (EXTENT_ITEM|METADATA_ITEM) (\d+)\)/.exec(line);
    if (!e) continue;
    const logical = Number(e[1]);
    const length = e[2] === 'EXTENT_ITEM' ? Number(e[3]) : nodeSize;
    used.push(...physical(logical, length));
    if (e[2] === 'METADATA_ITEM') treeBlocks++;
  }
  return { used: normalizeExtents(used), treeBlocks, extentRootPhysical };
}

/** Every stripe of every chunk, from dump-tree -t chunk. */
function dumpTreeChunks(image: string): Extent[] {
  const out: Extent[] = [];
  let length = 0;
  for (const line of run('btrfs', ['inspect-internal', 'dump-tree', '-t', 'chunk', image]).split('\n')) {
    const l = /^\s+length (\d+) owner/.exec(line);
    if (l) length = Number(l[1]);
    const stripe = /^\s+stripe \d+ devid \d+ offset (\d+)/.exec(line);
    if (stripe) out.push({ startBytes: Number(stripe[1]), lengthBytes: length });
  }
  return normalizeExtents(out);
}

const VARIANTS: Array<{ name: string; sizeBytes: number; mkfs: string[]; nodeSize: number }> = [
  { name: 'default (DUP metadata, 16 KiB nodes)', sizeBytes: 256 * MiB, mkfs: [], nodeSize: 16384 },
  // 4 KiB nodes and many files: extent and chunk trees several levels deep.
  { name: 'single profiles, 4 KiB nodes', sizeBytes: 256 * MiB, mkfs: ['-m', 'single', '-n', '4096'], nodeSize: 4096 },
  { name: 'mixed block groups', sizeBytes: 160 * MiB, mkfs: ['-M'], nodeSize: 4096 },
  { name: '64 KiB nodes', sizeBytes: 200 * MiB, mkfs: ['-n', '65536'], nodeSize: 65536 },
  // mkfs accepts RAID0 on one device: one stripe per chunk, mapped like single.
  { name: 'RAID0 on one device', sizeBytes: 192 * MiB, mkfs: ['-d', 'raid0', '-m', 'raid0'], nodeSize: 16384 },
  // Checksums other than CRC-32C are not verified; addresses, ids and levels still are.
  { name: 'xxhash checksums', sizeBytes: 160 * MiB, mkfs: ['--csum', 'xxhash'], nodeSize: 16384 },
];

describe('readBtrfsUsedExtents', () => {
  for (const v of VARIANTS) {
    it(`maps ${v.name}: every extent and tree block dump-tree lists, and little more`, async () => {
      const image = scratch.image(`btrfs-${v.sizeBytes}-${v.nodeSize}.img`, v.sizeBytes);
      run('mkfs.btrfs', ['-q', '-f', ...v.mkfs, image]);
      const mnt = scratch.mount(image, ['-o', 'loop']);
      populate(mnt, { smallFiles: v.nodeSize === 4096 ? 1500 : 200, largeFiles: 3, largeBytes: 8 * MiB, seed: v.nodeSize });
      scratch.umount(mnt);

      const map = await mapImage(image);
      expect(map.warnings).toEqual([]);
      expect(normalizeExtents(map.extents)).toEqual(map.extents);
      const ref = dumpTreeUsed(image, v.nodeSize);
      // A superset of what btrfs-progs calls allocated…
      expect(totalBytes(intersectExtents(ref.used, map.extents))).toBe(totalBytes(ref.used));
      expect(totalBytes(ref.used)).toBeGreaterThan(16 * MiB);
      // …and beyond it only the first MiB (boot area, primary superblock) and the superblock copy at 64 MiB.
      const extra = totalBytes(intersectExtents(map.extents, complementExtents(ref.used, v.sizeBytes)));
      expect(extra).toBeLessThanOrEqual(MiB + 4096);
      expect(map.usedBytes).toBeLessThanOrEqual(totalBytes(ref.used) * 1.01 + MiB + 4096);
      if (v.nodeSize === 4096) expect(ref.treeBlocks).toBeGreaterThan(100);
    });
  }

  it('keeps every chunk whole when a tree log waits for replay (a copy taken after fsync, before the commit)', async () => {
    const image = scratch.image('log.img', 160 * MiB);
    run('mkfs.btrfs', ['-q', '-f', image]);
    const mnt = scratch.mount(image, ['-o', 'loop,commit=300']);
    run('sync', []);
    const fd = openSync(path.join(mnt, 'fsynced'), 'w');
    writeSync(fd, Buffer.alloc(100_000, 7));
    fsyncSync(fd);
    closeSync(fd);
    const copy = scratch.path('log-copy.img');
    run('cp', ['--sparse=always', image, copy]);
    scratch.umount(mnt);
    expect(run('btrfs', ['inspect-internal', 'dump-super', copy])).toMatch(/^log_root\s+[1-9]/m);
    const map = await mapImage(copy);
    expect(map.warnings).toEqual([expect.stringContaining('tree log that the next mount replays')]);
    const chunks = dumpTreeChunks(copy);
    expect(totalBytes(intersectExtents(map.extents, chunks))).toBe(totalBytes(chunks));
    expect(map.usedBytes).toBeLessThan(160 * MiB);
  });

  it('keeps a two-device filesystem whole, saying why', async () => {
    const a = scratch.image('multi-a.img', 160 * MiB);
    const b = scratch.image('multi-b.img', 160 * MiB);
    run('mkfs.btrfs', ['-q', '-f', '-d', 'single', '-m', 'single', a, b]);
    const map = await mapImage(a);
    expect(map.usedBytes).toBe(160 * MiB);
    expect(map.warnings[0]).toMatch(/spans 2 devices/);
  });

  it('rejects a damaged tree block as Corrupt, and a damaged superblock', async () => {
    const image = scratch.image('damaged.img', 128 * MiB);
    run('mkfs.btrfs', ['-q', '-f', '-m', 'single', image]);
    const ref = dumpTreeUsed(image, 16384);
    await mapImage(image);
    patchFile(image, ref.extentRootPhysical + 200, Buffer.from([0xde, 0xad]));
    await expect(mapImage(image)).rejects.toMatchObject({ code: 'Corrupt' });
    patchFile(image, 0x10000 + 0x90, Buffer.from([0x00, 0x03]));
    await expect(mapImage(image)).rejects.toMatchObject({ code: 'Corrupt' });
  });
});
