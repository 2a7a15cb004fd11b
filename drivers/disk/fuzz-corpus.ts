// The images the disk-anatomy fuzz runs mutate: one real, small image per partition table and
// filesystem, made with the real tools (root, loop devices, mkfs), and the byte ranges where flips reach a parser.
import { spawnSync } from 'node:child_process';
import { closeSync, ftruncateSync, mkdirSync, openSync, readSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseNtfsBootSector } from './ntfs-used-extents.js';

const MiB = 1 << 20;

/** Which parser reads an image directly, besides mapDisk which reads them all. */
export type FuzzReader = 'partition-table' | 'ext' | 'xfs' | 'fat' | 'exfat' | 'ntfs' | 'btrfs' | 'swap' | 'lvm' | 'luks';

/** A checksum the run recomputes after flipping bytes, so that the flips reach the parser behind it. */
export type FuzzFixup = 'exfat-boot' | 'btrfs-csum' | 'lvm-crc' | 'gpt-crc';

export interface FuzzImage {
  readonly name: string;
  readonly file: string;
  readonly reader: FuzzReader;
  /** [offset, length] ranges where flips reach the parsers. */
  readonly hot: Array<[number, number]>;
  readonly fixups: FuzzFixup[];
}

function sh(cmd: string, args: string[], input?: string): string {
  const r = spawnSync(cmd, args, { input, encoding: 'utf8', maxBuffer: 64 << 20, env: { ...process.env, LVM_SUPPRESS_FD_WARNINGS: '1' } });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr || r.stdout}`);
  return r.stdout;
}

function sparse(file: string, sizeBytes: number): string {
  const fd = openSync(file, 'w');
  ftruncateSync(fd, sizeBytes);
  closeSync(fd);
  return file;
}

function peek(file: string, offset: number, length: number): Buffer {
  const fd = openSync(file, 'r');
  try {
    const b = Buffer.alloc(length);
    readSync(fd, b, 0, length, offset);
    return b;
  } finally {
    closeSync(fd);
  }
}

/** A small tree of files for the mkfs tools that populate from a directory. */
function fileTree(dir: string): string {
  mkdirSync(path.join(dir, 'sub', 'deeper'), { recursive: true });
  for (let i = 0; i < 40; i++) writeFileSync(path.join(dir, i % 2 ? 'sub' : 'sub/deeper', `f${i}.txt`), `file ${i} `.repeat(50 + i * 40));
  writeFileSync(path.join(dir, 'big.bin'), Buffer.alloc(3 * MiB, 0x5a));
  return dir;
}

function xfsField(image: string, commands: string[], field: string): number {
  const out = sh('xfs_db', ['-r', ...commands.flatMap((c) => ['-c', c]), '-c', `print ${field}`, image]);
  return Number(new RegExp(`^${field} = (\\d+)`, 'm').exec(out)![1]);
}

/** Physical offsets of btrfs chunk stripes, from dump-tree, to find the tree roots on disk. */
function btrfsPhysical(image: string, logical: number): number {
  let current: { logical: number; length: number } | null = null;
  for (const line of sh('btrfs', ['inspect-internal', 'dump-tree', '-t', 'chunk', image]).split('\n')) {
    const key = /CHUNK_ITEM (\d+)\)/.exec(line);
    if (key) current = { logical: Number(key[1]), length: 0 };
    const length = /^\s+length (\d+) owner/.exec(line);
    if (length && current) current.length = Number(length[1]);
    const stripe = /^\s+stripe 0 devid \d+ offset (\d+)/.exec(line);
    if (stripe && current && logical >= current.logical && logical < current.logical + current.length) return Number(stripe[1]) + logical - current.logical;
  }
  throw new Error(`no chunk holds logical ${logical}`);
}

/**
 * Builds the corpus in dir (which must exist and be empty) and returns it. `cleanup` receives undo
 * actions (loop devices, volume groups) that the caller runs when done.
 */
export function buildFuzzCorpus(dir: string, cleanup: Array<() => void>): FuzzImage[] {
  const out: FuzzImage[] = [];
  const file = (name: string, sizeBytes: number): string => sparse(path.join(dir, name), sizeBytes);
  const tree = fileTree(path.join(dir, 'tree'));

  // MBR with an extended chain, ext4 and ext2; the same with 4096-byte sectors.
  const mbr = file('mbr.img', 16 * MiB);
  sh('sfdisk', ['-q', mbr], 'label: dos\nstart=2048, size=8192, type=83\nstart=10240, type=5\nstart=12288, size=8192, type=83\nstart=22528, size=4096, type=83\n');
  sh('mke2fs', ['-F', '-q', '-t', 'ext4', '-b', '1024', '-E', `offset=${MiB}`, mbr, '4M']);
  sh('mke2fs', ['-F', '-q', '-t', 'ext2', '-b', '1024', '-E', `offset=${6 * MiB}`, mbr, '4M']);
  out.push({ name: 'mbr', file: mbr, reader: 'partition-table', hot: [[0, 512], [5 * MiB, 512], [MiB, 8192], [6 * MiB, 8192], [11 * MiB - 512, 512]], fixups: [] });
  const mbr4k = file('mbr4k.img', 32 * MiB);
  sh('sfdisk', ['-q', mbr4k], 'label: dos\nsector-size: 4096\nstart=256, size=2048, type=83\nstart=2304, type=5\nstart=2560, size=1024, type=7\n');
  out.push({ name: 'mbr-4k', file: mbr4k, reader: 'partition-table', hot: [[0, 512], [2304 * 4096, 512]], fixups: [] });

  // GPT with 256 entries (meta_bg ext4 and bigalloc ext4 in it), CRCs recomputed after flips half the time.
  const gpt = file('gpt.img', 16 * MiB);
  sh('sgdisk', ['-a', '2048', '-S', '256', '-n', '1:2048:+6M', '-n', '2:0:0', gpt]);
  sh('mke2fs', ['-F', '-q', '-t', 'ext4', '-b', '1024', '-O', 'meta_bg,^resize_inode', '-g', '1024', '-E', `offset=${MiB}`, gpt, '6M']);
  sh('mke2fs', ['-F', '-q', '-t', 'ext4', '-b', '4096', '-O', 'bigalloc', '-C', '16384', '-E', `offset=${7 * MiB}`, gpt, '8M']);
  out.push({ name: 'gpt', file: gpt, reader: 'partition-table', hot: [[0, 512], [512, 512], [1024, 32768], [16 * MiB - 512, 512], [MiB, 8192], [7 * MiB, 16384]], fixups: ['gpt-crc'] });

  const ext4 = file('ext4.img', 32 * MiB);
  sh('mke2fs', ['-F', '-q', '-t', 'ext4', '-b', '1024', '-d', tree, ext4]);
  out.push({ name: 'ext4', file: ext4, reader: 'ext', hot: [[1024, 1024], [2048, 2048], [MiB / 4, 64 * 1024]], fixups: [] });

  for (const [name, args] of [
    ['xfs', ['-b', 'size=1024', '-d', 'agcount=2']],
    ['xfs-v4', ['-m', 'crc=0']],
  ] as const) {
    const image = file(`${name}.img`, 300 * MiB);
    sh('mkfs.xfs', ['-q', '-f', ...args, image]);
    const bs = xfsField(image, ['sb 0'], 'blocksize');
    const agBlocks = xfsField(image, ['sb 0'], 'agblocks');
    const hot: Array<[number, number]> = [[0, 256]];
    for (let ag = 0; ag < 2; ag++) {
      hot.push([ag * agBlocks * bs + 512, 64]);
      hot.push([(ag * agBlocks + xfsField(image, [`agf ${ag}`], 'bnoroot')) * bs, 128]);
    }
    out.push({ name, file: image, reader: 'xfs', hot, fixups: [] });
  }

  for (const [name, size, args] of [
    ['fat12', 2 * MiB, ['-F', '12']],
    ['fat16', 16 * MiB, ['-F', '16', '-s', '1']],
    ['fat32', 40 * MiB, ['-F', '32', '-s', '1']],
  ] as const) {
    const image = file(`${name}.img`, size);
    sh('mkfs.fat', [...args, image]);
    sh('mcopy', ['-s', '-i', image, path.join(tree, 'sub'), '::/']);
    const b = peek(image, 0, 512);
    const fatStart = b.readUInt16LE(14) * b.readUInt16LE(11);
    const fatBytes = (b.readUInt16LE(22) || b.readUInt32LE(36)) * b.readUInt16LE(11);
    out.push({ name, file: image, reader: 'fat', hot: [[0, 64], [fatStart, 256], [fatStart + fatBytes, 64]], fixups: [] });
  }

  const exfat = file('exfat.img', 16 * MiB);
  sh('mkfs.exfat', ['-c', '512', exfat]);
  const eb = peek(exfat, 0, 512);
  const heap = eb.readUInt32LE(0x58) * 512;
  const root = eb.readUInt32LE(0x60);
  out.push({ name: 'exfat', file: exfat, reader: 'exfat', hot: [[0x40, 0x40], [eb.readUInt32LE(0x50) * 512, 64], [heap + (root - 2) * 512, 128], [heap, 64]], fixups: ['exfat-boot'] });

  const ntfs = file('ntfs.img', 24 * MiB);
  sh('mkntfs', ['-F', '-Q', '-q', '-c', '1024', ntfs]);
  sh('ntfscp', ['-f', ntfs, path.join(tree, 'big.bin'), '/big.bin']);
  const ng = parseNtfsBootSector(peek(ntfs, 0, 512))!;
  const record6 = ng.mftLcn * ng.clusterBytes + 6 * ng.recordBytes;
  out.push({ name: 'ntfs', file: ntfs, reader: 'ntfs', hot: [[0, 96], [record6, ng.recordBytes], [record6 + 0x100, 0x100]], fixups: [] });

  const btrfs = file('btrfs.img', 128 * MiB);
  sh('mkfs.btrfs', ['-q', '-f', '-n', '4096', '-m', 'single', '--rootdir', tree, btrfs]);
  const sbOut = sh('btrfs', ['inspect-internal', 'dump-super', btrfs]);
  const field = (name: string): number => Number(new RegExp(`^${name}\\s+(\\d+)`, 'm').exec(sbOut)![1]);
  const hotBtrfs: Array<[number, number]> = [[0x10000, 0x200], [0x10000 + 0x32b, 0x100]];
  for (const logical of [field('chunk_root'), field('root')]) hotBtrfs.push([btrfsPhysical(btrfs, logical), 4096]);
  out.push({ name: 'btrfs', file: btrfs, reader: 'btrfs', hot: hotBtrfs, fixups: ['btrfs-csum'] });

  const swap = file('swap.img', 4 * MiB);
  sh('mkswap', [swap]);
  out.push({ name: 'swap', file: swap, reader: 'swap', hot: [[1024, 64], [4086, 10]], fixups: [] });

  // An LVM2 PV with one ext4 LV; the metadata text and its checksums are recomputed after flips.
  const pv = file('lvm.img', 48 * MiB);
  const dev = sh('losetup', ['--find', '--show', pv]).trim();
  cleanup.push(() => sh('losetup', ['-d', dev]));
  const vg = `strfuzz${process.pid}`;
  sh('pvcreate', ['--driverloaded', 'n', '--config', 'backup { backup = 0 archive = 0 }', '-ff', '-y', dev]);
  sh('vgcreate', ['--driverloaded', 'n', '--config', 'backup { backup = 0 archive = 0 }', '-s', '4m', vg, dev]);
  cleanup.unshift(() => sh('vgremove', ['--driverloaded', 'n', '--config', 'backup { backup = 0 archive = 0 }', '-f', vg]));
  sh('lvcreate', ['--driverloaded', 'n', '--config', 'backup { backup = 0 archive = 0 }', '-an', '--zero', 'n', '-y', '-L', '16m', '-n', 'lv', vg]);
  // The PV's first extent, as its label's data area says (no second tool run to parse).
  const peStart = Number(peek(pv, 512 + 72, 8).readBigUInt64LE(0));
  sh('mke2fs', ['-F', '-q', '-t', 'ext4', '-b', '1024', '-E', `offset=${peStart}`, pv, '16M']);
  const mda = peek(pv, 4096, 512);
  const textAt = 4096 + Number(mda.readBigUInt64LE(40));
  const textBytes = Number(mda.readBigUInt64LE(48));
  out.push({ name: 'lvm', file: pv, reader: 'lvm', hot: [[512, 160], [4096, 64], [textAt, textBytes], [peStart + 1024, 1024]], fixups: ['lvm-crc'] });

  for (const type of ['luks1', 'luks2']) {
    const image = file(`${type}.img`, 20 * MiB);
    const key = path.join(dir, 'key');
    writeFileSync(key, 'fuzz');
    sh('cryptsetup', ['luksFormat', '-q', '--type', type, '--key-file', key, '--pbkdf', 'pbkdf2', '--pbkdf-force-iterations', '1000', image]);
    out.push({ name: type, file: image, reader: 'luks', hot: [[0, 256], [4096, 1024]], fixups: [] });
  }
  return out;
}
