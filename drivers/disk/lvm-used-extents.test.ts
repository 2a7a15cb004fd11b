// LVM2 physical volumes made with the real pvcreate/vgcreate/lvcreate (device-mapper is absent here,
// so LVs are created with --driverloaded n and filled by writing their filesystems at their extents):
// every linear and striped LV is mapped through its filesystem, everything else is kept.
import { openSync, closeSync, readSync, writeSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { intersectExtents, normalizeExtents, totalBytes, type Extent } from '../../agent-core/extents.js';
import { FileSource } from '../source/file-source.js';
import { dumpe2fsReport, patchFile, peekFile, populate, requireRoot, run, Scratch } from '../../test-support/disk.js';
import { readFatUsedExtents } from './fat-used-extents.js';
import type { BlockSource } from '../../agent-core/block-source.js';
import { parseLvmText, readVolumeGroup } from './lvm-metadata.js';
import { lvmCrc, readLvmUsedExtents } from './lvm-used-extents.js';
import { mapDisk } from './map-disk.js';

const MiB = 1 << 20;
const EXTENT = 4 * MiB;

let scratch: Scratch;
beforeAll(() => {
  requireRoot();
  process.env['LVM_SUPPRESS_FD_WARNINGS'] = '1';
  scratch = new Scratch('strata-lvm-');
});
afterAll(() => scratch.cleanup());

/** Keeps LVM from copying every test VG's metadata into /etc/lvm/archive and /etc/lvm/backup. */
const NO_ARCHIVE = 'backup { backup = 0 archive = 0 }';

/** LVM commands without device-mapper: metadata is written, nothing is activated. */
function lvm(cmd: string, args: string[]): string {
  return run(cmd, ['--driverloaded', 'n', '--config', NO_ARCHIVE, ...args]);
}

let vgCounter = 0;
function newVg(images: string[]): { vg: string; devs: string[] } {
  const vg = `strata${process.pid}x${vgCounter++}`;
  const devs = images.map((i) => scratch.loop(i));
  for (const d of devs) lvm('pvcreate', ['-ff', '-y', d]);
  lvm('vgcreate', ['-s', '4m', vg, ...devs]);
  scratch.defer(() => lvm('vgremove', ['-f', vg]));
  return { vg, devs };
}

/** One numeric field of a PV as pvs prints it (the line that is a number: LVM may add warnings on stdout). */
function pvField(dev: string, field: string): number {
  const out = lvm('pvs', ['--noheadings', '--nosuffix', '--units', 'b', '-o', field, dev]);
  const m = /^\s*(\d+)\s*$/m.exec(out);
  if (!m) throw new Error(`pvs printed no ${field} for ${dev}: ${JSON.stringify(out)}`);
  return Number(m[1]);
}

function peStartBytes(dev: string): number {
  return pvField(dev, 'pe_start');
}

/** Copies [from, from + length) of one file to offset `to` of another, in place. */
function copyRange(src: string, from: number, length: number, dst: string, to: number): void {
  const a = openSync(src, 'r');
  const b = openSync(dst, 'r+');
  try {
    const buf = Buffer.alloc(length);
    readSync(a, buf, 0, length, from);
    writeSync(b, buf, 0, length, to);
  } finally {
    closeSync(a);
    closeSync(b);
  }
}

/** Shifts filesystem-relative extents through an LV layout given as (lvOffset, length, pvOffset) pieces. */
function throughPieces(extents: Extent[], pieces: Array<[number, number, number]>): Extent[] {
  const out: Extent[] = [];
  for (const e of extents) {
    for (const [lvAt, length, pvAt] of pieces) {
      const from = Math.max(e.startBytes, lvAt);
      const to = Math.min(e.startBytes + e.lengthBytes, lvAt + length);
      if (from < to) out.push({ startBytes: pvAt + from - lvAt, lengthBytes: to - from });
    }
  }
  return normalizeExtents(out);
}

describe('LVM2 physical volumes', () => {
  it('maps linear (two segments), striped and FAT logical volumes through their filesystems, keeps raw LVs whole and skips free extents', async () => {
    const image = scratch.image('pv.img', 160 * MiB);
    const { vg, devs } = newVg([image]);
    lvm('lvcreate', ['-an', '--zero', 'n', '-y', '-L', '40m', '-n', 'data', vg]);
    lvm('lvcreate', ['-an', '--zero', 'n', '-y', '-L', '24m', '-n', 'fat', vg]);
    lvm('lvextend', ['-L', '+8m', `${vg}/data`]);
    lvm('lvcreate', ['-an', '--zero', 'n', '-y', '-L', '8m', '-n', 'raw', vg]);
    // A 2-stripe LV whose stripes both lie on this PV (PEs 24–25 and 26–27), written with vgcfgrestore.
    const backup = scratch.path('vg.txt');
    lvm('vgcfgbackup', ['-f', backup, vg]);
    const text = run('cat', [backup]).replace(
      'logical_volumes {',
      'logical_volumes {\nstriped {\nid = "abcdef-ghij-klmn-opqr-stuv-wxyz-012345"\nstatus = ["READ", "WRITE", "VISIBLE"]\nflags = []\nsegment_count = 1\nsegment1 {\nstart_extent = 0\nextent_count = 4\ntype = "striped"\nstripe_count = 2\nstripe_size = 128\nstripes = [\n"pv0", 24,\n"pv0", 26\n]\n}\n}\n',
    );
    run('tee', [backup], text);
    lvm('vgcfgrestore', ['-f', backup, vg]);
    const ranges = lvm('lvs', ['--noheadings', '-o', 'lv_name,seg_pe_ranges', vg]);
    expect(ranges).toMatch(/data\s+\S+:0-9/);
    expect(ranges).toMatch(/fat\s+\S+:10-15/);
    expect(ranges).toMatch(/data\s+\S+:16-17/);
    expect(ranges).toMatch(/raw\s+\S+:18-19/);
    expect(ranges).toMatch(/striped\s+\S+:24-25 \S+:26-27/);
    const pe0 = peStartBytes(devs[0]!);
    const pe = (n: number): number => pe0 + n * EXTENT;

    // data: ext4 made in a file, filled through a mount, then copied to its two segments.
    const dataFs = scratch.image('data-fs.img', 48 * MiB);
    run('mkfs.ext4', ['-q', '-F', dataFs]);
    const mnt = scratch.mount(dataFs, ['-o', 'loop']);
    populate(mnt, { smallFiles: 100, largeFiles: 3, largeBytes: 6 * MiB, seed: 3 });
    scratch.umount(mnt);
    const dataPieces: Array<[number, number, number]> = [
      [0, 40 * MiB, pe(0)],
      [40 * MiB, 8 * MiB, pe(16)],
    ];
    for (const [lvAt, length, pvAt] of dataPieces) copyRange(dataFs, lvAt, length, image, pvAt);
    // striped: 16 MiB ext4 scattered in 64 KiB chunks across the two stripes.
    const stripedFs = scratch.image('striped-fs.img', 16 * MiB);
    run('mkfs.ext4', ['-q', '-F', '-b', '4096', stripedFs]);
    const mnt2 = scratch.mount(stripedFs, ['-o', 'loop']);
    populate(mnt2, { smallFiles: 40, largeFiles: 2, largeBytes: 2 * MiB, seed: 4 });
    scratch.umount(mnt2);
    const stripedPieces: Array<[number, number, number]> = [];
    for (let chunk = 0; chunk < (16 * MiB) / (64 << 10); chunk++) {
      const stripeStart = chunk % 2 === 0 ? pe(24) : pe(26);
      stripedPieces.push([chunk * (64 << 10), 64 << 10, stripeStart + Math.floor(chunk / 2) * (64 << 10)]);
    }
    for (const [lvAt, length, pvAt] of stripedPieces) copyRange(stripedFs, lvAt, length, image, pvAt);
    // fat: made in place through a loop device at the LV's offset, filled with mtools.
    const fatDev = scratch.loop(image, { offsetBytes: pe(10), sizeBytes: 24 * MiB });
    run('mkfs.fat', ['-F', '16', fatDev]);
    run('mcopy', ['-i', fatDev, '/etc/services', '::/services']);

    const source = await FileSource.open(image);
    try {
      const map = await mapDisk(source);
      expect(map.layout.warnings).toEqual([]);
      expect(map.layout.volumes[0]!.filesystem).toBe('LVM2_member');
      // inspect lists each logical volume with what it holds.
      const lvs = [...(map.layout.volumes[0]!.logicalVolumes ?? [])].sort((a, b) => a.name.localeCompare(b.name));
      expect(lvs.map((l) => [l.name, l.filesystem, l.sizeBytes])).toEqual([
        [`${vg}/data`, 'ext4', 48 * MiB],
        [`${vg}/fat`, 'vfat', 24 * MiB],
        [`${vg}/raw`, 'unknown', 8 * MiB],
        [`${vg}/striped`, 'ext4', 16 * MiB],
      ]);
      expect(lvs[0]!.usedBytes).toBe(totalBytes(dumpe2fsReport(dataFs).usedExtents));
      expect(lvs[2]!.usedBytes).toBe(8 * MiB);
      const valid = map.validExtents;
      const inMap = (e: Extent): number => totalBytes(intersectExtents(valid, [e]));
      // Label and metadata area, the raw LV whole, no free extent (PEs 20–23, 28 to the end).
      expect(inMap({ startBytes: 0, lengthBytes: pe0 })).toBe(pe0);
      expect(inMap({ startBytes: pe(18), lengthBytes: 2 * EXTENT })).toBe(2 * EXTENT);
      expect(inMap({ startBytes: pe(20), lengthBytes: 4 * EXTENT })).toBe(0);
      const peCount = pvField(devs[0]!, 'pv_pe_count');
      expect(inMap({ startBytes: pe(28), lengthBytes: (peCount - 28) * EXTENT })).toBe(0);
      // Each ext4 LV: exactly what dumpe2fs calls used, carried through its segments or stripes.
      for (const [fs, pieces] of [
        [dataFs, dataPieces],
        [stripedFs, stripedPieces],
      ] as const) {
        const expected = throughPieces(dumpe2fsReport(fs).usedExtents, pieces);
        const area = normalizeExtents(pieces.map(([, length, pvAt]) => ({ startBytes: pvAt, lengthBytes: length })));
        expect(intersectExtents(valid, area)).toEqual(expected);
        expect(totalBytes(expected)).toBeLessThan(totalBytes(area));
      }
      // The FAT LV maps as the FAT reader maps it alone.
      const fatAlone = await readFatUsedExtents(source, pe(10), 24 * MiB);
      expect(intersectExtents(valid, [{ startBytes: pe(10), lengthBytes: 24 * MiB }])).toEqual(fatAlone.extents);
      expect(map.layout.volumes[0]!.usedBytes).toBeLessThan(80 * MiB);
    } finally {
      await source.close();
    }
  });

  it('keeps a striped LV that spans another physical volume whole on this one, with a warning', async () => {
    const a = scratch.image('pv-a.img', 64 * MiB);
    const b = scratch.image('pv-b.img', 64 * MiB);
    const { vg, devs } = newVg([a, b]);
    lvm('lvcreate', ['-an', '--zero', 'n', '-y', '-i', '2', '-I', '64k', '-L', '16m', '-n', 'wide', vg]);
    const pe0 = peStartBytes(devs[0]!);
    const source = await FileSource.open(a);
    try {
      const map = await mapDisk(source);
      expect(map.layout.warnings.join(' ')).toMatch(/Logical volume wide .* spans other physical volumes/);
      expect(totalBytes(intersectExtents(map.validExtents, [{ startBytes: pe0, lengthBytes: 2 * EXTENT }]))).toBe(2 * EXTENT);
      expect(map.layout.volumes[0]!.usedBytes).toBe(pe0 + 2 * EXTENT + (64 * MiB - pe0 - Math.floor((64 * MiB - pe0) / EXTENT) * EXTENT));
    } finally {
      await source.close();
    }
  });

  it('keeps a PV whose metadata text fails its checksum whole, with a warning', async () => {
    const image = scratch.image('pv-bad.img', 64 * MiB);
    const { vg } = newVg([image]);
    lvm('lvcreate', ['-an', '--zero', 'n', '-y', '-L', '8m', '-n', 'x', vg]);
    const mda = peekFile(image, 4096, 512);
    const textAt = 4096 + Number(mda.readBigUInt64LE(40));
    patchFile(image, textAt + 2, Buffer.from('Z'));
    const source = await FileSource.open(image);
    try {
      const map = await mapDisk(source);
      expect(map.layout.volumes[0]!.usedBytes).toBe(64 * MiB);
      expect(map.layout.warnings.join(' ')).toMatch(/no usable metadata \(the metadata text fails its checksum\)/);
    } finally {
      await source.close();
    }
  });
});

describe('parseLvmText', () => {
  it('reads sections, lists, strings with escapes and comments; rejects unbalanced text', () => {
    const root = parseLvmText('# c\nvg {\nid = "a\\"b"\nseqno = 7\nextent_size = 8192 # 4 MiB\nphysical_volumes {\npv0 {\nid = "x"\npe_start = 2048\npe_count = 10\n}\n}\nlogical_volumes {\nthin {\nsegment1 {\nstart_extent = 0\nextent_count = 2\ntype = "thin"\nthin_pool = "pool"\n}\n}\n}\n}\n');
    expect(root).not.toBeNull();
    const vg = readVolumeGroup(root!)!;
    expect(vg.name).toBe('vg');
    expect(vg.seqno).toBe(7);
    expect(vg.extentBytes).toBe(4 * MiB);
    expect(vg.pvs).toEqual([{ name: 'pv0', id: 'x', peStartBytes: MiB, peCount: 10 }]);
    expect(vg.lvs[0]!.segments[0]!.references).toEqual(['thin', 'pool']);
    expect(parseLvmText('vg {\nid = "x"\n')).toBeNull();
    expect(parseLvmText('vg { a = [1, 2 }')).toBeNull();
  });
});

/** An in-memory PV: label in sector 1, one metadata area at 4 KiB holding text, extents from 1 MiB. */
function craftPv(text: string, sizeBytes: number): Buffer {
  const pv = Buffer.alloc(sizeBytes);
  const label = pv.subarray(512, 1024);
  label.write('LABELONE', 0, 'latin1');
  label.writeBigUInt64LE(1n, 8);
  label.writeUInt32LE(32, 20);
  label.write('LVM2 001', 24, 'latin1');
  label.write('abcdefghijklmnopqrstuvwxyz012345', 32, 'latin1');
  label.writeBigUInt64LE(BigInt(sizeBytes), 64);
  label.writeBigUInt64LE(BigInt(MiB), 72); // data area at 1 MiB, then the list's terminator
  label.writeBigUInt64LE(4096n, 104); // metadata area at 4 KiB, 1 MiB − 4 KiB long
  label.writeBigUInt64LE(BigInt(MiB - 4096), 112);
  label.writeUInt32LE(lvmCrc(label.subarray(20)), 16);
  const mda = pv.subarray(4096, 4608);
  mda.write(' LVM2 x[5A%r0N*>', 4, 'latin1');
  mda.writeUInt32LE(1, 20);
  mda.writeBigUInt64LE(4096n, 24);
  mda.writeBigUInt64LE(BigInt(MiB - 4096), 32);
  const body = Buffer.from(`${text}\0`, 'utf8');
  mda.writeBigUInt64LE(512n, 40);
  mda.writeBigUInt64LE(BigInt(body.length), 48);
  mda.writeUInt32LE(lvmCrc(body), 56);
  mda.writeUInt32LE(lvmCrc(mda.subarray(4)), 0);
  body.copy(pv, 4096 + 512);
  return pv;
}

function memorySource(data: Buffer): BlockSource {
  return {
    path: 'memory',
    kind: 'file',
    sizeBytes: data.length,
    logicalSectorSize: 512,
    physicalSectorSize: 512,
    read: async (o, l) => data.subarray(o, Math.min(data.length, o + l)),
    readInto: async (t, to, l, o) => {
      const d = data.subarray(o, Math.min(data.length, o + l));
      t.set(d, to);
      return d.length;
    },
    allocatedExtents: async () => [{ startBytes: 0, lengthBytes: data.length }],
    adviseSequential: () => {},
    close: async () => {},
  };
}

const lvText = (name: string, type: string, body: string, visible = true): string =>
  `${name} {\nid = "x"\nstatus = ["READ", "WRITE"${visible ? ', "VISIBLE"' : ''}]\nsegment_count = 1\nsegment1 {\nstart_extent = 0\nextent_count = 2\ntype = "${type}"\n${body}}\n}\n`;
const linear = (name: string, pe: number): string => lvText(name, 'striped', `stripe_count = 1\nstripes = [\n"pv0", ${pe}\n]\n`, false);
const vgText = (lvs: string): string =>
  `vg {\nid = "v"\nseqno = 3\nextent_size = 8192\nphysical_volumes {\npv0 {\nid = "abcdef-ghij-klmn-opqr-stuv-wxyz-012345"\npe_start = 2048\npe_count = 15\n}\n}\nlogical_volumes {\n${lvs}}\n}\n`;

describe('readLvmUsedExtents on crafted metadata (RAID and unknown segment types cannot be created without device-mapper)', () => {
  const mapper = async () => {
    throw new Error('no LV here may be read through its filesystem');
  };

  it('keeps the images and metadata of a raid1 LV whole, without a warning, and skips free extents', async () => {
    const raids = 'device_count = 2\nraids = [\n"m_rmeta_0", "m_rimage_0",\n"m_rmeta_1", "m_rimage_1"\n]\n';
    const text = vgText(lvText('m', 'raid1', raids) + linear('m_rmeta_0', 0) + linear('m_rimage_0', 2) + linear('m_rmeta_1', 6) + linear('m_rimage_1', 8));
    const map = await readLvmUsedExtents(memorySource(craftPv(text, 64 * MiB)), 0, 64 * MiB, mapper);
    expect(map.warnings).toEqual([]);
    // [0, 1 MiB) and PEs 0–3 and 6–9 (4 MiB each); PEs 4–5 and 10–14 free; the tail past PE 15 kept.
    expect(map.extents).toEqual([
      { startBytes: 0, lengthBytes: MiB + 4 * EXTENT },
      { startBytes: MiB + 6 * EXTENT, lengthBytes: 4 * EXTENT },
      { startBytes: MiB + 15 * EXTENT, lengthBytes: 64 * MiB - MiB - 15 * EXTENT },
    ]);
  });

  it('keeps the whole PV when a segment of an unknown type names it directly', async () => {
    const text = vgText(lvText('odd', 'mystery', 'areas = [\n"pv0", 3\n]\n'));
    const map = await readLvmUsedExtents(memorySource(craftPv(text, 64 * MiB)), 0, 64 * MiB, mapper);
    expect(map.usedBytes).toBe(64 * MiB);
    expect(map.warnings).toEqual(['Logical volume odd at offset 0 has a mystery segment that Strata does not read; the whole physical volume is kept.']);
  });

  it('refuses a PV whose extents run past its volume as InvalidInput', async () => {
    const text = vgText(linear('a', 0));
    await expect(readLvmUsedExtents(memorySource(craftPv(text, 32 * MiB)), 0, 32 * MiB, mapper)).rejects.toMatchObject({ code: 'InvalidInput' });
  });
});
