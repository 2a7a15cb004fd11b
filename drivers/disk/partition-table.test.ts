// Partition tables made by sfdisk and sgdisk, read back and compared with what sfdisk lists; then
// damaged on purpose (GPT headers, EBR chains, truncated images) to check the fallbacks.
import { truncateSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BlockSource } from '../../agent-core/block-source.js';
import { FileSource } from '../source/file-source.js';
import { Scratch, partitionNumber, patchFile, peekFile, requireRoot, run, sfdiskDump } from '../../test-support/disk.js';
import { readPartitionTable, type PartitionTable } from './partition-table.js';

const MiB = 1 << 20;

let scratch: Scratch;
beforeAll(() => {
  requireRoot();
  scratch = new Scratch('strata-pt-');
});
afterAll(() => scratch.cleanup());

async function tableOf(image: string, wrap?: (s: FileSource) => BlockSource): Promise<PartitionTable> {
  const source = await FileSource.open(image);
  try {
    return await readPartitionTable(wrap ? wrap(source) : source);
  } finally {
    await source.close();
  }
}

/** The same image seen through a device that reports another logical sector size. */
function withSectorSize(source: FileSource, logicalSectorSize: number): BlockSource {
  return {
    path: source.path,
    kind: source.kind,
    sizeBytes: source.sizeBytes,
    logicalSectorSize,
    physicalSectorSize: logicalSectorSize,
    read: (o, l) => source.read(o, l),
    readInto: (t, to, l, o) => source.readInto(t, to, l, o),
    allocatedExtents: () => source.allocatedExtents(),
    adviseSequential: () => source.adviseSequential(),
    close: () => source.close(),
  };
}

/** An MBR disk: two primaries, an extended partition holding four logicals. */
function makeMbrImage(name: string): string {
  const image = scratch.image(name, 64 * MiB);
  const script = [
    'label: dos',
    'start=2048, size=16384, type=83',
    'start=18432, size=8192, type=82',
    'start=26624, type=5',
    'size=8192, type=83',
    'size=4096, type=7',
    'size=8192, type=c',
    'size=4096, type=83',
  ].join('\n');
  run('sfdisk', ['-q', image], script + '\n');
  return image;
}

function makeGptImage(name: string, extraArgs: string[] = []): string {
  const image = scratch.image(name, 64 * MiB);
  run('sgdisk', [
    ...extraArgs,
    '-n', '1:2048:+8M', '-t', '1:8300', '-c', '1:root',
    '-n', '2:0:+4M', '-t', '2:8200', '-c', '2:swap',
    '-n', '3:0:+16M', '-t', '3:0700', '-c', '3:data',
    '-n', '4:0:0', '-t', '4:ef00', '-c', '4:EFI System',
    image,
  ]);
  return image;
}

/** What sfdisk lists, in our shape: extended containers left out, types and GUIDs as we print them. */
function expectedFromSfdisk(target: string) {
  const dump = sfdiskDump(target);
  const ss = dump.sectorsize;
  return dump.partitions
    .filter((p) => !(dump.label === 'dos' && ['5', 'f', '85'].includes(p.type)))
    .map((p) => ({
      index: partitionNumber(p.node),
      startBytes: p.start * ss,
      sizeBytes: p.size * ss,
      partitionType: dump.label === 'dos' ? `0x${p.type.padStart(2, '0')}` : p.type.toLowerCase(),
      ...(p.name ? { name: p.name } : {}),
      ...(p.uuid ? { uuid: p.uuid.toLowerCase() } : {}),
    }));
}

/** Byte offset of each EBR in the chain, read straight from the image. */
function ebrOffsets(image: string, extendedStartLba: number): number[] {
  const out: number[] = [];
  let lba = extendedStartLba;
  while (out.length < 64) {
    out.push(lba * 512);
    const link = peekFile(image, lba * 512 + 446 + 16, 16);
    if (link[4] === 0) break;
    lba = extendedStartLba + link.readUInt32LE(8);
  }
  return out;
}

