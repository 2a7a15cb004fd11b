// Installs missing Debian tools by package name (apt-get), once, quietly. Tests and the bench need
// real mkfs tools, partition editors and peers; a fresh machine may lack them.
import { spawnSync } from 'node:child_process';

/** command -> Debian package */
export const TEST_TOOLS = {
  'mkfs.ext4': 'e2fsprogs',
  dumpe2fs: 'e2fsprogs',
  e2fsck: 'e2fsprogs',
  losetup: 'mount',
  mount: 'mount',
  partx: 'util-linux',
  sfdisk: 'fdisk',
  sgdisk: 'gdisk',
  zstd: 'zstd',
  resize2fs: 'e2fsprogs',
  'mkfs.xfs': 'xfsprogs',
  xfs_db: 'xfsprogs',
  xfs_io: 'xfsprogs',
  xfs_repair: 'xfsprogs',
  'mkfs.fat': 'dosfstools',
  'fsck.fat': 'dosfstools',
  mcopy: 'mtools',
  mdir: 'mtools',
  mshowfat: 'mtools',
  'mkfs.exfat': 'exfatprogs',
  'fsck.exfat': 'exfatprogs',
  'dump.exfat': 'exfatprogs',
  'mount.exfat-fuse': 'exfat-fuse',
  debugfs: 'e2fsprogs',
  'mkfs.btrfs': 'btrfs-progs',
  mkswap: 'util-linux',
  blkid: 'util-linux',
  btrfs: 'btrfs-progs',
  mkntfs: 'ntfs-3g',
  'ntfs-3g': 'ntfs-3g',
  ntfscluster: 'ntfs-3g',
  ntfsinfo: 'ntfs-3g',
  ntfscp: 'ntfs-3g',
  ntfsfix: 'ntfs-3g',
  pvcreate: 'lvm2',
  vgcreate: 'lvm2',
  lvcreate: 'lvm2',
  vgcfgrestore: 'lvm2',
  cryptsetup: 'cryptsetup-bin',
  'partclone.btrfs': 'partclone',
  // the live tracker (drivers/tracker)
  bpftrace: 'bpftrace',
  taskset: 'util-linux',
  blkdiscard: 'util-linux',
  blockdev: 'util-linux',
  // load that makes the kernel skip completion programs (drivers/tracker/skipped-runs.test.ts)
  fio: 'fio',
  // the browser suite (e2e/, Playwright drives Debian's Chromium)
  chromium: 'chromium',
};

export const BENCH_TOOLS = {
  ...TEST_TOOLS,
  'partclone.ext4': 'partclone',
  restic: 'restic',
};

function have(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

export function ensureTools(tools) {
  const missing = [...new Set(Object.entries(tools).filter(([cmd]) => !have(cmd)).map(([, pkg]) => pkg))];
  if (missing.length === 0) return;
  console.log(`installing Debian packages: ${missing.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
  const r = spawnSync('apt-get', ['install', '-y', '-qq', ...missing], { stdio: 'inherit', env });
  if (r.status !== 0) {
    console.error(`could not install ${missing.join(' ')} with apt-get (exit ${r.status}); the suites that need them will fail.`);
  }
}
