// The whole disk map on real partitioned images: layout as `strata inspect --json` prints it, and
// valid extents that keep every used block, every unreadable volume and everything between volumes.
import { truncateSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DiskLayoutSchema } from '../../agent-core/api/disk-layout.js';
import { StrataError } from '../../agent-core/api/errors.js';
import { complementExtents, intersectExtents, normalizeExtents, totalBytes, type Extent } from '../../agent-core/extents.js';
import { FileSource } from '../source/file-source.js';
import { Scratch, countReads, dumpe2fsReport, partitionNumber, patchFile, populate, requireRoot, run, sfdiskDump } from '../../test-support/disk.js';
import { readExfatUsedExtents } from './exfat-used-extents.js';
import { readFatUsedExtents } from './fat-used-extents.js';
import { mapDisk, type DiskMap } from './map-disk.js';
import { readSwapUsedExtents } from './swap-used-extents.js';

const MiB = 1 << 20;
const SECTOR = 512;

let scratch: Scratch;
beforeAll(() => {
  requireRoot();
  scratch = new Scratch('strata-map-');
});
afterAll(() => scratch.cleanup());

async function mapImage(image: string): Promise<DiskMap> {
  const source = await FileSource.open(image);
  try {
    return await mapDisk(source);
  } finally {
    await source.close();
  }
}

/** mkfs through a loop device over [offsetBytes, +sizeBytes) of the image, then fill it unless told not to. */
function makeFsAt(image: string, offsetBytes: number, sizeBytes: number, mkfs: string[], fill = true): void {
  const dev = scratch.loop(image, { offsetBytes, sizeBytes });
  run(mkfs[0]!, [...mkfs.slice(1), dev]);
  if (fill) {
    const dir = scratch.mount(dev);
    populate(dir, { seed: offsetBytes / MiB, largeBytes: Math.min(2 * MiB, sizeBytes / 16) });
    scratch.umount(dir);
  }
}

function bytesIn(extents: readonly Extent[], startBytes: number, lengthBytes: number): number {
  return totalBytes(intersectExtents(extents, [{ startBytes, lengthBytes }]));
}

/** Every block dumpe2fs calls used is valid, and the valid bytes inside the filesystem are at most 1 % more. */
function expectExtCovered(image: string, valid: readonly Extent[], offsetBytes: number): void {
  const report = dumpe2fsReport(image, offsetBytes);
  const expected = normalizeExtents(report.usedExtents.map((e) => ({ startBytes: offsetBytes + e.startBytes, lengthBytes: e.lengthBytes })));
  expect(totalBytes(intersectExtents(valid, expected))).toBe(report.usedBytes);
  expect(bytesIn(valid, offsetBytes, report.blockCount * report.blockSizeBytes)).toBeLessThanOrEqual(report.usedBytes * 1.01);
}

/** Everything outside the volumes (tables, EBRs, gaps, the backup GPT) is valid. */
function expectOutsideVolumesKept(map: DiskMap): void {
  const volumes = normalizeExtents(map.layout.volumes.map((v) => ({ startBytes: v.startBytes, lengthBytes: v.sizeBytes })));
  const outside = complementExtents(volumes, map.layout.sizeBytes);
  expect(totalBytes(intersectExtents(map.validExtents, outside))).toBe(totalBytes(outside));
}

function expectValidShape(map: DiskMap): void {
  expect(DiskLayoutSchema.parse(map.layout)).toEqual(map.layout);
  expect(normalizeExtents(map.validExtents)).toEqual(map.validExtents);
  const last = map.validExtents.at(-1)!;
  expect(last.startBytes + last.lengthBytes).toBeLessThanOrEqual(map.layout.sizeBytes);
  for (const v of map.layout.volumes) expect(v.usedBytes).toBe(bytesIn(map.validExtents, v.startBytes, v.sizeBytes));
}

