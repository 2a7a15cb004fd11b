// FAT12/16/32 used-block maps on mkfs.fat images filled through mtools, checked against fsck.fat's
// used-cluster count and against every cluster mshowfat lists for every file and directory.
import { mkdirSync, truncateSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { intersectExtents, normalizeExtents, totalBytes, type Extent } from '../../agent-core/extents.js';
import { FileSource } from '../source/file-source.js';
import { Scratch, makeContent, patchFile, peekFile, run } from '../../test-support/disk.js';
import { parseFatBootSector, readFatUsedExtents } from './fat-used-extents.js';

const MiB = 1 << 20;

let scratch: Scratch;
beforeAll(() => {
  scratch = new Scratch('strata-fat-');
});
afterAll(() => scratch.cleanup());

async function mapImage(image: string, startBytes = 0, sizeBytes?: number) {
  const source = await FileSource.open(image);
  try {
    return await readFatUsedExtents(source, startBytes, sizeBytes ?? source.sizeBytes - startBytes);
  } finally {
    await source.close();
  }
}

/** A local tree of small and large files, copied in with mcopy; then some files and a directory deleted. */
function fillFat(image: string, seed: number, options: { smallFiles: number; largeBytes: number }): void {
  const src = scratch.path(`fat-src-${seed}`);
  for (let i = 0; i < options.smallFiles; i++) {
    const dir = path.join(src, `d${i % 6}`);
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, `f${i}.txt`), makeContent(100 + ((i * 7919) % 9000), 'text', seed + i));
  }
  for (let i = 0; i < 3; i++) writeFileSync(path.join(src, `big${i}.bin`), makeContent(options.largeBytes, 'random', seed * 100 + i));
  for (const name of ['d0', 'd1', 'd2', 'd3', 'd4', 'd5', 'big0.bin', 'big1.bin', 'big2.bin']) run('mcopy', ['-s', '-i', image, path.join(src, name), '::/']);
  run('mdel', ['-i', image, '::/big1.bin']);
  run('mdeltree', ['-i', image, '::/d3']);
  for (let i = 0; i < options.smallFiles; i += 4) if (i % 6 !== 3) run('mdel', ['-i', image, `::/d${i % 6}/f${i}.txt`]);
}

/** Every cluster of every file and directory, as mshowfat lists them, in bytes relative to the volume. */
function fileClusterExtents(image: string): Extent[] {
  const geo = parseFatBootSector(peekFile(image, 0, 512))!;
  const clusterBytes = geo.sectorsPerCluster * geo.bytesPerSector;
  const paths = run('mdir', ['-i', image, '-/', '-b', '::/'])
    .split('\n')
    .filter((l) => l.startsWith('::/'));
  const out: Extent[] = [];
  for (let i = 0; i < paths.length; i += 200) {
    for (const m of run('mshowfat', ['-i', image, ...paths.slice(i, i + 200)]).matchAll(/<(\d+)(?:-(\d+))?>/g)) {
      const first = Number(m[1]);
      const last = Number(m[2] ?? m[1]);
      out.push({ startBytes: geo.dataStartSector * geo.bytesPerSector + (first - 2) * clusterBytes, lengthBytes: (last - first + 1) * clusterBytes });
    }
  }
  return normalizeExtents(out);
}

/** fsck.fat's "N files, used/total clusters". */
function fsckClusters(image: string): { used: number; total: number } {
  const m = /(\d+) files, (\d+)\/(\d+) clusters/.exec(run('fsck.fat', ['-n', image]));
  if (!m) throw new Error('fsck.fat printed no cluster count');
  return { used: Number(m[2]), total: Number(m[3]) };
}

