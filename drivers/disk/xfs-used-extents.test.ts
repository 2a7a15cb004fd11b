// XFS used-block maps on real mkfs.xfs images, checked against xfs_db's free counts and against
// every extent bmap lists for every file: v5 and v4 formats, multi-level trees, damaged AGs.
import { mkdirSync, readdirSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StrataError } from '../../agent-core/api/errors.js';
import { intersectExtents, normalizeExtents, totalBytes, type Extent } from '../../agent-core/extents.js';
import { FileSource } from '../source/file-source.js';
import { Scratch, makeContent, patchFile, peekFile, populate, requireRoot, run } from '../../test-support/disk.js';
import { readXfsUsedExtents } from './xfs-used-extents.js';

const MiB = 1 << 20;

let scratch: Scratch;
beforeAll(() => {
  requireRoot();
  scratch = new Scratch('strata-xfs-');
});
afterAll(() => scratch.cleanup());

async function mapImage(image: string, startBytes = 0) {
  const source = await FileSource.open(image);
  try {
    return await readXfsUsedExtents(source, startBytes, source.sizeBytes - startBytes);
  } finally {
    await source.close();
  }
}

/** One xfs_db print of a superblock or AGF field. */
function xfsDbField(image: string, commands: string[], field: string): number {
  const out = run('xfs_db', ['-r', ...commands.flatMap((c) => ['-c', c]), '-c', `print ${field}`, image]);
  const m = new RegExp(`^${field} = (\\d+)`, 'm').exec(out);
  if (!m) throw new Error(`xfs_db printed no ${field}: ${out}`);
  return Number(m[1]);
}

interface XfsDbCounts {
  blockSizeBytes: number;
  dataBlocks: number;
  /** Blocks in the free-space trees, summed over AGs (agf_freeblks). */
  treeFreeBlocks: number;
  /** Blocks on the AG free lists: free to xfs_db, not in the trees. */
  freeListBlocks: number;
  maxBnoLevel: number;
}

function xfsDbCounts(image: string): XfsDbCounts {
  const agCount = xfsDbField(image, ['sb 0'], 'agcount');
  let treeFreeBlocks = 0;
  let freeListBlocks = 0;
  let maxBnoLevel = 0;
  for (let ag = 0; ag < agCount; ag++) {
    treeFreeBlocks += xfsDbField(image, [`agf ${ag}`], 'freeblks');
    freeListBlocks += xfsDbField(image, [`agf ${ag}`], 'flcount');
    maxBnoLevel = Math.max(maxBnoLevel, xfsDbField(image, [`agf ${ag}`], 'bnolevel'));
  }
  return { blockSizeBytes: xfsDbField(image, ['sb 0'], 'blocksize'), dataBlocks: xfsDbField(image, ['sb 0'], 'dblocks'), treeFreeBlocks, freeListBlocks, maxBnoLevel };
}

/** `freesp -s` total: what xfs_db itself calls free (the trees plus the free lists). */
function freespTotal(image: string): number {
  const m = /^total free blocks (\d+)/m.exec(run('xfs_db', ['-r', '-c', 'freesp -s', image]));
  return Number(m![1]);
}

/** Every extent of every file and directory under dir, as `bmap -v` lists them, in bytes on the device. */
function fileExtents(dir: string): Extent[] {
  const paths = [dir, ...readdirSync(dir, { recursive: true, encoding: 'utf8' }).map((p) => path.join(dir, p))];
  const out: Extent[] = [];
  // xfs_io runs one bmap over every file it was given (xfs_bmap is its one-file wrapper).
  for (let i = 0; i < paths.length; i += 500) {
    for (const line of run('xfs_io', ['-r', '-c', 'bmap -v', ...paths.slice(i, i + 500)]).split('\n')) {
      // "   0: [0..40959]:      192..41151   0 (192..41151)  40960" in 512-byte units; holes say "hole".
      const m = /^\s*\d+: \[\d+\.\.\d+\]:\s+(\d+)\.\.(\d+)/.exec(line);
      if (m) out.push({ startBytes: Number(m[1]) * 512, lengthBytes: (Number(m[2]) - Number(m[1]) + 1) * 512 });
    }
  }
  return normalizeExtents(out);
}

