// Freezing a real mounted ext4 on a loop device: frozen while fn runs, thawed after it (also when it
// throws), and thawed by the guard when the process that froze it is killed.
import { spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { run, Scratch } from '../../test-support/disk.js';
import { isOnFilesystem, mountedFilesystems, withFrozen } from './freeze.js';

const MiB = 1 << 20;

/** Whether the filesystem is frozen: a second freeze of a frozen filesystem fails with EBUSY. */
function isFrozen(mountPoint: string): boolean {
  const r = spawnSync('fsfreeze', ['--freeze', mountPoint], { encoding: 'utf8' });
  if (r.status === 0) {
    run('fsfreeze', ['--unfreeze', mountPoint]);
    return false;
  }
  if (/busy/i.test(r.stderr)) return true;
  throw new Error(`fsfreeze --freeze ${mountPoint} failed: ${r.stderr}`);
}

describe('freezing the filesystems mounted from a device', () => {
  let scratch: Scratch;
  let dev: string;
  let mnt: string;

  beforeEach(() => {
    scratch = new Scratch('strata-freeze-');
    dev = scratch.loop(scratch.image('disk.img', 32 * MiB));
    run('mkfs.ext4', ['-q', '-F', dev]);
    mnt = scratch.mount(dev);
    // Whatever a test does, never leave a frozen filesystem behind.
    scratch.defer(() => spawnSync('fsfreeze', ['--unfreeze', mnt]));
  });

  afterEach(() => scratch.cleanup());

  it('finds the mount of a device, once, and which paths lie on it', async () => {
    const second = scratch.mount(dev);
    const found = await mountedFilesystems(dev);
    expect(found).toHaveLength(1);
    expect([mnt, second]).toContain(found[0]!.mountPoint);
    writeFileSync(path.join(mnt, 'f'), 'x');
    expect(await isOnFilesystem(path.join(mnt, 'f'), found)).toBe(true);
    expect(await isOnFilesystem(scratch.dir, found)).toBe(false);
    expect(await mountedFilesystems(scratch.loop(scratch.image('other.img', MiB)))).toEqual([]);
  });

  it('holds the freeze while fn runs and thaws after it, also when fn throws', async () => {
    const fss = await mountedFilesystems(dev);
    const seen = await withFrozen(fss, async (report) => {
      expect(report.frozen).toEqual([fss[0]!.mountPoint]);
      return isFrozen(mnt);
    });
    expect(seen).toBe(true);
    expect(isFrozen(mnt)).toBe(false);
    await expect(
      withFrozen(fss, async () => {
        throw new Error('fn failed (test)');
      }),
    ).rejects.toThrow('fn failed (test)');
    expect(isFrozen(mnt)).toBe(false);
  });

  it('skips a filesystem someone else froze, and leaves it as it was', async () => {
    run('fsfreeze', ['--freeze', mnt]);
    const report = await withFrozen(await mountedFilesystems(dev), async (r) => r);
    expect(report.frozen).toEqual([]);
    expect(report.skipped[0]).toMatch(/already frozen by another program/);
    expect(isFrozen(mnt)).toBe(true);
    run('fsfreeze', ['--unfreeze', mnt]);
  });

  it('is thawed by the guard when the process holding the freeze is killed', async () => {
    // A separate Node process freezes and then hangs; we kill it with SIGKILL, so no finally runs.
    const freezeModule = path.resolve(import.meta.dirname, 'freeze.ts');
    const script = `
      const { mountedFilesystems, withFrozen } = await import(${JSON.stringify(freezeModule)});
      await withFrozen(await mountedFilesystems(${JSON.stringify(dev)}), async () => {
        console.log('frozen');
        await new Promise(() => {});
      });`;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => d.toString().includes('frozen') && resolve());
      child.once('exit', (code) => reject(new Error(`the freezing process exited early (${code})`)));
    });
    expect(isFrozen(mnt)).toBe(true);
    child.kill('SIGKILL');
    let thawed = false;
    for (let i = 0; i < 100 && !thawed; i++) {
      await new Promise((r) => setTimeout(r, 100));
      thawed = !isFrozen(mnt);
    }
    expect(thawed).toBe(true);
  });
});
