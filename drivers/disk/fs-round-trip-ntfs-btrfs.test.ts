// Backup and restore through the real CLI of NTFS (filled through ntfs-3g) and btrfs (filled through
// a kernel mount): inspect maps the used bytes, the backup skips the rest, and the restored image
// passes its own checker (ntfsfix -n, btrfs check) and holds the same files.
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fileTreeHashes, populate, requireRoot, run, Scratch } from '../../test-support/disk.js';
import { strata, summaryOf } from '../../test-support/cli.js';

const MiB = 1 << 20;

let scratch: Scratch;
let repo: string;
let env: Record<string, string>;

beforeAll(() => {
  requireRoot();
  scratch = new Scratch('strata-fs-rt2-');
  repo = scratch.path('repo');
  env = { STRATA_STATE_DIR: scratch.path('state') };
  const init = strata(['init', '--repo', repo, '--json'], env);
  expect(init.status, init.stderr).toBe(0);
});
afterAll(() => scratch.cleanup());

/** inspect, backup and restore of a bare-filesystem image; returns the restored image and the volume's usedBytes. */
function roundTrip(image: string, filesystem: string): { target: string; usedBytes: number } {
  const inspect = strata(['inspect', image, '--json'], env);
  expect(inspect.status, inspect.stderr).toBe(0);
  const layout = inspect.lines[0] as { volumes: Array<{ filesystem: string; usedBytes: number; sizeBytes: number }>; warnings: string[] };
  expect(layout.warnings).toEqual([]);
  expect(layout.volumes).toHaveLength(1);
  const volume = layout.volumes[0]!;
  expect(volume.filesystem).toBe(filesystem);
  expect(volume.usedBytes).toBeLessThan(volume.sizeBytes / 2);

  const backup = strata(['backup', image, '--repo', repo, '--json'], env);
  expect(backup.status, backup.stderr).toBe(0);
  const s = summaryOf(backup);
  expect(s.validBytes as number).toBeGreaterThanOrEqual(volume.usedBytes);
  expect(s.validBytes as number).toBeLessThanOrEqual(volume.usedBytes * 1.05 + 64 * 1024);
  expect(s.bytesRead as number).toBeLessThan(volume.usedBytes + (volume.sizeBytes - volume.usedBytes) / 4);

  const target = `${image}.restored`;
  const restore = strata(['restore', s.snapshot as string, '--repo', repo, '--target', target, '--json'], env);
  expect(restore.status, restore.stderr).toBe(0);
  return { target, usedBytes: volume.usedBytes };
}

/** Hashes every file of an image mounted for the moment (ntfs-3g or a loop mount), then unmounts it. */
function treeOf(image: string, mount: (image: string, dir: string) => void): Map<string, string> {
  const dir = mkdtempSync(scratch.path('mnt-'));
  mount(image, dir);
  try {
    return fileTreeHashes(dir);
  } finally {
    execFileSync('umount', [dir]);
  }
}

describe('round trip through the CLI', () => {
  it('NTFS: the restore passes ntfsfix -n and holds the same files, as ntfs-3g reads them', () => {
    const image = scratch.image('ntfs.img', 96 * MiB);
    run('mkntfs', ['-F', '-Q', '-q', '-L', 'rt-ntfs', image]);
    const mnt = mkdtempSync(scratch.path('fill-'));
    run('ntfs-3g', [image, mnt]);
    try {
      populate(mnt, { smallFiles: 150, largeFiles: 3, largeBytes: 6 * MiB, seed: 11 });
    } finally {
      run('umount', [mnt]);
    }

    const { target, usedBytes } = roundTrip(image, 'ntfs');
    expect(usedBytes).toBeLessThan(32 * MiB);
    run('ntfsfix', ['-n', target]);
    const ntfs3g = (img: string, dir: string): void => void run('ntfs-3g', ['-o', 'ro', img, dir]);
    const original = treeOf(image, ntfs3g);
    expect(treeOf(target, ntfs3g)).toEqual(original);
    expect(original.size).toBeGreaterThan(100);
  });

  it('btrfs: the restore passes btrfs check and holds the same files', () => {
    const image = scratch.image('btrfs.img', 256 * MiB);
    run('mkfs.btrfs', ['-q', '-f', '-L', 'rt-btrfs', image]);
    const mnt = scratch.mount(image, ['-o', 'loop']);
    populate(mnt, { smallFiles: 200, largeFiles: 3, largeBytes: 8 * MiB, seed: 12 });
    scratch.umount(mnt);

    const { target, usedBytes } = roundTrip(image, 'btrfs');
    expect(usedBytes).toBeLessThan(48 * MiB);
    run('btrfs', ['check', '--readonly', target]);
    // One at a time: two mounted btrfs with the same fsid would clash.
    const loop = (img: string, dir: string): void => void run('mount', ['-o', 'loop,ro', img, dir]);
    const original = treeOf(image, loop);
    expect(treeOf(target, loop)).toEqual(original);
    expect(original.size).toBeGreaterThan(100);
  });
});
