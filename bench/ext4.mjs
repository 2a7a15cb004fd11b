// What an ext4 image holds, read from its superblock: the used bytes are what a filesystem-aware
// imager (partclone, Strata) must read, so they are the denominator of "bytes read".
import { run } from './shell.mjs';

export function ext4Usage(imagePath) {
  const { stdout } = run('dumpe2fs', ['-h', imagePath]);
  const field = (name) => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(stdout)?.[1]);
  const blockSizeBytes = field('Block size');
  const blockCount = field('Block count');
  const freeBlocks = field('Free blocks');
  return {
    blockSizeBytes,
    totalBytes: blockCount * blockSizeBytes,
    usedBytes: (blockCount - freeBlocks) * blockSizeBytes,
    inodesUsed: field('Inode count') - field('Free inodes'),
  };
}

/** e2fsck -fn: forced, read-only check; exit 0 means clean. */
export function ext4Check(imagePath) {
  const r = run('e2fsck', ['-fn', imagePath], { allowFail: true });
  return { clean: r.status === 0, detail: r.status === 0 ? 'clean' : `e2fsck exit ${r.status}: ${r.stdout.trim().split('\n').slice(-2).join(' | ')}` };
}