const VARIANTS: Array<{ name: string; kind: 'fat12' | 'fat16' | 'fat32'; sizeBytes: number; mkfs: string[]; smallFiles: number; largeBytes: number }> = [
  { name: 'fat12', kind: 'fat12', sizeBytes: 4 * MiB, mkfs: ['-F', '12'], smallFiles: 40, largeBytes: 300_000 },
  { name: 'fat16', kind: 'fat16', sizeBytes: 48 * MiB, mkfs: ['-F', '16'], smallFiles: 200, largeBytes: 4 * MiB },
  { name: 'fat32', kind: 'fat32', sizeBytes: 64 * MiB, mkfs: ['-F', '32', '-s', '1'], smallFiles: 200, largeBytes: 4 * MiB },
  { name: 'fat32-4k-sectors', kind: 'fat32', sizeBytes: 300 * MiB, mkfs: ['-F', '32', '-S', '4096', '-s', '1'], smallFiles: 100, largeBytes: 4 * MiB },
  { name: 'fat16-one-fat', kind: 'fat16', sizeBytes: 32 * MiB, mkfs: ['-F', '16', '-f', '1', '-s', '8'], smallFiles: 100, largeBytes: 2 * MiB },
];

describe('readFatUsedExtents', () => {
  for (const v of VARIANTS) {
    it(`maps ${v.name}: fsck.fat's used clusters exactly, every mshowfat cluster inside`, async () => {
      const image = scratch.image(`${v.name}.img`, v.sizeBytes);
      run('mkfs.fat', [...v.mkfs, image]);
      fillFat(image, v.sizeBytes / MiB, v);
      const geo = parseFatBootSector(peekFile(image, 0, 512))!;
      expect(geo.kind).toBe(v.kind);
      const map = await mapImage(image);
      expect(map.warnings).toEqual([]);
      expect(map.fsSizeBytes).toBe(v.sizeBytes);
      expect(normalizeExtents(map.extents)).toEqual(map.extents);
      const clusterBytes = geo.sectorsPerCluster * geo.bytesPerSector;
      const dataStartBytes = geo.dataStartSector * geo.bytesPerSector;
      const clusterArea = { startBytes: dataStartBytes, lengthBytes: geo.clusterCount * clusterBytes };
      const { used, total } = fsckClusters(image);
      expect(total).toBe(geo.clusterCount);
      expect(totalBytes(intersectExtents(map.extents, [clusterArea]))).toBe(used * clusterBytes);
      // Everything before the clusters is metadata and kept.
      expect(totalBytes(intersectExtents(map.extents, [{ startBytes: 0, lengthBytes: dataStartBytes }]))).toBe(dataStartBytes);
      const files = fileClusterExtents(image);
      expect(totalBytes(files)).toBeGreaterThan(0);
      expect(totalBytes(intersectExtents(map.extents, files))).toBe(totalBytes(files));
      // Superset of fsck's used space, within 1 % of it plus the fixed metadata.
      const fsckUsedBytes = dataStartBytes + used * clusterBytes;
      expect(map.usedBytes).toBeLessThanOrEqual(fsckUsedBytes * 1.01 + (v.sizeBytes - clusterArea.startBytes - clusterArea.lengthBytes));
    });
  }

  it('counts a cluster as used when only the second FAT says so', async () => {
    const image = scratch.image('mirror.img', 16 * MiB);
    run('mkfs.fat', ['-F', '16', '-s', '1', image]);
    const clean = await mapImage(image);
    const geo = parseFatBootSector(peekFile(image, 0, 512))!;
    // Entry 100 of the second FAT only.
    patchFile(image, (geo.reservedSectors + geo.fatSectors) * geo.bytesPerSector + 100 * 2, Buffer.from([0xff, 0xff]));
    const map = await mapImage(image);
    expect(map.usedBytes - clean.usedBytes).toBe(geo.sectorsPerCluster * geo.bytesPerSector);
  });

  it('keeps a volume tail past the filesystem, refuses a short volume, rejects a damaged boot sector', async () => {
    const image = scratch.image('tail.img', 8 * MiB);
    run('mkfs.fat', ['-F', '16', '-s', '1', image]);
    truncateSync(image, 12 * MiB); // an 8 MiB filesystem in a 12 MiB volume
    const map = await mapImage(image);
    expect(totalBytes(intersectExtents(map.extents, [{ startBytes: 8 * MiB, lengthBytes: 4 * MiB }]))).toBe(4 * MiB);
    await expect(mapImage(image, 0, 6 * MiB)).rejects.toMatchObject({ code: 'InvalidInput' });
    patchFile(image, 0x0d, Buffer.from([3])); // 3 sectors per cluster
    await expect(mapImage(image)).rejects.toMatchObject({ code: 'Corrupt' });
  });
});
