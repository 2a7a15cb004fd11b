// NTFS used-block maps on mkntfs images filled through ntfs-3g (FUSE), checked against ntfscluster's
// free-cluster count and ntfsinfo's run lists, for 512 B, 4 KiB and 64 KiB clusters and 4096-byte sectors.
import { mkdtempSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { intersectExtents, normalizeExtents, totalBytes, type Extent } from '../../agent-core/extents.js';
import { FileSource } from '../source/file-source.js';
import { Scratch, patchFile, peekFile, populate, requireRoot, run } from '../../test-support/disk.js';
import { applyFixups, decodeRunlist, parseNtfsBootSector, readNtfsUsedExtents } from './ntfs-used-extents.js';

const MiB = 1 << 20;

let scratch: Scratch;
beforeAll(() => {
  requireRoot();
  scratch = new Scratch('strata-ntfs-');
});
afterAll(() => scratch.cleanup());

async function mapImage(image: string) {
  const source = await FileSource.open(image);
  try {
    return await readNtfsUsedExtents(source, 0, source.sizeBytes);
  } finally {
    await source.close();
  }
}

/** Mounts an NTFS image through ntfs-3g (the kernel here has no NTFS driver); unmounted at cleanup. */
function mountNtfs(s: Scratch, image: string, readOnly = false): string {
  const dir = mkdtempSync(s.path('ntfs-'));
  run('ntfs-3g', [...(readOnly ? ['-o', 'ro'] : []), image, dir]);
  s.defer(() => run('umount', [dir]));
  return dir;
}

/** ntfscluster's count of free clusters, read from $Bitmap by libntfs. */
function ntfsFreeClusters(image: string): number {
  const m = /^clusters of free space\s*:\s*(\d+)/m.exec(run('ntfscluster', ['-f', '-i', image]));
  if (!m) throw new Error('ntfscluster printed no free-cluster count');
  return Number(m[1]);
}

/** The clusters ntfsinfo lists for a file's data runs, as byte extents. */
function ntfsFileExtents(image: string, file: string, clusterBytes: number): Extent[] {
  const out = run('ntfsinfo', ['-f', '-v', '-F', file, image]);
  const extents: Extent[] = [];
  for (const m of out.matchAll(/^\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s*$/gim)) {
    const lcn = parseInt(m[2]!, 16);
    extents.push({ startBytes: lcn * clusterBytes, lengthBytes: parseInt(m[3]!, 16) * clusterBytes });
  }
  return extents;
}

const VARIANTS: Array<{ name: string; sizeBytes: number; mkfs: string[]; sectorBytes: number }> = [
  { name: '4k-clusters', sizeBytes: 64 * MiB, mkfs: [], sectorBytes: 512 },
  { name: '512b-clusters', sizeBytes: 48 * MiB, mkfs: ['-c', '512'], sectorBytes: 512 },
  { name: '64k-clusters', sizeBytes: 96 * MiB, mkfs: ['-c', '65536'], sectorBytes: 512 },
  { name: '4k-sectors', sizeBytes: 64 * MiB, mkfs: ['-s', '4096', '-c', '8192'], sectorBytes: 4096 },
];

describe('readNtfsUsedExtents', () => {
  for (const v of VARIANTS) {
    it(`maps ${v.name}: the clusters ntfscluster counts as used, every file's runs, and the backup boot sector`, async () => {
      const image = scratch.image(`${v.name}.img`, v.sizeBytes);
      run('mkntfs', ['-F', '-Q', '-q', ...v.mkfs, image]);
      const dir = mountNtfs(scratch, image);
      populate(dir, { smallFiles: 150, largeFiles: 3, largeBytes: 4 * MiB, seed: v.sizeBytes / MiB });
      run('umount', [dir]);

      const g = parseNtfsBootSector(peekFile(image, 0, 512))!;
      expect(g.bytesPerSector).toBe(v.sectorBytes);
      const map = await mapImage(image);
      expect(map.warnings).toEqual([]);
      expect(normalizeExtents(map.extents)).toEqual(map.extents);
      const cb = g.clusterBytes;
      const clusterArea = { startBytes: 0, lengthBytes: g.clusterCount * cb };
      const usedClusters = g.clusterCount - ntfsFreeClusters(image);
      // Exactly $Bitmap's clusters: a superset of what libntfs calls used, and nothing more inside the cluster area.
      expect(totalBytes(intersectExtents(map.extents, [clusterArea]))).toBe(usedClusters * cb);
      expect(usedClusters * cb).toBeGreaterThan(8 * MiB);
      // Past the last cluster: the partial cluster and the backup boot sector at the volume's last sector.
      expect(totalBytes(intersectExtents(map.extents, [{ startBytes: clusterArea.lengthBytes, lengthBytes: v.sizeBytes }]))).toBe(
        v.sizeBytes - clusterArea.lengthBytes,
      );
      expect(peekFile(image, v.sizeBytes - v.sectorBytes, 512).subarray(3, 11).toString('latin1')).toBe('NTFS    ');

      // Every data run of the large files and of a sample of small ones lies inside the map.
      const files = ['big1.bin', 'big2.bin'];
      const sample = ['d1/e1/f1.txt', 'd2/e2/f2.txt', 'd4/e1/f4.txt'];
      let checked = 0;
      for (const f of [...files, ...sample]) {
        const runs = ntfsFileExtents(image, `/${f}`, cb);
        for (const e of runs) expect(totalBytes(intersectExtents(map.extents, [e])), f).toBe(e.lengthBytes);
        checked += runs.length;
      }
      expect(checked).toBeGreaterThanOrEqual(2);
    });
  }

  it('rejects an MFT record whose update sequence is torn, and a boot sector with impossible geometry, as Corrupt', async () => {
    const image = scratch.image('torn.img', 16 * MiB);
    run('mkntfs', ['-F', '-Q', '-q', image]);
    const g = parseNtfsBootSector(peekFile(image, 0, 512))!;
    await mapImage(image);
    // The last two bytes of the $Bitmap record's first 512-byte stride hold the update sequence number.
    const tail = g.mftLcn * g.clusterBytes + 6 * g.recordBytes + 510;
    patchFile(image, tail, Buffer.from([0x12, 0x34]));
    await expect(mapImage(image)).rejects.toMatchObject({ code: 'Corrupt' });
    patchFile(image, 0x0d, Buffer.from([3])); // three sectors per cluster
    await expect(mapImage(image)).rejects.toMatchObject({ code: 'Corrupt' });
  });

  it('warns about a volume marked dirty, and stops warning once the flag is cleared', async () => {
    const image = scratch.image('dirty.img', 16 * MiB);
    run('mkntfs', ['-F', '-Q', '-q', image]);
    const clean = await mapImage(image);
    expect(clean.warnings).toEqual([]);
    run('ntfsfix', [image]); // leaves the dirty flag set so that Windows runs chkdsk
    const dirty = await mapImage(image);
    expect(dirty.warnings).toEqual([expect.stringMatching(/^The NTFS volume at offset 0 is marked dirty/)]);
    expect(dirty.extents).toEqual(clean.extents);
    run('ntfsfix', ['-d', image]);
    expect((await mapImage(image)).warnings).toEqual([]);
  });

  it('refuses a volume shorter than its filesystem as InvalidInput', async () => {
    const image = scratch.image('short.img', 16 * MiB);
    run('mkntfs', ['-F', '-Q', '-q', image]);
    run('truncate', ['-s', String(12 * MiB), image]);
    await expect(mapImage(image)).rejects.toMatchObject({ code: 'InvalidInput' });
  });
});

describe('NTFS record helpers', () => {
  it('decodes run lists with negative deltas and sparse runs, and rejects one without its end byte', () => {
    // 0x21: 1 length byte, 2 offset bytes. Run 1: 8 clusters at 0x1000; run 2: 4 at 0x1000 - 0x10; sparse 2.
    const b = Buffer.from([0x21, 0x08, 0x00, 0x10, 0x21, 0x04, 0xf0, 0xff, 0x01, 0x02, 0x00]);
    expect(decodeRunlist(b, 0, b.length, 0)).toEqual([
      { vcn: 0, lcn: 0x1000, lengthClusters: 8 },
      { vcn: 8, lcn: 0xff0, lengthClusters: 4 },
      { vcn: 12, lcn: null, lengthClusters: 2 },
    ]);
    expect(decodeRunlist(b, 0, b.length - 1, 0)).toBeNull();
    expect(decodeRunlist(Buffer.from([0x11, 0x01, 0x80, 0x00]), 0, 4, 0)).toBeNull(); // LCN below 0
  });

  it('applies fixups only when every stride carries the update sequence number', () => {
    const record = Buffer.alloc(1024);
    record.writeUInt16LE(0x30, 4);
    record.writeUInt16LE(3, 6);
    record.writeUInt16LE(0x0007, 0x30);
    record.writeUInt16LE(0xaaaa, 0x32);
    record.writeUInt16LE(0xbbbb, 0x34);
    record.writeUInt16LE(0x0007, 510);
    record.writeUInt16LE(0x0007, 1022);
    const copy = Buffer.from(record);
    expect(applyFixups(copy)).toBe(true);
    expect(copy.readUInt16LE(510)).toBe(0xaaaa);
    expect(copy.readUInt16LE(1022)).toBe(0xbbbb);
    record.writeUInt16LE(0x0008, 1022);
    expect(applyFixups(record)).toBe(false);
  });
});
