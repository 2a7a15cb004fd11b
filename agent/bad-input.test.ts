// Bad input gets a typed error and one sentence, before anything is written: the repository stays
// byte-for-byte as it was. Also: a killed backup resumes from what reached the repository.
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, writeFileSync, truncateSync, existsSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT_STATUS } from '../agent-core/api/errors.js';
import { Catalog } from '../agent-core/catalog/catalog.js';
import { makeContent, run, Scratch } from '../test-support/disk.js';
import { strata, strataAsync, summaryOf } from '../test-support/cli.js';

const MiB = 1 << 20;

/** A fingerprint of every file (path, bytes) in a directory. */
function fingerprint(dir: string): string {
  const h = createHash('sha256');
  const files = readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile())
    .map((e) => path.join(e.parentPath, e.name))
    .sort();
  for (const f of files) h.update(path.relative(dir, f)).update(readFileSync(f));
  return h.digest('hex');
}

function errorOf(r: { lines: Record<string, unknown>[] }): { code: string; message: string } {
  const e = r.lines.find((l) => l.type === 'error');
  if (!e) throw new Error('no error line');
  return e as { code: string; message: string };
}

describe('bad input leaves the repository unchanged', () => {
  const scratch = new Scratch();
  let repo: string;
  let image: string;
  let env: Record<string, string>;

  beforeAll(() => {
    image = scratch.image('disk.img', 32 * MiB);
    run('mkfs.ext4', ['-q', '-F', image]);
    const mnt = scratch.mount(image, ['-o', 'loop']);
    writeFileSync(path.join(mnt, 'a.bin'), makeContent(2 * MiB, 'random', 1));
    scratch.umount(mnt);
    repo = scratch.path('repo');
    env = { STRATA_STATE_DIR: scratch.path('state') };
    const pw = scratch.path('pw');
    writeFileSync(pw, 'right');
    expect(strata(['init', '--repo', repo, '--encryption', 'aes-256-gcm', '--password-file', pw], env).status).toBe(0);
    const b = strata(['backup', image, '--repo', repo, '--password-file', pw, '--json'], env);
    expect(b.status, b.stderr).toBe(0);
  });
  afterAll(() => scratch.cleanup());

  it('a wrong password is refused with PermissionDenied', () => {
    const before = fingerprint(repo);
    const wrong = scratch.path('wrong');
    writeFileSync(wrong, 'wrong');
    const r = strata(['backup', image, '--repo', repo, '--password-file', wrong, '--json'], env);
    expect(r.status).toBe(EXIT_STATUS.PermissionDenied);
    expect(errorOf(r).code).toBe('PermissionDenied');
    expect(r.stderr).toMatch(/password/);
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace for an expected failure
    expect(fingerprint(repo)).toBe(before);
  });

  it('an image shorter than its filesystem is refused before anything is written', () => {
    const before = fingerprint(repo);
    const cut = scratch.path('cut.img');
    run('cp', ['--sparse=always', image, cut]);
    truncateSync(cut, 20 * MiB);
    const r = strata(['backup', cut, '--repo', repo, '--json'], { ...env, STRATA_PASSWORD: 'right' });
    expect(r.status).not.toBe(0);
    expect(['Corrupt', 'InvalidInput']).toContain(errorOf(r).code);
    expect(r.stderr).toMatch(/truncated|claims/);
    expect(fingerprint(repo)).toBe(before);
  });

  it('a source that shrank since its last backup is refused unless --full', () => {
    const small = scratch.path('small.img');
    run('cp', ['--sparse=always', image, small]);
    const env2 = { ...env, STRATA_PASSWORD: 'right' };
    expect(strata(['backup', small, '--repo', repo, '--json'], env2).status).toBe(0);
    run('resize2fs', ['-f', small, '16M']);
    truncateSync(small, 16 * MiB);
    const before = fingerprint(repo);
    const r = strata(['backup', small, '--repo', repo, '--json'], env2);
    expect(errorOf(r).code).toBe('InvalidInput');
    expect(r.stderr).toMatch(/--full/);
    expect(fingerprint(repo)).toBe(before);
    const full = strata(['backup', small, '--repo', repo, '--full', '--json'], env2);
    expect(full.status, full.stderr).toBe(0);
    expect(summaryOf(full).mode).toBe('full');
  });

  it('a repository of a newer format is refused with Unsupported', () => {
    const copy = scratch.path('newer');
    run('cp', ['-a', repo, copy]);
    const config = JSON.parse(readFileSync(path.join(copy, 'config'), 'utf8')) as Record<string, unknown>;
    writeFileSync(path.join(copy, 'config'), JSON.stringify({ ...config, version: 2 }));
    const before = fingerprint(copy);
    const r = strata(['snapshots', '--repo', copy, '--json'], { ...env, STRATA_PASSWORD: 'right' });
    expect(errorOf(r).code).toBe('Unsupported');
    expect(r.stderr).toMatch(/upgrade/);
    expect(fingerprint(copy)).toBe(before);
  });

  it('a missing source and an unknown command get one sentence and their exit status', () => {
    const r = strata(['backup', scratch.path('nope.img'), '--repo', repo, '--json'], env);
    expect(errorOf(r).code).toBe('NotFound');
    expect(r.status).toBe(EXIT_STATUS.NotFound);
    const u = strata(['frobnicate'], env);
    expect(u.status).toBe(EXIT_STATUS.InvalidInput);
    expect(u.stderr).toMatch(/Unknown command/);
  });
});

