// bin/strata and the one-file bundle it prefers (scripts/build-cli.mjs): the launcher's choice on a
// made-up dist/, and the real bundle of this build backing up, verifying and restoring a real ext4
// image (the unit tests run the CLI from source; this is the code users run).
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Scratch, fileTreeHashes, populate, requireRoot, run } from '../test-support/disk.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const LAUNCHER = path.join(ROOT, 'bin', 'strata');
const BUNDLE = path.join(ROOT, 'dist', 'cli', 'strata.mjs');

describe('bin/strata', () => {
  let scratch: Scratch;
  beforeEach(() => {
    scratch = new Scratch('strata-launcher-');
  });
  afterEach(() => scratch.cleanup());

  it('runs the bundle only while it is at least as new as tsc’s last build, else dist/cli/main.js', () => {
    const bin = scratch.path('bin');
    const cli = scratch.path('dist/cli');
    mkdirSync(bin, { recursive: true });
    mkdirSync(cli, { recursive: true });
    copyFileSync(LAUNCHER, path.join(bin, 'strata'));
    writeFileSync(path.join(cli, 'main.js'), 'console.log("per-file build", process.argv.slice(2).join(" "));\n');
    writeFileSync(path.join(cli, 'strata.mjs'), 'console.log("bundle", process.argv.slice(2).join(" "));\n');
    const stamp = scratch.path('dist/.tsbuildinfo');
    writeFileSync(stamp, '{}');
    const launch = (): string => execFileSync('sh', [path.join(bin, 'strata'), 'a', 'b c'], { encoding: 'utf8' }).trim();
    const at = (file: string, seconds: number): void => utimesSync(file, seconds, seconds);

    at(stamp, 1_000_000);
    at(path.join(cli, 'strata.mjs'), 1_000_100);
    expect(launch()).toBe('bundle a b c');
    // tsc ran after the bundle was made (a `tsc -b` alone): the bundle may be stale.
    at(stamp, 1_000_200);
    expect(launch()).toBe('per-file build a b c');
  });

  it('says how to build when dist/ is missing', () => {
    const bin = scratch.path('bin');
    mkdirSync(bin, { recursive: true });
    copyFileSync(LAUNCHER, path.join(bin, 'strata'));
    const r = spawnSync('sh', [path.join(bin, 'strata'), '--help'], { encoding: 'utf8' });
    expect(r.status).toBe(70);
    expect(r.stderr).toMatch(/the CLI is not built yet .*run `npm ci` or `npm run build`/);
  });

  const noBundle = existsSync(BUNDLE) ? undefined : `${BUNDLE} is missing: run \`npm run build:ts\``;
  if (noBundle) console.log(`skipping the bundled CLI test: ${noBundle}`);

  it.skipIf(noBundle !== undefined)('the bundle of this build backs up a real ext4 image, verifies it and restores the same files', () => {
    requireRoot();
    const image = scratch.image('disk.img', 48 * 1024 * 1024);
    run('mkfs.ext4', ['-q', '-F', image]);
    const mnt = scratch.mount(image, ['-o', 'loop']);
    populate(mnt, { smallFiles: 40, largeFiles: 2, largeBytes: 2 * 1024 * 1024, seed: 7 });
    const before = fileTreeHashes(mnt);
    scratch.umount(mnt);

    const repo = scratch.path('repo');
    const env = { ...process.env, STRATA_STATE_DIR: scratch.path('state') };
    const cli = (...args: string[]): string => execFileSync(LAUNCHER, args, { encoding: 'utf8', env });
    // The launcher picked the bundle (the build just ran, so it is fresh).
    const trace = spawnSync('sh', ['-x', LAUNCHER, '--help'], { encoding: 'utf8', env });
    expect(trace.stderr).toMatch(/exec node --enable-source-maps \S*dist\/cli\/strata\.mjs --help/);
    cli('init', '--repo', repo);
    const summary = JSON.parse(cli('backup', image, '--repo', repo, '--json').trim().split('\n').at(-1)!) as { mode: string; bytesStored: number };
    expect(summary.mode).toBe('full');
    expect(summary.bytesStored).toBeGreaterThan(0);
    expect(cli('verify', '--repo', repo, '--read-data')).toMatch(/no problems found/);
    const target = scratch.path('restored.img');
    cli('restore', 'latest', '--repo', repo, '--target', target);
    run('e2fsck', ['-fn', target]);
    const restored = scratch.mount(target, ['-o', 'loop,ro']);
    expect(fileTreeHashes(restored)).toEqual(before);
  });
});