describe('readPartitionTable', () => {
  it('reads an MBR with primaries and a chain of logical partitions, numbered as Linux does', async () => {
    const image = makeMbrImage('mbr.img');
    const t = await tableOf(image);
    expect(t.table).toBe('mbr');
    expect(t.warnings).toEqual([]);
    expect(t.partitions).toEqual(expectedFromSfdisk(image));
    expect(t.partitions.map((p) => p.index)).toEqual([1, 2, 5, 6, 7, 8]);
    expect(t.partitions.map((p) => p.partitionType)).toEqual(['0x83', '0x82', '0x83', '0x07', '0x0c', '0x83']);
  });

  it('reads a GPT with four partitions: type GUIDs, unique GUIDs and names', async () => {
    const image = makeGptImage('gpt.img');
    const t = await tableOf(image);
    expect(t.table).toBe('gpt');
    expect(t.sectorSizeBytes).toBe(512);
    expect(t.warnings).toEqual([]);
    expect(t.partitions).toEqual(expectedFromSfdisk(image));
    expect(t.partitions[0]!.partitionType).toBe('0fc63daf-8483-4772-8e79-3d69d8477de4');
  });

  it('reads a GPT whose entry array holds more than 128 entries', async () => {
    const image = scratch.image('gpt-256.img', 32 * MiB);
    run('sgdisk', ['--resize-table=256', '-n', '1:2048:+1M', '-n', '200:0:+1M', '-n', '256:0:+1M', image]);
    const t = await tableOf(image);
    expect(t.warnings).toEqual([]);
    expect(t.partitions.map((p) => p.index)).toEqual([1, 200, 256]);
    expect(t.partitions).toEqual(expectedFromSfdisk(image));
  });

  it('reads a GPT made on a disk with 4096-byte sectors', async () => {
    const image = scratch.image('gpt-4k.img', 64 * MiB);
    const dev = scratch.loop(image, { sectorSize: 4096 });
    run('sgdisk', ['-n', '1:256:+8M', '-t', '1:8300', '-n', '2:0:+8M', '-n', '3:0:+8M', '-n', '4:0:0', dev]);
    const expected = expectedFromSfdisk(dev);
    expect(sfdiskDump(dev).sectorsize).toBe(4096);
    run('blockdev', ['--flushbufs', dev]);

    // Through a 4096-byte device the table is found directly.
    const native = await tableOf(image, (s) => withSectorSize(s, 4096));
    expect(native.table).toBe('gpt');
    expect(native.sectorSizeBytes).toBe(4096);
    expect(native.warnings).toEqual([]);
    expect(native.partitions).toEqual(expected);

    // An image file reports 512-byte sectors; the GPT is still found, with a warning.
    const fromFile = await tableOf(image);
    expect(fromFile.sectorSizeBytes).toBe(4096);
    expect(fromFile.partitions).toEqual(expected);
    expect(fromFile.warnings).toEqual([expect.stringContaining('found with 4096-byte sectors')]);
  });

  it('reads a hybrid MBR disk by its GPT, whatever the extra MBR entries say', async () => {
    const image = makeGptImage('gpt-hybrid.img');
    run('sgdisk', ['-h', '1:3', image]);
    const mbrTypes = [0, 1, 2, 3].map((slot) => peekFile(image, 446 + slot * 16 + 4, 1)[0]);
    expect(mbrTypes).toContain(0xee);
    expect(mbrTypes.filter((t) => t !== 0 && t !== 0xee).length).toBe(2);
    const t = await tableOf(image);
    expect(t.table).toBe('gpt');
    expect(t.warnings).toEqual([]);
    expect(t.partitions.map((p) => p.index)).toEqual([1, 2, 3, 4]);
    expect(t.partitions).toEqual(expectedFromSfdisk(image));
  });

  it('reads an MBR with a chain of logical partitions made on a disk with 4096-byte sectors', async () => {
    const image = scratch.image('mbr-4k.img', 128 * MiB);
    const dev = scratch.loop(image, { sectorSize: 4096 });
    run('sfdisk', ['-q', dev], 'label: dos\nstart=256, size=4096, type=83\nstart=4352, type=5\nsize=2048, type=83\nsize=2048, type=7\n');
    run('blockdev', ['--flushbufs', dev]);
    const expected = expectedFromSfdisk(dev);
    expect(sfdiskDump(dev).sectorsize).toBe(4096);
    expect(expected.map((p) => p.index)).toEqual([1, 5, 6]);
    const t = await tableOf(image, (src) => withSectorSize(src, 4096));
    expect(t).toMatchObject({ table: 'mbr', sectorSizeBytes: 4096, warnings: [] });
    expect(t.partitions).toEqual(expected);
    expect(t.partitions[0]!.startBytes).toBe(MiB);

    // From the image file (512-byte sectors) an empty 4Kn MBR cannot be told apart: read as 512.
    expect((await tableOf(image)).sectorSizeBytes).toBe(512);
    // Once its partitions hold filesystems, only the 4096-byte reading finds them: that one is taken.
    run('mkfs.ext4', ['-q', '-F', '-E', `offset=${MiB}`, image, '16M']);
    const fromFile = await tableOf(image);
    expect(fromFile).toMatchObject({ table: 'mbr', sectorSizeBytes: 4096 });
    expect(fromFile.partitions).toEqual(expected);
    expect(fromFile.warnings).toEqual([expect.stringContaining('counted as 4096 bytes')]);
  });

  it('falls back to the backup GPT when the primary header is damaged, with a warning', async () => {
    const image = makeGptImage('gpt-bad-header.img');
    const clean = await tableOf(image);
    patchFile(image, 512 + 60, Buffer.from([0x5a])); // inside the disk GUID
    const t = await tableOf(image);
    expect(t.table).toBe('gpt');
    expect(t.partitions).toEqual(clean.partitions);
    expect(t.warnings).toEqual([expect.stringMatching(/^The primary GPT header is damaged \(header CRC32 mismatch\); Strata used the backup GPT at LBA 131071/)]);
  });

  it('falls back to the backup GPT when the primary entry array is damaged', async () => {
    const image = makeGptImage('gpt-bad-array.img');
    const clean = await tableOf(image);
    patchFile(image, 1024 + 56, Buffer.from('X', 'utf16le')); // first entry's name
    const t = await tableOf(image);
    expect(t.partitions).toEqual(clean.partitions);
    expect(t.warnings).toEqual([expect.stringContaining('entry array fails its CRC32')]);
  });

  it('uses the protective MBR when neither GPT copy is whole', async () => {
    const image = makeGptImage('gpt-both-bad.img');
    patchFile(image, 512 + 60, Buffer.from([0x5a]));
    patchFile(image, 64 * MiB - 512 + 60, Buffer.from([0x5a]));
    const t = await tableOf(image);
    expect(t.table).toBe('mbr');
    expect(t.partitions).toEqual([{ index: 1, startBytes: 512, sizeBytes: 64 * MiB - 512, partitionType: '0xee' }]);
    expect(t.warnings).toHaveLength(2);
    expect(t.warnings[1]).toContain('no valid GPT was found');
  });

  it('stops an EBR chain that loops back on itself, with a warning', async () => {
    const image = makeMbrImage('ebr-loop.img');
    const ebrs = ebrOffsets(image, 26624);
    expect(ebrs).toHaveLength(4);
    // The last EBR's link now points at the first EBR again (relative start 0).
    const link = Buffer.alloc(16);
    link[4] = 0x05;
    link.writeUInt32LE(0, 8);
    link.writeUInt32LE(2048, 12);
    patchFile(image, ebrs[3]! + 446 + 16, link);
    const t = await tableOf(image);
    expect(t.partitions.map((p) => p.index)).toEqual([1, 2, 5, 6, 7, 8]);
    expect(t.warnings).toEqual(['The chain of logical partitions in the extended partition 3 loops back to sector 26624; Strata stopped following it there.']);
  });

  it('stops an EBR chain that points past the end of the disk, with a warning', async () => {
    const image = makeMbrImage('ebr-past-end.img');
    const ebrs = ebrOffsets(image, 26624);
    const link = Buffer.alloc(16);
    link[4] = 0x05;
    link.writeUInt32LE(0x00f00000, 8);
    link.writeUInt32LE(2048, 12);
    patchFile(image, ebrs[1]! + 446 + 16, link);
    const t = await tableOf(image);
    expect(t.partitions.map((p) => p.index)).toEqual([1, 2, 5, 6]);
    expect(t.warnings).toEqual([expect.stringContaining('past the end of the disk; Strata stopped following it there.')]);
  });

  it('clamps partitions that run past the end of a truncated image, with warnings', async () => {
    const mbr = makeMbrImage('mbr-short.img');
    truncateSync(mbr, 11 * MiB);
    const t = await tableOf(mbr);
    // Partition 1 fits, partition 2 is cut, the extended partition starts past the end.
    expect(t.partitions).toEqual([
      { index: 1, startBytes: 1 * MiB, sizeBytes: 8 * MiB, partitionType: '0x83' },
      { index: 2, startBytes: 9 * MiB, sizeBytes: 2 * MiB, partitionType: '0x82' },
    ]);
    expect(t.warnings).toEqual([
      `MBR partition 2 ends at byte ${13 * MiB}, past the end of the ${11 * MiB}-byte disk; only the part on the disk is read. The image may be truncated.`,
      'The chain of logical partitions in the extended partition 3 points to sector 26624, past the end of the disk; Strata stopped following it there.',
    ]);

    const gpt = makeGptImage('gpt-short.img');
    truncateSync(gpt, 40 * MiB);
    const g = await tableOf(gpt);
    expect(g.table).toBe('gpt');
    expect(g.partitions.map((p) => p.index)).toEqual([1, 2, 3, 4]);
    expect(g.partitions[3]!.startBytes + g.partitions[3]!.sizeBytes).toBe(40 * MiB);
    expect(g.warnings.some((w) => w.startsWith('GPT partition 4 ends at byte'))).toBe(true);
    expect(g.warnings.some((w) => w.startsWith('The backup GPT header at LBA'))).toBe(true);
  });

  it('uses the MBR, with a warning, when a protective entry has no GPT behind it', async () => {
    const image = scratch.image('pmbr-only.img', 8 * MiB);
    run('sfdisk', ['-q', image], 'label: dos\nstart=1, type=ee\n');
    const t = await tableOf(image);
    expect(t.table).toBe('mbr');
    expect(t.partitions).toEqual([{ index: 1, startBytes: 512, sizeBytes: 8 * MiB - 512, partitionType: '0xee' }]);
    expect(t.warnings).toEqual([expect.stringContaining('no valid GPT was found')]);
  });

  it('finds no table on a bare filesystem or a FAT boot sector', async () => {
    const bare = scratch.image('bare.img', 16 * MiB);
    run('mke2fs', ['-F', '-q', '-t', 'ext4', bare]);
    expect((await tableOf(bare)).table).toBe('none');

    const fat = scratch.image('superfloppy.img', 4 * MiB);
    const boot = Buffer.alloc(512);
    boot.write('mkfs.fat', 3, 'ascii');
    boot.writeUInt16LE(512, 0x0b);
    boot[0x0d] = 4;
    boot.writeUInt16LE(4, 0x0e);
    boot[0x10] = 2;
    boot[0x15] = 0xf8;
    boot.write('FAT16   ', 0x36, 'ascii');
    boot.fill(0x41, 446, 510); // boot code where an MBR keeps its entries
    boot.writeUInt16LE(0xaa55, 510);
    patchFile(fat, 0, boot);
    expect((await tableOf(fat)).table).toBe('none');
  });
});
