// Filesystem names, labels and UUIDs against blkid on images made by the real mkfs tools; formats
// whose tools are not installed are checked with hand-built headers.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileSource } from '../source/file-source.js';
import { Scratch, patchFile, requireRoot, run } from '../../test-support/disk.js';
import { detectFilesystem, type FilesystemInfo } from './detect-filesystem.js';

const MiB = 1 << 20;

let scratch: Scratch;
beforeAll(() => {
  requireRoot();
  scratch = new Scratch('strata-fs-');
});
afterAll(() => scratch.cleanup());

async function detect(image: string, startBytes = 0, sizeBytes?: number): Promise<FilesystemInfo> {
  const source = await FileSource.open(image);
  try {
    return await detectFilesystem(source, startBytes, sizeBytes ?? source.sizeBytes - startBytes);
  } finally {
    await source.close();
  }
}

/** TYPE, LABEL and UUID as `blkid -p` reports them (the reference for names and formatting). */
function blkid(image: string, offsetBytes = 0): { filesystem: string; label: string | null; uuid: string | null } {
  const args = ['-p', '-o', 'export', ...(offsetBytes ? ['-O', String(offsetBytes)] : []), image];
  const fields = new Map(
    run('blkid', args)
      .trim()
      .split('\n')
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)] as const),
  );
  return { filesystem: fields.get('TYPE') ?? 'unknown', label: fields.get('LABEL') ?? null, uuid: fields.get('UUID') ?? null };
}

async function expectLikeBlkid(image: string, offsetBytes = 0): Promise<FilesystemInfo> {
  const info = await detect(image, offsetBytes);
  expect({ filesystem: info.filesystem, label: info.label, uuid: info.uuid }).toEqual(blkid(image, offsetBytes));
  expect(info.otherSignatures).toEqual([]);
  return info;
}

