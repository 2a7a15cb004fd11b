// exFAT used-block maps on mkfs.exfat images filled through exfat-fuse, checked against
// dump.exfat's free-cluster count, with small and large clusters and 4096-byte sectors.
import { mkdtempSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { intersectExtents, normalizeExtents, totalBytes } from '../../agent-core/extents.js';
import { FileSource } from '../source/file-source.js';
import { Scratch, patchFile, peekFile, populate, requireRoot, run } from '../../test-support/disk.js';
import { parseExfatBootSector, readExfatUsedExtents } from './exfat-used-extents.js';

const MiB = 1 << 20;

let scratch: Scratch;
beforeAll(() => {
  requireRoot();
  scratch = new Scratch('strata-exfat-');
});
afterAll(() => scratch.cleanup());

async function mapImage(image: string) {
  const source = await FileSource.open(image);
  try {
    return await readExfatUsedExtents(source, 0, source.sizeBytes);
  } finally {
    await source.close();
  }
}

/** Mounts an exFAT image through exfat-fuse (the kernel here has no exFAT driver); unmounted at cleanup. */
function mountExfat(s: Scratch, image: string, options: { sectorSize?: number; readOnly?: boolean } = {}): string {
  const dev = s.loop(image, { sectorSize: options.sectorSize });
  const dir = mkdtempSync(s.path('exfat-'));
  run('mount.exfat-fuse', [...(options.readOnly ? ['-o', 'ro'] : []), dev, dir]);
  s.defer(() => run('umount', [dir]));
  return dir;
}

/** dump.exfat's cluster statistics. */
function dumpExfat(image: string): { total: number; free: number } {
  const out = run('dump.exfat', [image]);
  const total = /^Total Clusters:\s+(\d+)/m.exec(out);
  const free = /^Free Clusters:\s+(\d+)/m.exec(out);
  if (!total || !free) throw new Error(`dump.exfat printed no cluster counts: ${out}`);
  return { total: Number(total[1]), free: Number(free[1]) };
}

const VARIANTS: Array<{ name: string; sizeBytes: number; mkfs: string[]; sectorSize?: number }> = [
  { name: 'default', sizeBytes: 64 * MiB, mkfs: [] },
  // 512-byte clusters: the bitmap spans many clusters of its chain.
  { name: 'small-clusters', sizeBytes: 48 * MiB, mkfs: ['-c', '512'] },
  { name: 'large-clusters', sizeBytes: 96 * MiB, mkfs: ['-c', '131072'] },
  { name: '4k-sectors', sizeBytes: 64 * MiB, mkfs: [], sectorSize: 4096 },
];

describe('readExfatUsedExtents', () => {
  for (const v of VARIANTS) {
    it(`maps ${v.name}: exactly the clusters dump.exfat counts as used, and all metadata`, async () => {
      const image = scratch.image(`${v.name}.img`, v.sizeBytes);
      const dev = scratch.loop(image, { sectorSize: v.sectorSize });
      run('mkfs.exfat', [...v.mkfs, dev]);
      const dir = mountExfat(scratch, image, { sectorSize: v.sectorSize });
      populate(dir, { smallFiles: 120, largeFiles: 3, largeBytes: 3 * MiB, seed: v.sizeBytes / MiB });
      run('umount', [dir]);
      const g = parseExfatBootSector(peekFile(image, 0, 512))!;
      if (v.sectorSize) expect(g.bytesPerSector).toBe(v.sectorSize);
      const map = await mapImage(image);
      expect(map.warnings).toEqual([]);
      expect(normalizeExtents(map.extents)).toEqual(map.extents);
      const { total, free } = dumpExfat(image);
      expect(total).toBe(g.clusterCount);
      const heapStartBytes = g.heapOffsetSectors * g.bytesPerSector;
      const heap = { startBytes: heapStartBytes, lengthBytes: g.clusterCount * g.clusterBytes };
      expect(totalBytes(intersectExtents(map.extents, [heap]))).toBe((total - free) * g.clusterBytes);
      expect(totalBytes(intersectExtents(map.extents, [{ startBytes: 0, lengthBytes: heapStartBytes }]))).toBe(heapStartBytes);
      expect(total - free).toBeGreaterThan((6 * MiB) / g.clusterBytes);
    });
  }

  it('rejects a boot region that fails its checksum as Corrupt', async () => {
    const image = scratch.image('bad.img', 16 * MiB);
    run('mkfs.exfat', [image]);
    await mapImage(image);
    patchFile(image, 0x78, Buffer.from([0x5a])); // a boot-code byte: only the checksum notices
    await expect(mapImage(image)).rejects.toMatchObject({ code: 'Corrupt' });
  });
});
