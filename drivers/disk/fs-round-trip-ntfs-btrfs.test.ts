// Backup and restore through the real CLI of NTFS (filled through ntfs-3g) and btrfs (filled through
// a kernel mount): inspect maps the used bytes, the backup skips the rest, and the restored image
// passes its own checker (ntfsfix -n, btrfs check) and holds the same files.
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fileTreeHashes, populate, requireRoot, run, Scratch } from '../../test-support/disk.js';
import { strata } from '../../test-support/cli.js';
import { cliRoundTrip } from '../../test-support/round-trip.js';

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

/** inspect, backup and restore of a bare-filesystem image filled under half (test-support/round-trip.ts). */
const roundTrip = (image: string, filesystem: string) => cliRoundTrip(env, repo, image, filesystem, 0.5);

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
