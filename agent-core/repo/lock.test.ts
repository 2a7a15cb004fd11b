import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { tempRepoDir, type TempRepoDir } from '../../test-support/repo-dir.js';
import { isStale, processStartTime, RepoLock, type LockInfo } from './lock.js';

const strataError = (code: string) => expect.objectContaining({ name: 'StrataError', code });

const thisBoot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();

function lockInfo(overrides: Partial<LockInfo>): LockInfo {
  return {
    pid: process.pid,
    hostname: os.hostname(),
    bootId: thisBoot,
    processStart: processStartTime(process.pid)!,
    exclusive: true,
    command: 'strata backup /dev/vdb',
    createdAt: '2025-01-02T03:04:05.000Z',
    ...overrides,
  };
}

/** The pid of a process that has exited and been reaped. */
async function deadPid(): Promise<number> {
  const child = spawn('sleep', ['0'], { stdio: 'ignore' });
  const pid = child.pid!;
  await new Promise<void>((resolve, reject) => {
    child.once('exit', () => resolve());
    child.once('error', reject);
  });
  return pid;
}

describe('repository locks', () => {
  let repo: TempRepoDir;

  beforeEach(async () => {
    repo = tempRepoDir('strata-lock-');
    await repo.backend.create();
  });
  afterEach(() => repo.cleanup());

  it('a waiting lock gets the repository once the holder releases it', async () => {
    const listing = await RepoLock.acquire(repo.backend, false, 'strata snapshots');
    const started = Date.now();
    setTimeout(() => void listing.release(), 300);
    const backup = await RepoLock.acquireWaiting(repo.backend, true, 'strata backup /dev/vdb', 10_000);
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    expect(await repo.backend.list('locks')).toHaveLength(1);
    await backup.release();
  });

  it('a waiting lock gives up with Locked when the holder keeps it past the wait', async () => {
    const holder = await RepoLock.acquire(repo.backend, true, 'strata backup /dev/vdb');
    const started = Date.now();
    await expect(RepoLock.acquireWaiting(repo.backend, false, 'strata snapshots', 400)).rejects.toThrow(strataError('Locked'));
    expect(Date.now() - started).toBeLessThan(3000);
    // The waiter left no lock file behind.
    expect(await repo.backend.list('locks')).toHaveLength(1);
    await holder.release();
  });

  it('a second exclusive lock fails with Locked and a sentence naming the holder', async () => {
    const first = await RepoLock.acquire(repo.backend, true, 'strata backup /dev/vdb');
    const second = RepoLock.acquire(repo.backend, true, 'strata backup /dev/vdc');
    await expect(second).rejects.toThrow(strataError('Locked'));
    await expect(RepoLock.acquire(repo.backend, true, 'x')).rejects.toThrow(
      new RegExp(`in use by \`strata backup /dev/vdb\` \\(process ${process.pid} on .*; wait for it to finish and try again\\.$`),
    );
    expect(await repo.backend.list('locks')).toEqual([first.name]);
    await first.release();
  });

  it('a Locked error is marked retryable', async () => {
    const first = await RepoLock.acquire(repo.backend, false, 'strata restore');
    const err = await RepoLock.acquire(repo.backend, true, 'strata backup').catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'Locked', retryable: true });
    await first.release();
  });

  it('shared locks coexist, and an exclusive one waits for all of them', async () => {
    const a = await RepoLock.acquire(repo.backend, false, 'strata restore');
    const b = await RepoLock.acquire(repo.backend, false, 'strata verify');
    expect((await repo.backend.list('locks')).sort()).toEqual([a.name, b.name].sort());
    await expect(RepoLock.acquire(repo.backend, true, 'strata backup')).rejects.toThrow(strataError('Locked'));
    await a.release();
    await expect(RepoLock.acquire(repo.backend, true, 'strata backup')).rejects.toThrow(strataError('Locked'));
    await b.release();
    const c = await RepoLock.acquire(repo.backend, true, 'strata backup');
    expect(await repo.backend.list('locks')).toEqual([c.name]);
    await c.release();
  });

  it('a shared lock is refused while an exclusive one is held', async () => {
    const x = await RepoLock.acquire(repo.backend, true, 'strata backup');
    await expect(RepoLock.acquire(repo.backend, false, 'strata restore')).rejects.toThrow(strataError('Locked'));
    await x.release();
  });

  it('release removes the lock file and a second release is harmless', async () => {
    const lock = await RepoLock.acquire(repo.backend, true, 'strata backup');
    const stored = JSON.parse((await repo.backend.load('locks', lock.name)).toString('utf8')) as LockInfo;
    expect(stored).toEqual(lock.info);
    expect(stored).toMatchObject({ pid: process.pid, hostname: os.hostname(), bootId: thisBoot, exclusive: true });
    await lock.release();
    await lock.release();
    expect(await repo.backend.list('locks')).toEqual([]);
  });

  it('a lock of a process that has exited is stale: removed, and it does not block', async () => {
    const pid = await deadPid();
    const info = lockInfo({ pid, processStart: '12345' });
    expect(isStale(info)).toBe(true);
    await repo.backend.save('locks', 'dead-holder', Buffer.from(JSON.stringify(info)));
    const lock = await RepoLock.acquire(repo.backend, true, 'strata backup');
    expect(await repo.backend.list('locks')).toEqual([lock.name]);
    await lock.release();
  });

  it('a lock whose pid now belongs to a younger process (pid reuse) is stale', async () => {
    const info = lockInfo({ processStart: '1' });
    expect(isStale(info)).toBe(true);
    await repo.backend.save('locks', 'reused-pid', Buffer.from(JSON.stringify(info)));
    const lock = await RepoLock.acquire(repo.backend, true, 'strata backup');
    expect(await repo.backend.list('locks')).toEqual([lock.name]);
    await lock.release();
  });

  it('a lock from an earlier boot is stale', () => {
    expect(isStale(lockInfo({ bootId: '00000000-0000-0000-0000-000000000000' }))).toBe(true);
  });

  it('a lock of a live process on this host is honoured', async () => {
    const info = lockInfo({});
    expect(isStale(info)).toBe(false);
    await repo.backend.save('locks', 'live-holder', Buffer.from(JSON.stringify(info)));
    await expect(RepoLock.acquire(repo.backend, true, 'strata backup')).rejects.toThrow(strataError('Locked'));
    expect(await repo.backend.list('locks')).toEqual(['live-holder']);
  });

  it('a lock from another hostname is honoured even if its pid is dead here', async () => {
    const info = lockInfo({ hostname: `not-${os.hostname()}`, pid: await deadPid(), bootId: 'another-boot', processStart: '1' });
    expect(isStale(info)).toBe(false);
    await repo.backend.save('locks', 'remote-holder', Buffer.from(JSON.stringify(info)));
    await expect(RepoLock.acquire(repo.backend, false, 'strata restore')).rejects.toThrow(new RegExp(`on not-${os.hostname()}`));
    expect(await repo.backend.list('locks')).toEqual(['remote-holder']);
  });

  it('a shared lock from another host lets another shared lock in', async () => {
    const info = lockInfo({ hostname: 'other-host', exclusive: false });
    await repo.backend.save('locks', 'remote-reader', Buffer.from(JSON.stringify(info)));
    const lock = await RepoLock.acquire(repo.backend, false, 'strata verify');
    expect((await repo.backend.list('locks')).sort()).toEqual([lock.name, 'remote-reader'].sort());
    await lock.release();
  });
});

describe('processStartTime', () => {
  it('reads our own start time and gives null for a process that is gone', async () => {
    expect(processStartTime(process.pid)).toMatch(/^\d+$/);
    expect(processStartTime(await deadPid())).toBeNull();
  });
});