/** The map against xfs_db: exactly the blocks outside the free-space trees, a superset of xfs_db's used, within 1 %. */
function expectMatchesXfsDb(image: string, map: { extents: Extent[]; usedBytes: number }): XfsDbCounts {
  const c = xfsDbCounts(image);
  const bs = c.blockSizeBytes;
  expect(map.usedBytes).toBe((c.dataBlocks - c.treeFreeBlocks) * bs);
  const dbUsedBytes = (c.dataBlocks - freespTotal(image)) * bs;
  expect(c.treeFreeBlocks + c.freeListBlocks).toBe(freespTotal(image));
  expect(map.usedBytes).toBeGreaterThanOrEqual(dbUsedBytes);
  expect(map.usedBytes).toBeLessThanOrEqual(dbUsedBytes * 1.01);
  return c;
}

/** A fresh XFS image, filled through a loop mount; returns the image and every file extent. */
function makeXfs(name: string, mkfsArgs: string[], fill: (dir: string) => void): { image: string; files: Extent[] } {
  const image = scratch.image(name, 300 * MiB);
  run('mkfs.xfs', ['-q', '-f', ...mkfsArgs, image]);
  const dir = scratch.mount(image, ['-o', 'loop']);
  fill(dir);
  run('sync', []);
  const files = fileExtents(dir);
  scratch.umount(dir);
  return { image, files };
}

/** Many 1 KiB files in one directory, every other one deleted: one AG's free space in hundreds of pieces. */
function fragment(dir: string): void {
  const sub = path.join(dir, 'frag');
  mkdirSync(sub);
  for (let i = 0; i < 3000; i++) writeFileSync(path.join(sub, `s${i}`), makeContent(1000, 'text', i + 1));
  run('sync', []);
  for (let i = 0; i < 3000; i += 2) unlinkSync(path.join(sub, `s${i}`));
}

