// Repository locks: one file per holder under locks/. Backups hold an exclusive lock, readers a
// shared one. A lock whose process is gone (same host: pid dead, pid reused, or another boot) is
// stale: it is removed and does not block the next command.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { StrataError } from '../api/errors.js';
import type { RepoBackend } from './backend.js';

export interface LockInfo {
  readonly pid: number;
  readonly hostname: string;
  readonly bootId: string;
  /** The process's start time in clock ticks since boot (/proc/PID/stat field 22), to detect pid reuse. */
  readonly processStart: string;
  readonly exclusive: boolean;
  readonly command: string;
  readonly createdAt: string;
}

function bootId(): string {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return 'unknown';
  }
}

/** Start time of a process, or null if it does not exist. */
export function processStartTime(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces and parentheses; fields after the last ')' are fixed.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19] ?? null;
  } catch {
    return null;
  }
}

export function isStale(info: LockInfo): boolean {
  if (info.hostname !== os.hostname()) return false; // cannot see another host's processes
  if (info.bootId !== bootId()) return true;
  const start = processStartTime(info.pid);
  return start === null || start !== info.processStart;
}

export class RepoLock {
  private released = false;

  private constructor(
    private readonly backend: RepoBackend,
    readonly name: string,
    readonly info: LockInfo,
  ) {}

  /**
   * Takes a lock: writes our lock file, then looks at the others. A live conflicting holder makes
   * us withdraw ours and fail with Locked; stale ones are removed.
   */
  static async acquire(backend: RepoBackend, exclusive: boolean, command: string): Promise<RepoLock> {
    const info: LockInfo = {
      pid: process.pid,
      hostname: os.hostname(),
      bootId: bootId(),
      processStart: processStartTime(process.pid) ?? '0',
      exclusive,
      command,
      createdAt: new Date().toISOString(),
    };
    const name = `${Date.now().toString(36)}-${randomBytes(6).toString('hex')}`;
    await backend.save('locks', name, Buffer.from(JSON.stringify(info)));
    const lock = new RepoLock(backend, name, info);
    try {
      for (const other of await backend.list('locks')) {
        if (other === name) continue;
        let theirs: LockInfo;
        try {
          theirs = JSON.parse((await backend.load('locks', other)).toString('utf8')) as LockInfo;
        } catch {
          continue; // removed meanwhile, or unreadable: a half-written lock cannot exist (atomic save)
        }
        if (isStale(theirs)) {
          await backend.remove('locks', other);
          continue;
        }
        if (exclusive || theirs.exclusive) {
          throw new StrataError(
            'Locked',
            `The repository is in use by \`${theirs.command}\` (process ${theirs.pid} on ${theirs.hostname}, since ${theirs.createdAt}); wait for it to finish and try again.`,
          );
        }
      }
    } catch (err) {
      await lock.release();
      throw err;
    }
    return lock;
  }

  /**
   * Acquires as `acquire` does, retrying while another holder has it, for up to waitMs: a backup
   * queued behind a listing (or the other way round) waits its turn instead of failing.
   */
  static async acquireWaiting(backend: RepoBackend, exclusive: boolean, command: string, waitMs: number): Promise<RepoLock> {
    const deadline = Date.now() + waitMs;
    let pauseMs = 50;
    for (;;) {
      try {
        return await RepoLock.acquire(backend, exclusive, command);
      } catch (err) {
        if (!(err instanceof StrataError) || err.code !== 'Locked' || Date.now() + pauseMs > deadline) throw err;
      }
      // Random pauses: two waiters that saw each other do not meet again in lock step.
      await new Promise((resolve) => setTimeout(resolve, pauseMs * (0.5 + Math.random())));
      pauseMs = Math.min(pauseMs * 2, 1000);
    }
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    await this.backend.remove('locks', this.name);
  }
}