describe('a backup killed with SIGKILL', () => {
  const scratch = new Scratch();
  afterAll(() => scratch.cleanup());

  it('leaves a stale lock that does not block, and the rerun reuses what was stored', async () => {
    const image = scratch.path('big.img');
    writeFileSync(image, makeContent(160 * MiB, 'random', 5));
    const repo = scratch.path('repo');
    const env = { STRATA_STATE_DIR: scratch.path('state') };
    expect(strata(['init', '--repo', repo], env).status).toBe(0);

    const child = strataAsync(['backup', image, '--repo', repo, '--json'], env);
    // Kill once at least two packs have been indexed (each pack writes an index file).
    await new Promise<void>((resolve, reject) => {
      const timer = setInterval(() => {
        const n = existsSync(path.join(repo, 'index')) ? readdirSync(path.join(repo, 'index')).length : 0;
        if (n >= 2) {
          clearInterval(timer);
          child.kill('SIGKILL');
          resolve();
        }
      }, 20);
      child.on('exit', () => {
        clearInterval(timer);
        reject(new Error('backup finished before it could be killed; make the image bigger'));
      });
    }).catch((e: Error) => {
      throw e;
    });
    await new Promise((r) => child.on('exit', r));
    expect(readdirSync(path.join(repo, 'locks')).length).toBe(1); // the dead process's lock
    expect(readdirSync(path.join(repo, 'snapshots')).length).toBe(0);

    const r = strata(['backup', image, '--repo', repo, '--json'], env);
    expect(r.status, r.stderr).toBe(0);
    const s = summaryOf(r);
    expect(s.bytesRead).toBe(160 * MiB);
    // What the killed run stored is reused, so less than everything is new.
    expect(s.bytesNew as number).toBeLessThan(160 * MiB - 16 * MiB);
    expect(readdirSync(path.join(repo, 'locks')).length).toBe(0);
    // The killed run's job is not left "running" in the catalog.
    const catalog = await Catalog.open(path.join(env.STRATA_STATE_DIR, 'catalog.sqlite'));
    const jobs = await catalog.listJobs();
    await catalog.close();
    expect(jobs.map((j) => j.state).sort()).toEqual(['failed', 'succeeded']);
    const v = strata(['verify', '--repo', repo, '--read-data', '--json'], env);
    expect(v.status, v.stdout).toBe(0);
    const target = scratch.path('out.img');
    expect(strata(['restore', 'latest', '--repo', repo, '--target', target], env).status).toBe(0);
    expect(readFileSync(target).equals(readFileSync(image))).toBe(true);
  });
});