describe('mapDisk', () => {
  it('maps an MBR disk: used blocks of ext volumes, the swap header, whole unknown volumes, EBRs and gaps kept', async () => {
    const image = scratch.image('mbr.img', 64 * MiB);
    const script = [
      'label: dos',
      'start=2048, size=20480, type=83', // 1: ext4, 10 MiB
      'start=22528, size=4096, type=82', // 2: swap
      'start=28672, type=5', // 3: extended, after a 1 MiB gap
      // Explicit starts: sfdisk would otherwise try the gap in front of the extended partition.
      'start=30720, size=16384, type=83', // 5: ext3
      'start=49152, size=8192, type=da', // 6: nothing on it
      'start=59392, size=12288, type=83', // 7: ext2
    ].join('\n');
    run('sfdisk', ['-q', image], script + '\n');
    const parts = sfdiskDump(image).partitions;
    const at = (n: number) => {
      const p = parts.find((q) => partitionNumber(q.node) === n)!;
      return { offsetBytes: p.start * SECTOR, sizeBytes: p.size * SECTOR };
    };
    makeFsAt(image, at(1).offsetBytes, at(1).sizeBytes, ['mke2fs', '-F', '-q', '-t', 'ext4', '-b', '1024', '-L', 'root']);
    makeFsAt(image, at(2).offsetBytes, at(2).sizeBytes, ['mkswap', '-L', 'swap'], false);
    makeFsAt(image, at(5).offsetBytes, at(5).sizeBytes, ['mke2fs', '-F', '-q', '-t', 'ext3', '-b', '1024']);
    makeFsAt(image, at(7).offsetBytes, at(7).sizeBytes, ['mke2fs', '-F', '-q', '-t', 'ext2', '-b', '1024']);

    const map = await mapImage(image);
    expectValidShape(map);
    expect(map.layout).toMatchObject({ sizeBytes: 64 * MiB, logicalSectorSize: 512, partitionTable: 'mbr', warnings: [] });
    expect(map.layout.volumes.map((v) => [v.index, v.partitionType, v.filesystem, v.label])).toEqual([
      [1, '0x83', 'ext4', 'root'],
      [2, '0x82', 'swap', 'swap'],
      [5, '0x83', 'ext3', null],
      [6, '0xda', 'unknown', null],
      [7, '0x83', 'ext2', null],
    ]);
    // The JSON `strata inspect --json` prints: exactly these keys, in this order.
    expect(Object.keys(map.layout)).toEqual(['sizeBytes', 'logicalSectorSize', 'partitionTable', 'volumes', 'warnings']);
    expect(Object.keys(map.layout.volumes[0]!)).toEqual(['index', 'startBytes', 'sizeBytes', 'partitionType', 'filesystem', 'label', 'uuid', 'usedBytes']);

    for (const n of [1, 5, 7]) expectExtCovered(image, map.validExtents, at(n).offsetBytes);
    expect(bytesIn(map.validExtents, at(6).offsetBytes, at(6).sizeBytes)).toBe(at(6).sizeBytes);
    // Of the swap volume only the header page is kept.
    expect(bytesIn(map.validExtents, at(2).offsetBytes, at(2).sizeBytes)).toBe(4096);
    expect(bytesIn(map.validExtents, at(2).offsetBytes, 4096)).toBe(4096);
    expectOutsideVolumesKept(map);
    // The EBR in front of each logical partition is among the kept bytes.
    for (const n of [5, 6, 7]) expect(bytesIn(map.validExtents, at(n).offsetBytes - 2048 * SECTOR, SECTOR)).toBe(SECTOR);
    // Free space inside the ext volumes is what makes the map worth having.
    expect(map.layout.volumes[0]!.usedBytes).toBeLessThan(at(1).sizeBytes / 2);
  });

  it('maps a GPT disk with four partitions, the backup GPT kept', async () => {
    const image = scratch.image('gpt.img', 64 * MiB);
    run('sgdisk', ['-n', '1:2048:+20M', '-n', '2:0:+16M', '-t', '2:8300', '-n', '3:0:+4M', '-t', '3:8200', '-n', '4:0:0', image]);
    makeFsAt(image, MiB, 20 * MiB, ['mke2fs', '-F', '-q', '-t', 'ext4', '-b', '4096', '-L', 'data']);
    makeFsAt(image, 21 * MiB, 16 * MiB, ['mke2fs', '-F', '-q', '-t', 'ext4', '-O', 'bigalloc', '-C', '16384']);
    makeFsAt(image, 37 * MiB, 4 * MiB, ['mkswap'], false);

    const map = await mapImage(image);
    expectValidShape(map);
    expect(map.layout.partitionTable).toBe('gpt');
    expect(map.layout.warnings).toEqual([]);
    expect(map.layout.volumes.map((v) => [v.index, v.filesystem])).toEqual([
      [1, 'ext4'],
      [2, 'ext4'],
      [3, 'swap'],
      [4, 'unknown'],
    ]);
    expect(map.layout.volumes[0]!.uuid).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expectExtCovered(image, map.validExtents, MiB);
    expectExtCovered(image, map.validExtents, 21 * MiB);
    expectOutsideVolumesKept(map);
    // The backup GPT: its header in the last sector and its entries before it.
    expect(bytesIn(map.validExtents, 64 * MiB - 33 * SECTOR, 33 * SECTOR)).toBe(33 * SECTOR);
  });

  it('maps a GPT disk with 4096-byte sectors', async () => {
    const image = scratch.image('gpt-4k.img', 64 * MiB);
    const dev = scratch.loop(image, { sectorSize: 4096 });
    run('sgdisk', ['-n', '1:256:+24M', '-n', '2:0:0', dev]);
    run('blockdev', ['--flushbufs', dev]);
    makeFsAt(image, MiB, 24 * MiB, ['mke2fs', '-F', '-q', '-t', 'ext4', '-L', 'fourk']);
    const map = await mapImage(image);
    expectValidShape(map);
    expect(map.layout.logicalSectorSize).toBe(4096);
    expect(map.layout.volumes[0]).toMatchObject({ index: 1, startBytes: MiB, sizeBytes: 24 * MiB, filesystem: 'ext4', label: 'fourk' });
    expectExtCovered(image, map.validExtents, MiB);
    expectOutsideVolumesKept(map);
  });

  it('maps FAT, exFAT and swap partitions at their offsets exactly as their readers map them alone', async () => {
    const image = scratch.image('gpt-fat.img', 80 * MiB);
    run('sgdisk', ['-n', '1:2048:+32M', '-t', '1:0700', '-n', '2:0:+32M', '-t', '2:0700', '-n', '3:0:+4M', '-t', '3:8200', image]);
    makeFsAt(image, MiB, 32 * MiB, ['mkfs.fat', '-F', '16', '-n', 'PARTFAT'], false);
    run('mcopy', ['-i', `${image}@@${MiB}`, '/etc/hostname', '/etc/services', '::/']);
    makeFsAt(image, 33 * MiB, 32 * MiB, ['mkfs.exfat', '-L', 'partx'], false);
    makeFsAt(image, 65 * MiB, 4 * MiB, ['mkswap'], false);

    const map = await mapImage(image);
    expectValidShape(map);
    expect(map.layout.warnings).toEqual([]);
    expect(map.layout.volumes.map((v) => [v.index, v.filesystem, v.label])).toEqual([
      [1, 'vfat', 'PARTFAT'],
      [2, 'exfat', null],
      [3, 'swap', null],
    ]);
    const readers = [readFatUsedExtents, readExfatUsedExtents, readSwapUsedExtents];
    for (const [i, v] of map.layout.volumes.entries()) {
      const alone = scratch.path(`alone-${v.index}.img`);
      run('dd', [`if=${image}`, `of=${alone}`, 'bs=1M', `skip=${v.startBytes}`, `count=${v.sizeBytes}`, 'iflag=skip_bytes,count_bytes', 'status=none']);
      const source = await FileSource.open(alone);
      try {
        const own = await readers[i]!(source, 0, v.sizeBytes);
        const shifted = own.extents.map((e) => ({ startBytes: e.startBytes + v.startBytes, lengthBytes: e.lengthBytes }));
        expect(intersectExtents(map.validExtents, [{ startBytes: v.startBytes, lengthBytes: v.sizeBytes }])).toEqual(shifted);
        expect(v.usedBytes).toBe(own.usedBytes);
        expect(v.usedBytes).toBeLessThan(v.sizeBytes / 4);
      } finally {
        await source.close();
      }
    }
    expectOutsideVolumesKept(map);
  });

  it('maps NTFS, btrfs, LUKS2 and LVM2 partitions at their offsets exactly as they map alone', async () => {
    const image = scratch.image('gpt-more.img', 400 * MiB);
    run('sgdisk', ['-n', '1:2048:+64M', '-t', '1:0700', '-n', '2:0:+160M', '-t', '2:8300', '-n', '3:0:+24M', '-t', '3:8309', '-n', '4:0:+64M', '-t', '4:8e00', image]);
    const starts = [MiB, 65 * MiB, 225 * MiB, 249 * MiB];
    const ntfsDev = scratch.loop(image, { offsetBytes: starts[0], sizeBytes: 64 * MiB });
    run('mkntfs', ['-F', '-Q', '-q', '-L', 'partntfs', ntfsDev]);
    const ntfsMnt = scratch.path('ntfs-mnt');
    run('mkdir', [ntfsMnt]);
    run('ntfs-3g', [ntfsDev, ntfsMnt]);
    try {
      populate(ntfsMnt, { smallFiles: 60, largeFiles: 2, largeBytes: 2 * MiB, seed: 21 });
    } finally {
      run('umount', [ntfsMnt]);
    }
    makeFsAt(image, starts[1]!, 160 * MiB, ['mkfs.btrfs', '-q', '-f', '-L', 'partbtrfs']);
    const luksDev = scratch.loop(image, { offsetBytes: starts[2], sizeBytes: 24 * MiB });
    const key = scratch.path('key');
    run('tee', [key], 'secret');
    run('cryptsetup', ['luksFormat', '-q', '--type', 'luks2', '--key-file', key, '--pbkdf', 'pbkdf2', '--pbkdf-force-iterations', '1000', luksDev]);
    const pvDev = scratch.loop(image, { offsetBytes: starts[3], sizeBytes: 64 * MiB });
    const vg = `mapdisk${process.pid}`;
    const lvm = (cmd: string, args: string[]): string => run(cmd, ['--driverloaded', 'n', '--config', 'backup { backup = 0 archive = 0 }', ...args]);
    process.env['LVM_SUPPRESS_FD_WARNINGS'] = '1';
    lvm('pvcreate', ['-ff', '-y', pvDev]);
    lvm('vgcreate', ['-s', '4m', vg, pvDev]);
    scratch.defer(() => lvm('vgremove', ['-f', vg]));
    lvm('lvcreate', ['-an', '--zero', 'n', '-y', '-L', '16m', '-n', 'root', vg]);
    const pvsOut = lvm('pvs', ['--noheadings', '--nosuffix', '--units', 'b', '-o', 'pe_start', pvDev]);
    const peStart = Number(/^\s*(\d+)\s*$/m.exec(pvsOut)?.[1]);
    expect(peStart, `pvs printed ${JSON.stringify(pvsOut)}`).toBeGreaterThan(0);
    makeFsAt(image, starts[3]! + peStart, 16 * MiB, ['mke2fs', '-F', '-q', '-t', 'ext4']);

    const map = await mapImage(image);
    expectValidShape(map);
    expect(map.layout.volumes.map((v) => [v.index, v.filesystem, v.startBytes])).toEqual([
      [1, 'ntfs', starts[0]],
      [2, 'btrfs', starts[1]],
      [3, 'crypto_LUKS', starts[2]],
      [4, 'LVM2_member', starts[3]],
    ]);
    expect(map.layout.volumes.map((v) => v.label)).toEqual(['partntfs', 'partbtrfs', null, null]);
    expect(map.layout.warnings).toEqual([expect.stringMatching(/^The LUKS2 volume at offset 235929600 is encrypted \(a 16777216-byte header\)/)]);
    for (const v of map.layout.volumes) {
      const alone = scratch.path(`alone-more-${v.index}.img`);
      run('dd', [`if=${image}`, `of=${alone}`, 'bs=1M', `skip=${v.startBytes}`, `count=${v.sizeBytes}`, 'iflag=skip_bytes,count_bytes', 'status=none']);
      const own = await mapImage(alone);
      expect(own.layout.volumes[0]!.filesystem).toBe(v.filesystem);
      const shifted = own.validExtents.map((e) => ({ startBytes: e.startBytes + v.startBytes, lengthBytes: e.lengthBytes }));
      expect(intersectExtents(map.validExtents, [{ startBytes: v.startBytes, lengthBytes: v.sizeBytes }]), `volume ${v.index}`).toEqual(shifted);
      if (v.filesystem !== 'crypto_LUKS') expect(v.usedBytes, `volume ${v.index}`).toBeLessThan(v.sizeBytes / 2);
    }
    expectOutsideVolumesKept(map);
  });

  it('maps a disk without a partition table as volume 0', async () => {
    const image = scratch.image('bare.img', 32 * MiB);
    makeFsAt(image, 0, 32 * MiB, ['mke2fs', '-F', '-q', '-t', 'ext4', '-L', 'whole']);
    const map = await mapImage(image);
    expectValidShape(map);
    expect(map.layout.partitionTable).toBe('none');
    expect(map.layout.volumes).toEqual([
      { index: 0, startBytes: 0, sizeBytes: 32 * MiB, partitionType: null, filesystem: 'ext4', label: 'whole', uuid: expect.any(String), usedBytes: totalBytes(map.validExtents) },
    ]);
    expectExtCovered(image, map.validExtents, 0);
  });

  it('keeps an unreadable ext volume whole, with a warning', async () => {
    const image = scratch.image('bad-ext.img', 32 * MiB);
    run('sfdisk', ['-q', image], 'label: dos\nstart=2048, type=83\n');
    makeFsAt(image, MiB, 31 * MiB, ['mke2fs', '-F', '-q', '-t', 'ext4'], false);
    patchFile(image, MiB + 1024 + 0x20, Buffer.alloc(4)); // s_blocks_per_group = 0
    const map = await mapImage(image);
    expect(map.layout.volumes[0]).toMatchObject({ filesystem: 'ext4', usedBytes: 31 * MiB });
    expect(map.validExtents).toEqual([{ startBytes: 0, lengthBytes: 32 * MiB }]);
    expect(map.layout.warnings).toEqual([
      `Volume 1: The ext superblock at offset ${MiB} is damaged: 0 clusters per group. The whole volume is kept.`,
    ]);
  });

  it('keeps both of two overlapping partitions whole, with a warning', async () => {
    const image = scratch.image('overlap.img', 32 * MiB);
    run('sfdisk', ['-q', image], 'label: dos\nstart=2048, size=20480, type=83\nstart=30720, size=20480, type=83\n');
    makeFsAt(image, MiB, 10 * MiB, ['mke2fs', '-F', '-q', '-t', 'ext4']);
    const clean = await mapImage(image);
    expect(clean.layout.warnings).toEqual([]);
    expect(clean.layout.volumes[0]!.usedBytes).toBeLessThan(10 * MiB);
    // Partition 2 now starts inside partition 1.
    const entry = Buffer.alloc(4);
    entry.writeUInt32LE(18432, 0);
    patchFile(image, 446 + 16 + 8, entry);
    const map = await mapImage(image);
    expectValidShape(map);
    expect(map.layout.warnings).toEqual([`Partitions 1 and 2 overlap (bytes ${9 * MiB}–${11 * MiB}); both are kept whole. Check the partition table.`]);
    // Partition 2 starts on a block of the ext4 that may hold anything; whatever it looks like, it is kept whole.
    expect(map.layout.volumes.map((v) => v.usedBytes)).toEqual([10 * MiB, 10 * MiB]);
    expect(map.layout.volumes[0]!.filesystem).toBe('ext4');
    expect(map.validExtents).toEqual([{ startBytes: 0, lengthBytes: 32 * MiB }]);
  });

  it('refuses an image truncated below its filesystem, before anything is written', async () => {
    const bare = scratch.image('short-bare.img', 32 * MiB);
    run('mke2fs', ['-F', '-q', '-t', 'ext4', bare]);
    truncateSync(bare, 20 * MiB);
    const err = await mapImage(bare).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StrataError);
    expect(err).toMatchObject({
      code: 'InvalidInput',
      message: `The ext4 filesystem at offset 0 claims ${32 * MiB} bytes but its volume holds only ${20 * MiB}; the image may be truncated.`,
    });

    const parted = scratch.image('short-parted.img', 48 * MiB);
    run('sfdisk', ['-q', parted], 'label: dos\nstart=2048, type=83\n');
    makeFsAt(parted, MiB, 47 * MiB, ['mke2fs', '-F', '-q', '-t', 'ext3'], false);
    truncateSync(parted, 40 * MiB);
    await expect(mapImage(parted)).rejects.toMatchObject({
      code: 'InvalidInput',
      message: `The ext3 filesystem at offset ${MiB} claims ${47 * MiB} bytes but its volume holds only ${39 * MiB}; the image may be truncated.`,
    });
  });

  // Speed itself is measured in bench/disk-map.mjs; what makes it fast is that only metadata is read.
  it('maps a 1 GiB partitioned ext4 disk by reading its metadata only (under 1 MiB)', async () => {
    const image = scratch.image('big.img', 1024 * MiB);
    run('sgdisk', ['-n', '1:2048:0', image]);
    const p = sfdiskDump(image).partitions[0]!;
    makeFsAt(image, p.start * SECTOR, p.size * SECTOR, ['mke2fs', '-F', '-q', '-t', 'ext4', '-E', 'lazy_itable_init=1,lazy_journal_init=1']);
    const source = await FileSource.open(image);
    const reads = countReads(source);
    let map: DiskMap;
    try {
      map = await mapDisk(source);
    } finally {
      await source.close();
    }
    expect(map.layout.volumes[0]!.filesystem).toBe('ext4');
    expect(map.layout.warnings).toEqual([]);
    expect(reads.bytes()).toBeGreaterThan(0);
    expect(reads.bytes()).toBeLessThan(MiB);
  });
});
