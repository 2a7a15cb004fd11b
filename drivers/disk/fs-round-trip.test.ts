// Backup and restore through the real CLI of XFS, FAT12/16/32, exFAT and swap images: inspect reports the
// mapped used bytes, the backup reads little more, and the restore passes its own fsck with the same files.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fileTreeHashes, makeContent, peekFile, populate, requireRoot, run, Scratch } from '../../test-support/disk.js';
import { strata } from '../../test-support/cli.js';
import { cliRoundTrip } from '../../test-support/round-trip.js';

const MiB = 1 << 20;

let scratch: Scratch;
let repo: string;
let env: Record<string, string>;

beforeAll(() => {
  requireRoot();
  scratch = new Scratch('strata-fs-rt-');
  repo = scratch.path('repo');
  env = { STRATA_STATE_DIR: scratch.path('state') };
  const init = strata(['init', '--repo', repo, '--json'], env);
  expect(init.status, init.stderr).toBe(0);
});
afterAll(() => scratch.cleanup());


/** inspect, backup and restore of a bare-filesystem image (test-support/round-trip.ts). */
const roundTrip = (image: string, filesystem: string) => cliRoundTrip(env, repo, image, filesystem);

/** Mounts an exFAT image through exfat-fuse, which wants a block device; unmounted at cleanup (a no-op if already). */
function mountExfat(image: string, readOnly: boolean): string {
  const dev = scratch.loop(image, { readOnly });
  const dir = mkdtempSync(scratch.path('exfat-'));
  run('mount.exfat-fuse', [...(readOnly ? ['-o', 'ro'] : []), dev, dir]);
  scratch.defer(() => execFileSync('umount', [dir], { stdio: 'ignore' }));
  return dir;
}

/** Copies a FAT image's whole tree out with mtools and hashes it. */
function fatTree(image: string, name: string): Map<string, string> {
  const out = scratch.path(`${name}-out`);
  mkdirSync(out);
  run('mcopy', ['-s', '-n', '-i', image, '::/*', out]);
  return fileTreeHashes(out);
}

describe('round trip through the CLI', () => {
  it('XFS: inspect maps it, the backup skips free space, the restore passes xfs_repair -n with the same files', () => {
    const image = scratch.image('xfs.img', 300 * MiB);
    run('mkfs.xfs', ['-q', '-f', '-L', 'rt-xfs', image]);
    const mnt = scratch.mount(image, ['-o', 'loop']);
    populate(mnt, { smallFiles: 150, largeFiles: 3, largeBytes: 6 * MiB, seed: 5 });
    scratch.umount(mnt);

    const { target, usedBytes, bytesRead } = roundTrip(image, 'xfs');
    // 12 MiB of live files and the 64 MiB log: the deleted file and free space are not read.
    expect(usedBytes).toBeLessThan(100 * MiB);
    expect(bytesRead).toBeGreaterThan(12 * MiB);
    run('xfs_repair', ['-n', target]);
    const a = scratch.mount(image, ['-o', 'loop,ro']);
    const b = scratch.mount(target, ['-o', 'loop,ro,nouuid']);
    expect(fileTreeHashes(b)).toEqual(fileTreeHashes(a));
    expect(fileTreeHashes(a).size).toBeGreaterThan(100);
    scratch.umount(a);
    scratch.umount(b);
  });

  for (const v of [
    { kind: 'fat12', sizeBytes: 4 * MiB, mkfs: ['-F', '12'] },
    { kind: 'fat16', sizeBytes: 32 * MiB, mkfs: ['-F', '16'] },
    { kind: 'fat32', sizeBytes: 64 * MiB, mkfs: ['-F', '32', '-s', '1'] },
  ]) {
    it(`${v.kind}: the restore passes fsck.fat -n and holds the same files, as mtools reads them`, () => {
      const image = scratch.image(`${v.kind}.img`, v.sizeBytes);
      run('mkfs.fat', [...v.mkfs, '-n', 'RT', image]);
      const src = scratch.path(`${v.kind}-src`);
      mkdirSync(path.join(src, 'docs'), { recursive: true });
      for (let i = 0; i < 30; i++) writeFileSync(path.join(src, 'docs', `n${i}.txt`), makeContent(500 + i * 300, 'text', i + 1));
      writeFileSync(path.join(src, 'data.bin'), makeContent(v.sizeBytes / 8, 'random', 2));
      writeFileSync(path.join(src, 'gone.bin'), makeContent(v.sizeBytes / 8, 'random', 3));
      run('mcopy', ['-s', '-i', image, path.join(src, 'docs'), path.join(src, 'data.bin'), path.join(src, 'gone.bin'), '::/']);
      run('mdel', ['-i', image, '::/gone.bin']);

      const { target, usedBytes } = roundTrip(image, 'vfat');
      expect(usedBytes).toBeLessThan(v.sizeBytes / 2);
      run('fsck.fat', ['-n', target]);
      const restored = fatTree(target, `${v.kind}-restored`);
      expect(restored).toEqual(fatTree(image, `${v.kind}-original`));
      expect(restored.size).toBe(31);
    });
  }

  it('exFAT: the restore passes fsck.exfat -n and holds the same files, as exfat-fuse reads them', () => {
    const image = scratch.image('exfat.img', 64 * MiB);
    run('mkfs.exfat', ['-L', 'rt-exfat', image]);
    const mnt = mountExfat(image, false);
    populate(mnt, { smallFiles: 120, largeFiles: 3, largeBytes: 4 * MiB, seed: 9 });
    run('umount', [mnt]);

    const { target, usedBytes } = roundTrip(image, 'exfat');
    expect(usedBytes).toBeLessThan(24 * MiB);
    run('fsck.exfat', ['-n', target]);
    const a = mountExfat(image, true);
    const b = mountExfat(target, true);
    expect(fileTreeHashes(b)).toEqual(fileTreeHashes(a));
    expect(fileTreeHashes(a).size).toBeGreaterThan(80);
  });

  it('swap: only the header page is stored, and the restored swap keeps its label and UUID', () => {
    const image = scratch.image('swap.img', 32 * MiB);
    run('mkswap', ['-L', 'rt-swap', image]);
    const { target, usedBytes } = roundTrip(image, 'swap');
    expect(usedBytes).toBe(4096);
    expect(peekFile(target, 0, 4096)).toEqual(peekFile(image, 0, 4096));
    expect(run('blkid', ['-o', 'export', target]).replace(/^DEVNAME=.*\n/m, '')).toBe(run('blkid', ['-o', 'export', image]).replace(/^DEVNAME=.*\n/m, ''));
  });
});