describe('detectFilesystem', () => {
  it.each([
    ['ext2', ['-t', 'ext2', '-L', 'plain']],
    ['ext3', ['-t', 'ext3', '-L', 'journaled']],
    ['ext4', ['-t', 'ext4', '-L', 'modern']],
    ['ext4', ['-t', 'ext4', '-O', '^has_journal']],
    ['ext4', ['-t', 'ext3', '-O', 'extent']],
    ['ext2', ['-t', 'ext2', '-O', 'meta_bg,^resize_inode']],
  ])('names %s as blkid does (mke2fs %j)', async (kind, args) => {
    const image = scratch.image(`ext-${args.join('')}.img`, 16 * MiB);
    run('mke2fs', ['-F', '-q', ...args, image]);
    const info = await expectLikeBlkid(image);
    expect(info.filesystem).toBe(kind);
  });

  it('finds an ext4 at an offset inside a disk image', async () => {
    const image = scratch.image('ext-offset.img', 20 * MiB);
    run('mke2fs', ['-F', '-q', '-t', 'ext4', '-L', 'inside', '-E', `offset=${MiB}`, image, '16M']);
    expect((await expectLikeBlkid(image, MiB)).label).toBe('inside');
  });

  it('reads xfs label and UUID', async () => {
    const image = scratch.image('xfs.img', 32 * MiB);
    // The test-only variables let mkfs.xfs make a filesystem below its 300 MB production minimum.
    const r = run('env', ['TEST_DIR=1', 'TEST_DEV=1', 'QA_CHECK_FS=1', 'mkfs.xfs', '-q', '-L', 'xfslabel', image]);
    expect(r).toBe('');
    expect((await expectLikeBlkid(image)).filesystem).toBe('xfs');
  });

  it('reads btrfs label and UUID', async () => {
    const image = scratch.image('btrfs.img', 128 * MiB);
    run('mkfs.btrfs', ['-q', '-f', '-L', 'btrfslabel', image]);
    expect((await expectLikeBlkid(image)).filesystem).toBe('btrfs');
  });

  it('reads swap label and UUID', async () => {
    const image = scratch.image('swap.img', 8 * MiB);
    run('mkswap', ['-L', 'swaplabel', '-U', '0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0', image]);
    const info = await expectLikeBlkid(image);
    expect(info).toMatchObject({ filesystem: 'swap', label: 'swaplabel', uuid: '0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0' });
  });

  it('recognises FAT16 and FAT32 boot sectors, with their serial as the UUID', async () => {
    const fat16 = scratch.image('fat16.img', MiB);
    patchFile(fat16, 0, fatBootSector('FAT16   ', 0x36, 0x27, 0x2b, 0x1234abcd, 'MYDISK     '));
    expect(await detect(fat16)).toEqual({ filesystem: 'vfat', label: 'MYDISK', uuid: '1234-ABCD', otherSignatures: [] });

    const fat32 = scratch.image('fat32.img', MiB);
    patchFile(fat32, 0, fatBootSector('FAT32   ', 0x52, 0x43, 0x47, 0xdeadbeef, 'NO NAME    '));
    expect(await detect(fat32)).toEqual({ filesystem: 'vfat', label: null, uuid: 'DEAD-BEEF', otherSignatures: [] });
  });

  it('recognises NTFS and exFAT boot sectors', async () => {
    const ntfs = scratch.image('ntfs.img', MiB);
    const b = Buffer.alloc(512);
    b.write('NTFS    ', 3, 'ascii');
    b.writeUInt16LE(512, 0x0b);
    b.writeBigUInt64LE(0x0123456789abcdefn, 0x48);
    patchFile(ntfs, 0, b);
    expect(await detect(ntfs)).toEqual({ filesystem: 'ntfs', label: null, uuid: '0123456789ABCDEF', otherSignatures: [] });

    const exfat = scratch.image('exfat.img', MiB);
    const e = Buffer.alloc(512);
    e.write('EXFAT   ', 3, 'ascii');
    e.writeUInt32LE(0x00c0ffee, 0x64);
    patchFile(exfat, 0, e);
    expect(await detect(exfat)).toEqual({ filesystem: 'exfat', label: null, uuid: '00C0-FFEE', otherSignatures: [] });
  });

  it('recognises LUKS1, LUKS2 and LVM2 headers', async () => {
    const luks2 = scratch.image('luks2.img', MiB);
    const h = Buffer.alloc(512);
    Buffer.from([0x4c, 0x55, 0x4b, 0x53, 0xba, 0xbe]).copy(h, 0);
    h.writeUInt16BE(2, 6);
    h.write('cryptlabel', 24, 'ascii');
    h.write('6e2f0a5c-1d4b-4e8a-9f3c-2b7d5e1a0c94', 168, 'ascii');
    patchFile(luks2, 0, h);
    expect(await detect(luks2)).toEqual({ filesystem: 'crypto_LUKS', label: 'cryptlabel', uuid: '6e2f0a5c-1d4b-4e8a-9f3c-2b7d5e1a0c94', otherSignatures: [] });

    const luks1 = scratch.image('luks1.img', MiB);
    h.writeUInt16BE(1, 6);
    patchFile(luks1, 0, h);
    expect((await detect(luks1)).label).toBeNull();

    const lvm = scratch.image('lvm.img', MiB);
    const l = Buffer.alloc(1024);
    l.write('LABELONE', 512, 'ascii');
    l.writeUInt32LE(32, 512 + 20);
    l.write('LVM2 001', 512 + 24, 'ascii');
    l.write('abcdefGHIJKLmnopQRSTuvwxYZ012345', 512 + 32, 'ascii');
    patchFile(lvm, 0, l);
    expect(await detect(lvm)).toEqual({ filesystem: 'LVM2_member', label: null, uuid: 'abcdef-GHIJ-KLmn-opQR-STuv-wxYZ-012345', otherSignatures: [] });
  });

  it('says unknown for zeros and for a volume too small to hold any superblock', async () => {
    const zeros = scratch.image('zeros.img', 4 * MiB);
    expect(await detect(zeros)).toEqual({ filesystem: 'unknown', label: null, uuid: null, otherSignatures: [] });
    expect(await detect(zeros, 0, 100)).toEqual({ filesystem: 'unknown', label: null, uuid: null, otherSignatures: [] });
  });

  it('reports a second signature left by an earlier filesystem', async () => {
    const image = scratch.image('two-sigs.img', 16 * MiB);
    run('mke2fs', ['-F', '-q', '-t', 'ext4', '-b', '1024', image]);
    // An old btrfs superblock at 64 KiB that mke2fs did not overwrite.
    const sb = Buffer.alloc(0x40 + 8);
    sb.write('_BHRfS_M', 0x40, 'ascii');
    patchFile(image, 0x10000, sb);
    const info = await detect(image);
    expect(info.filesystem).toBe('btrfs');
    expect(info.otherSignatures).toEqual(['ext4']);
  });
});

function fatBootSector(type: string, typeOffset: number, serialOffset: number, labelOffset: number, serial: number, label: string): Buffer {
  const b = Buffer.alloc(512);
  b.write('mkfs.fat', 3, 'ascii');
  b.writeUInt16LE(512, 0x0b);
  b[0x0d] = 4;
  b.writeUInt16LE(32, 0x0e);
  b[0x10] = 2;
  b[0x15] = 0xf8;
  b.writeUInt32LE(serial, serialOffset);
  b.write(label, labelOffset, 'ascii');
  b.write(type, typeOffset, 'ascii');
  b.writeUInt16LE(0xaa55, 510);
  return b;
}
