// The ext used-block map against dumpe2fs on real mke2fs'd images: every block dumpe2fs calls used
// is in the map, and the map is at most 1 % larger, across block sizes and feature sets.
import { truncateSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { intersectExtents, normalizeExtents, totalBytes, type Extent } from '../../agent-core/extents.js';
import { StrataError } from '../../agent-core/api/errors.js';
import { FileSource } from '../source/file-source.js';
import { Scratch, countReads, dumpe2fsReport, peekFile, patchFile, populate, requireRoot, run } from '../../test-support/disk.js';
import { readExtUsedExtents } from './ext-used-extents.js';

const MiB = 1 << 20;

let scratch: Scratch;
beforeAll(() => {
  requireRoot();
  scratch = new Scratch('strata-ext-');
});
afterAll(() => scratch.cleanup());

type Fill = 'full' | 'light' | 'none';

/** mke2fs into a fresh sparse image, then (unless fill is false) files written and deleted through a loop mount. */
function makeExt(name: string, sizeBytes: number, type: 'ext2' | 'ext3' | 'ext4', args: string[], fill: Fill): string {
  const image = scratch.image(name, sizeBytes);
  run('mke2fs', ['-F', '-q', '-t', type, ...args, image]);
  if (fill !== 'none') {
    const dir = scratch.mount(image, ['-o', 'loop']);
    const light = fill === 'light';
    populate(dir, { seed: name.length, smallFiles: light ? 40 : 200, largeFiles: light ? 2 : 3, largeBytes: Math.min(light ? MiB : 4 * MiB, sizeBytes / 16) });
    scratch.umount(dir);
  }
  return image;
}

/** The map must hold every block dumpe2fs calls used, and at most 1 % more. */
function expectMatchesDumpe2fs(image: string, extents: Extent[], offsetBytes = 0): { mapBytes: number; dumpBytes: number; uninitGroups: number } {
  const report = dumpe2fsReport(image, offsetBytes);
  const uninitGroups = report.groupFlags.filter((f) => f.includes('BLOCK_UNINIT')).length;
  const expected = normalizeExtents(report.usedExtents.map((e) => ({ startBytes: e.startBytes + offsetBytes, lengthBytes: e.lengthBytes })));
  const fsEnd = offsetBytes + report.blockCount * report.blockSizeBytes;
  const inFs = intersectExtents(extents, [{ startBytes: offsetBytes, lengthBytes: fsEnd - offsetBytes }]);
  const covered = totalBytes(intersectExtents(inFs, expected));
  expect(covered, 'every block dumpe2fs reports used is in the map').toBe(report.usedBytes);
  const mapBytes = totalBytes(inFs);
  expect(mapBytes).toBeLessThanOrEqual(report.usedBytes * 1.01);
  return { mapBytes, dumpBytes: report.usedBytes, uninitGroups };
}

async function mapImage(image: string, startBytes = 0, sizeBytes?: number) {
  const source = await FileSource.open(image);
  try {
    return await readExtUsedExtents(source, startBytes, sizeBytes ?? source.sizeBytes - startBytes);
  } finally {
    await source.close();
  }
}

// Small groups (-g) give several groups per image, so flex_bg placement, backups and BLOCK_UNINIT
// groups all occur; light fills leave groups untouched.
const VARIANTS: Array<{ name: string; type: 'ext2' | 'ext3' | 'ext4'; args: string[]; sizeBytes: number; fill: Fill; tune?: string[] }> = [
  { name: 'ext4-4k', type: 'ext4', args: ['-b', '4096', '-g', '4096'], sizeBytes: 64 * MiB, fill: 'light' },
  { name: 'ext4-1k', type: 'ext4', args: ['-b', '1024'], sizeBytes: 48 * MiB, fill: 'full' },
  { name: 'ext4-2k-lazy', type: 'ext4', args: ['-b', '2048', '-E', 'lazy_itable_init=1,lazy_journal_init=1'], sizeBytes: 48 * MiB, fill: 'full' },
  { name: 'ext4-bigalloc', type: 'ext4', args: ['-b', '4096', '-O', 'bigalloc', '-C', '16384', '-g', '1024'], sizeBytes: 64 * MiB, fill: 'full' },
  { name: 'ext4-bigalloc-1k', type: 'ext4', args: ['-b', '1024', '-O', 'bigalloc', '-C', '4096', '-g', '2048'], sizeBytes: 64 * MiB, fill: 'light' },
  { name: 'ext4-no-flex', type: 'ext4', args: ['-b', '1024', '-O', '^flex_bg'], sizeBytes: 48 * MiB, fill: 'full' },
  { name: 'ext4-meta-bg', type: 'ext4', args: ['-b', '1024', '-O', 'meta_bg,^resize_inode', '-g', '1024', '-N', '2048'], sizeBytes: 48 * MiB, fill: 'light' },
  { name: 'ext4-32bit-gdt-csum', type: 'ext4', args: ['-b', '1024', '-O', '^64bit,^metadata_csum,uninit_bg'], sizeBytes: 48 * MiB, fill: 'light' },
  // A new UUID after mkfs: descriptor checksums stay seeded from s_checksum_seed, not the UUID.
  { name: 'ext4-csum-seed', type: 'ext4', args: ['-b', '1024', '-O', 'metadata_csum_seed,^64bit'], sizeBytes: 48 * MiB, fill: 'light', tune: ['-U', '11111111-2222-3333-4444-555555555555'] },
  { name: 'ext4-sparse-super2', type: 'ext4', args: ['-b', '1024', '-O', 'sparse_super2'], sizeBytes: 48 * MiB, fill: 'full' },
  { name: 'ext3-1k', type: 'ext3', args: ['-b', '1024'], sizeBytes: 32 * MiB, fill: 'full' },
  { name: 'ext2-no-sparse', type: 'ext2', args: ['-b', '1024', '-O', '^sparse_super,^resize_inode'], sizeBytes: 32 * MiB, fill: 'full' },
  // 64 KiB blocks are larger than the page size, so the kernel will not mount it: mapped as made.
  { name: 'ext4-64k', type: 'ext4', args: ['-b', '65536'], sizeBytes: 64 * MiB, fill: 'none' },
];

describe('readExtUsedExtents', () => {
  let uninitSeen = 0;
  for (const v of VARIANTS) {
    it(`maps ${v.name} exactly as dumpe2fs counts it (superset, within 1 %)`, async () => {
      const image = makeExt(`${v.name}.img`, v.sizeBytes, v.type, v.args, v.fill);
      if (v.tune) run('tune2fs', [...v.tune, image]);
      const map = await mapImage(image);
      expect(map.fsSizeBytes).toBe(v.sizeBytes);
      expect(map.usedBytes).toBe(totalBytes(map.extents));
      expect(normalizeExtents(map.extents)).toEqual(map.extents);
      expect(map.warnings).toEqual([]);
      const { mapBytes, dumpBytes, uninitGroups } = expectMatchesDumpe2fs(image, map.extents);
      uninitSeen += uninitGroups;
      expect(mapBytes).toBeGreaterThan(0);
      expect(dumpBytes).toBeLessThan(v.sizeBytes);
    });
  }

  it('the variants above include groups whose bitmaps are not initialised', () => {
    expect(uninitSeen).toBeGreaterThanOrEqual(10);
  });

  it('maps a filesystem that starts at an offset inside the image, in disk offsets', async () => {
    const image = scratch.image('offset.img', 40 * MiB);
    const offset = 3 * MiB;
    run('mke2fs', ['-F', '-q', '-t', 'ext4', '-b', '1024', '-E', `offset=${offset}`, image, '32M']);
    const map = await mapImage(image, offset, 36 * MiB);
    expect(map.extents[0]!.startBytes).toBe(offset);
    expectMatchesDumpe2fs(image, map.extents, offset);
    // The 4 MiB of the volume past the filesystem's end are kept.
    expect(totalBytes(intersectExtents(map.extents, [{ startBytes: offset + 32 * MiB, lengthBytes: 4 * MiB }]))).toBe(4 * MiB);
  });

  it('refuses a volume shorter than its filesystem with a sentence that says so', async () => {
    const image = makeExt('short.img', 32 * MiB, 'ext4', ['-b', '4096'], 'none');
    truncateSync(image, 24 * MiB);
    const err = await mapImage(image).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StrataError);
    expect((err as StrataError).code).toBe('InvalidInput');
    expect((err as StrataError).message).toBe(
      `The ext4 filesystem at offset 0 claims ${32 * MiB} bytes but its volume holds only ${24 * MiB}; the image may be truncated.`,
    );
  });

  it('keeps a whole group when its BLOCK_UNINIT descriptor fails its checksum', async () => {
    const image = makeExt('bad-csum.img', 64 * MiB, 'ext4', ['-b', '1024'], 'none');
    const report = dumpe2fsReport(image);
    const group = report.groupFlags.findIndex((f, g) => g > 0 && f.includes('BLOCK_UNINIT'));
    expect(group).toBeGreaterThan(0);
    const clean = await mapImage(image);
    // Flip a byte of bg_itable_unused (offset 0x1c of the 64-byte descriptor in block 2): it moves
    // nothing, but the checksum no longer matches.
    const at = 2 * 1024 + group * 64 + 0x1c;
    patchFile(image, at, Buffer.from([peekFile(image, at, 1)[0]! ^ 0xff]));
    const map = await mapImage(image);
    expect(map.warnings).toHaveLength(1);
    expect(map.warnings[0]).toContain(`Group ${group} `);
    const groupRange = { startBytes: (1 + group * 8192) * 1024, lengthBytes: 8192 * 1024 };
    expect(totalBytes(intersectExtents(map.extents, [groupRange]))).toBe(groupRange.lengthBytes);
    expect(map.usedBytes).toBeGreaterThan(clean.usedBytes);
  });

  it('rejects a damaged superblock as Corrupt', async () => {
    const image = makeExt('bad-sb.img', 16 * MiB, 'ext4', ['-b', '4096'], 'none');
    patchFile(image, 1024 + 0x20, Buffer.alloc(4)); // s_blocks_per_group = 0
    await expect(mapImage(image)).rejects.toMatchObject({ code: 'Corrupt' });
  });

  // Speed itself is measured in bench/disk-map.mjs; what makes it fast is that only metadata is read.
  it('maps a 1 GiB ext4 by reading its metadata only (under 1 MiB)', async () => {
    for (const blockSize of ['4096', '1024']) {
      const image = makeExt(`big-${blockSize}.img`, 1024 * MiB, 'ext4', ['-b', blockSize, '-E', 'lazy_itable_init=1,lazy_journal_init=1'], 'light');
      const source = await FileSource.open(image);
      const reads = countReads(source);
      try {
        const map = await readExtUsedExtents(source, 0, source.sizeBytes);
        expect(map.fsSizeBytes).toBe(1024 * MiB);
      } finally {
        await source.close();
      }
      expect(reads.bytes()).toBeGreaterThan(0);
      expect(reads.bytes()).toBeLessThan(MiB);
    }
  });
});
