// Freezing the filesystems mounted from a device (FIFREEZE/FITHAW), briefly, for a point-in-time
// copy. A freeze flushes the filesystem (dirty data, its journal) and holds every writer until the
// thaw, so it must never outlive the moment it was taken for: a guard process thaws whatever we
// froze if this process dies, hangs past a deadline, or forgets — the kernel itself would keep the
// filesystem frozen for ever.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { open, stat, type FileHandle } from 'node:fs/promises';
import { StrataError } from '../../agent-core/api/errors.js';
import { freeze, thaw } from '../../native/index.js';
import { deviceNumber, parseMountInfo, stackedDevices } from './device-usage.js';

/** One mounted filesystem (bind mounts and repeated mounts of it are the same filesystem). */
export interface MountedFilesystem {
  readonly mountPoint: string;
  readonly majMin: string;
  readonly source: string;
}

/**
 * The filesystems mounted from a device, its partitions or a device stacked on them, each once
 * (the first mount point of each), in mountinfo order.
 */
export async function mountedFilesystems(devicePath: string, mountInfo = readFileSync('/proc/self/mountinfo', 'utf8')): Promise<MountedFilesystem[]> {
  const devices = stackedDevices(await deviceNumber(devicePath));
  const out: MountedFilesystem[] = [];
  for (const m of parseMountInfo(mountInfo)) {
    const byNumber = devices.some((d) => d.majMin === m.majMin);
    const bySource = m.source.startsWith('/dev/') && devices.some((d) => m.source === `/dev/${d.name}`);
    if (!byNumber && !bySource) continue;
    if (out.some((f) => f.majMin === m.majMin)) continue;
    out.push({ mountPoint: m.mountPoint, majMin: m.majMin, source: m.source });
  }
  return out;
}

/** Whether the path lies on one of the filesystems (compared by the device number of its mount). */
export async function isOnFilesystem(filePath: string, filesystems: readonly MountedFilesystem[]): Promise<boolean> {
  const dev = (await stat(filePath, { bigint: true })).dev;
  const major = ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn);
  const minor = (dev & 0xffn) | ((dev >> 12n) & ~0xffn);
  return filesystems.some((f) => f.majMin === `${major}:${minor}`);
}

/** The longest a freeze may last before the guard thaws it. */
export const FREEZE_DEADLINE_S = 60;

export interface FreezeReport {
  /** Filesystems that were frozen while fn ran. */
  readonly frozen: readonly string[];
  /** Filesystems that could not be frozen, each with the reason (copied as they were: crash-consistent). */
  readonly skipped: readonly string[];
}

/**
 * Runs fn with the filesystems frozen, then thaws them in reverse order, whatever fn does. A
 * filesystem that cannot be frozen (no freeze support, already frozen by someone else) is left
 * alone and named in the report; fn still runs.
 */
export async function withFrozen<T>(filesystems: readonly MountedFilesystem[], fn: (report: FreezeReport) => Promise<T>, deadlineS = FREEZE_DEADLINE_S): Promise<T> {
  if (filesystems.length === 0) return fn({ frozen: [], skipped: [] });
  const guard = startGuard(filesystems.map((f) => f.mountPoint), deadlineS);
  const held: { fs: MountedFilesystem; handle: FileHandle }[] = [];
  const skipped: string[] = [];
  const failures: string[] = [];
  let result: T;
  try {
    await guard.ready;
    for (const fs of filesystems) {
      const handle = await open(fs.mountPoint, 'r');
      try {
        freeze(handle.fd);
        held.push({ fs, handle });
      } catch (err) {
        await handle.close();
        skipped.push(`${fs.mountPoint} (${freezeRefusal(err)})`);
      }
    }
    result = await fn({ frozen: held.map((h) => h.fs.mountPoint), skipped });
  } finally {
    for (const { fs, handle } of held.reverse()) {
      try {
        thaw(handle.fd);
      } catch (err) {
        failures.push(`${fs.mountPoint}: ${(err as Error).message}`);
      }
      await handle.close();
    }
    // Tell the guard all is thawed only if it is; otherwise it thaws them itself.
    guard.release(failures.length === 0);
  }
  // The guard thaws what could not be thawed here; say so all the same.
  if (failures.length > 0) throw new StrataError('Internal', `Thawing ${failures.join('; ')} failed; the guard process thaws them, check with \`fsfreeze -u\` if writes hang.`);
  return result;
}

function freezeRefusal(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'EBUSY') return 'already frozen by another program';
  if (code === 'EOPNOTSUPP' || code === 'ENOTTY' || code === 'EINVAL') return 'this filesystem cannot be frozen';
  return (err as Error).message;
}

/**
 * A small shell that thaws the mount points unless told "done" on its stdin within the deadline:
 * this process's death closes the pipe (EOF), which thaws too. fsfreeze -u on a filesystem that is
 * not frozen fails harmlessly.
 */
function startGuard(mountPoints: readonly string[], deadlineS: number): { ready: Promise<void>; release(thawed: boolean): void } {
  const script = 'echo ready; IFS= read -r -t "$1" line; shift; if [ "$line" != done ]; then for m in "$@"; do fsfreeze -u "$m" 2>/dev/null; done; fi';
  const child: ChildProcess = spawn('bash', ['-c', script, 'strata-thaw-guard', String(deadlineS), ...mountPoints], { stdio: ['pipe', 'pipe', 'ignore'], detached: true });
  child.unref();
  const ready = new Promise<void>((resolve, reject) => {
    child.once('error', (err) => reject(new StrataError('Unsupported', `The freeze guard could not start (${err.message}); bash and fsfreeze (util-linux) are needed to freeze a mounted filesystem.`)));
    child.stdout!.once('data', () => resolve());
    child.once('exit', (code) => reject(new StrataError('Internal', `The freeze guard exited (status ${code}) before the freeze.`)));
  });
  ready.catch(() => {});
  return {
    ready,
    release: (thawed) => {
      child.stdin!.end(thawed ? 'done\n' : '');
      (child.stdout as NodeJS.ReadableStream & { destroy(): void }).destroy();
    },
  };
}