describe('readXfsUsedExtents', () => {
  it('maps a populated v5 XFS as xfs_db counts it, and every file extent bmap lists is inside', async () => {
    const { image, files } = makeXfs('v5.img', [], (dir) => populate(dir, { smallFiles: 300, largeFiles: 4, largeBytes: 8 * MiB }));
    const map = await mapImage(image);
    expect(map.warnings).toEqual([]);
    expect(normalizeExtents(map.extents)).toEqual(map.extents);
    expect(map.fsSizeBytes).toBe(300 * MiB);
    expectMatchesXfsDb(image, map);
    expect(totalBytes(files)).toBeGreaterThan(20 * MiB);
    expect(totalBytes(intersectExtents(map.extents, files))).toBe(totalBytes(files));
  });

  it('walks multi-level free-space trees of a fragmented 1 KiB-block XFS', async () => {
    const { image, files } = makeXfs('frag.img', ['-b', 'size=1024', '-d', 'agcount=2'], fragment);
    const map = await mapImage(image);
    expect(map.warnings).toEqual([]);
    const c = expectMatchesXfsDb(image, map);
    expect(c.maxBnoLevel).toBeGreaterThanOrEqual(2);
    expect(totalBytes(intersectExtents(map.extents, files))).toBe(totalBytes(files));
  });

  it('maps a v4 (no CRC) XFS filled by a mkfs protofile', async () => {
    // This kernel will not mount v4, so mkfs.xfs copies the files in itself.
    const src = scratch.path('proto-src');
    mkdirSync(src);
    const lines = ['/dev/null', '0 0', 'd--755 0 0'];
    for (let i = 0; i < 40; i++) {
      writeFileSync(path.join(src, `f${i}`), makeContent(5000 + i * 40000, 'random', i + 1));
      lines.push(`f${i} ---644 0 0 ${path.join(src, `f${i}`)}`);
    }
    lines.push('$', '');
    writeFileSync(scratch.path('proto'), lines.join('\n'));
    const image = scratch.image('v4.img', 300 * MiB);
    run('mkfs.xfs', ['-q', '-f', '-m', 'crc=0', '-p', scratch.path('proto'), image]);
    const map = await mapImage(image);
    expect(map.warnings).toEqual([]);
    expectMatchesXfsDb(image, map);
    // Some 30 MiB of files beside the 64 MiB log: the map holds them and little else.
    const logBytes = xfsDbField(image, ['sb 0'], 'logblocks') * xfsDbField(image, ['sb 0'], 'blocksize');
    expect(map.usedBytes - logBytes).toBeGreaterThan(30 * MiB);
    expect(map.usedBytes - logBytes).toBeLessThan(36 * MiB);
  });

  it('maps an XFS inside a larger volume, keeping the tail past its end', async () => {
    const image = scratch.image('offset.img', 310 * MiB);
    const dev = scratch.loop(image, { offsetBytes: 2 * MiB, sizeBytes: 300 * MiB });
    run('mkfs.xfs', ['-q', '-f', dev]);
    const source = await FileSource.open(image);
    try {
      const map = await readXfsUsedExtents(source, 2 * MiB, 308 * MiB);
      expect(map.extents[0]!.startBytes).toBe(2 * MiB);
      expect(totalBytes(intersectExtents(map.extents, [{ startBytes: 302 * MiB, lengthBytes: 8 * MiB }]))).toBe(8 * MiB);
    } finally {
      await source.close();
    }
  });

  it('keeps a whole allocation group whose free-space tree is damaged, with a warning', async () => {
    const image = scratch.image('bad-ag.img', 300 * MiB);
    run('mkfs.xfs', ['-q', '-f', image]);
    const bs = xfsDbField(image, ['sb 0'], 'blocksize');
    const agBlocks = xfsDbField(image, ['sb 0'], 'agblocks');
    const root = xfsDbField(image, ['agf 1'], 'bnoroot');
    const clean = await mapImage(image);
    patchFile(image, (agBlocks + root) * bs, Buffer.from('JUNK'));
    const map = await mapImage(image);
    expect(map.warnings).toHaveLength(1);
    expect(map.warnings[0]).toContain('Allocation group 1 ');
    const ag1 = { startBytes: agBlocks * bs, lengthBytes: agBlocks * bs };
    expect(totalBytes(intersectExtents(map.extents, [ag1]))).toBe(ag1.lengthBytes);
    expect(map.usedBytes).toBeGreaterThan(clean.usedBytes);
  });

  it('keeps a whole allocation group whose v5 tree block or AGF fails its checksum', async () => {
    const image = scratch.image('bad-crc.img', 300 * MiB);
    run('mkfs.xfs', ['-q', '-f', image]);
    const bs = xfsDbField(image, ['sb 0'], 'blocksize');
    const agBlocks = xfsDbField(image, ['sb 0'], 'agblocks');
    const sector = xfsDbField(image, ['sb 0'], 'sectsize');
    const root = xfsDbField(image, ['agf 2'], 'bnoroot');
    // A byte of the block's owner UUID (offset 32): nothing but the checksum notices.
    patchFile(image, (2 * agBlocks + root) * bs + 32, Buffer.from([peekFile(image, (2 * agBlocks + root) * bs + 32, 1)[0]! ^ 1]));
    // A byte of AG 3's AGF UUID (offset 64).
    patchFile(image, 3 * agBlocks * bs + sector + 64, Buffer.from([peekFile(image, 3 * agBlocks * bs + sector + 64, 1)[0]! ^ 1]));
    const map = await mapImage(image);
    expect(map.warnings).toEqual([
      expect.stringMatching(/^Allocation group 2 .*free-space tree block \d+ fails its checksum/),
      expect.stringMatching(/^Allocation group 3 .*its AGF fails its checksum/),
    ]);
  });

  it('rejects an impossible superblock as Corrupt and a truncated volume as InvalidInput', async () => {
    const image = scratch.image('bad-sb.img', 300 * MiB);
    run('mkfs.xfs', ['-q', '-f', image]);
    const truncated = await FileSource.open(image);
    try {
      const err = await readXfsUsedExtents(truncated, 0, 200 * MiB).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(StrataError);
      expect((err as StrataError).code).toBe('InvalidInput');
    } finally {
      await truncated.close();
    }
    patchFile(image, 84, Buffer.alloc(4)); // sb_agblocks = 0
    await expect(mapImage(image)).rejects.toMatchObject({ code: 'Corrupt' });
  });
});
