// A point-in-time copy of a device whose filesystems are mounted (issue 7 part 5, seeds 000 and
// 002): freeze them just long enough to switch the tracker's epoch, map the disk, copy it while it
// runs, then converge (agent-core/engine/converge.ts) with one last short freeze.
//
// Which tracker. A source the agent tracks uses its own tracker, so the epoch key stored with the
// snapshot keeps its tracked incrementals going. Any other mounted device gets a tracker for the
// length of the backup. With no tracker at all, a consistent copy would mean holding the freeze for
// the whole read — minutes of every writer waiting, and a deadlock if the repository lives there —
// so the backup is refused with what to do instead.
import { StrataError, toStrataError } from '../agent-core/api/errors.js';
import type { Convergence, TrackedChanges } from '../agent-core/engine/backup.js';
import { loopMappingsOf } from '../drivers/source/device-usage.js';
import { mountedFilesystems, withFrozen, type MountedFilesystem } from '../drivers/source/freeze.js';
import type { LiveTracker } from '../drivers/tracker/live-tracker.js';
import { startLiveTracker } from '../drivers/tracker/tracker-supervisor.js';
import { trackedChangesOf } from './trackers.js';

export interface ConsistentCopy {
  /** The agent tracker's take made under the first freeze (null for a tracker of this backup only). */
  readonly initial: TrackedChanges | null;
  readonly converge: Convergence;
  /** Stops a tracker started for this backup. */
  close(): Promise<void>;
}

export interface ConsistentCopyOptions {
  /** The agent's tracker of this source, when it has one (operations.ts BackupOptions.takeChanges). */
  readonly takeChanges?: (() => Promise<TrackedChanges | null>) | undefined;
  readonly onWarning: (message: string) => void;
  /** Starts the tracker of a backup (tests pass options). */
  readonly startTracker?: (devicePath: string) => Promise<LiveTracker>;
  readonly maxPasses?: number;
  readonly frozenBudgetBytes?: number;
}

/**
 * An image file that backs a loop device whose filesystems are mounted is a disk in use, written
 * while it is read: it is copied through that device (the same bytes), consistently, as the device
 * would be. Returns the device and its mounted filesystems, or null when no mounted loop device
 * shows the file. A loop device that shows only part of the file (an offset, a size limit), or
 * several mounted ones, cannot stand for the whole image: refused with DeviceBusy before anything
 * is written.
 */
export async function mountedLoopOf(filePath: string, fileSizeBytes: number): Promise<{ device: string; mounted: MountedFilesystem[] } | null> {
  const inUse: Array<{ device: string; offsetBytes: number; sizeBytes: number; mounted: MountedFilesystem[] }> = [];
  for (const m of loopMappingsOf(filePath)) {
    const mounted = await mountedFilesystems(m.device);
    if (mounted.length > 0) inUse.push({ ...m, mounted });
  }
  if (inUse.length === 0) return null;
  const where = inUse.map((m) => `${m.device} (mounted at ${m.mounted.map((f) => f.mountPoint).join(', ')})`).join(' and ');
  if (inUse.length > 1) throw new StrataError('DeviceBusy', `${filePath} is mounted through several loop devices, ${where}; unmount all but one and run the backup again.`);
  const [only] = inUse;
  if (only!.offsetBytes !== 0 || only!.sizeBytes !== fileSizeBytes) {
    throw new StrataError('DeviceBusy', `${filePath} is mounted through ${where}, which shows only part of the file; unmount it, or back up ${only!.device} itself.`);
  }
  return { device: only!.device, mounted: only!.mounted };
}

/** Freezes, switches the tracking epoch, thaws; returns how the engine converges from there. */
export async function startConsistentCopy(devicePath: string, filesystems: readonly MountedFilesystem[], options: ConsistentCopyOptions): Promise<ConsistentCopy> {
  const names = filesystems.map((f) => f.mountPoint).join(', ');
  const frozen = async <T>(fn: () => Promise<T>): Promise<T> =>
    withFrozen(filesystems, async (report) => {
      for (const s of report.skipped) options.onWarning(`${s}: not frozen, so the copy of ${devicePath} holds that filesystem as a crash would have left it.`);
      return fn();
    });
  const tuning = {
    ...(options.maxPasses !== undefined ? { maxPasses: options.maxPasses } : {}),
    ...(options.frozenBudgetBytes !== undefined ? { frozenBudgetBytes: options.frozenBudgetBytes } : {}),
  };

  if (options.takeChanges) {
    const agentTake = options.takeChanges;
    const initial = await frozen(agentTake);
    if (initial !== null) {
      const take = async (): Promise<TrackedChanges> => {
        const t = await agentTake();
        if (t === null) throw new StrataError('DeviceBusy', `Tracking of ${devicePath} was switched off during its backup; run the backup again.`);
        return t;
      };
      return { initial, converge: { take, frozen, ...tuning }, close: async () => {} };
    }
    // The agent's tracker has not started (it shows blind): track this backup on our own.
  }

  let tracker: LiveTracker;
  try {
    tracker = await (options.startTracker ?? ((p) => startLiveTracker(p)))(devicePath);
  } catch (err) {
    throw new StrataError(
      'Unsupported',
      `${devicePath} is mounted (${names}) and no change tracker could start to copy it consistently (${toStrataError(err).message}); unmount it first, or run the backup as root where bpftrace or the kernel's tracefs is available.`,
    );
  }
  const take = async (): Promise<TrackedChanges> => trackedChangesOf(await tracker.takeAndReset());
  try {
    // The epoch switch: what this tracker saw before the freeze is already on disk and in the map.
    await frozen(take);
  } catch (err) {
    await tracker.close();
    throw err;
  }
  return { initial: null, converge: { take, frozen, ...tuning }, close: () => tracker.close() };
}
