// The agent's live change trackers: one supervised block tracker per configured source the user
// switched tracking on for, kept running while the agent runs, and taken from right before a backup.
import { open, stat } from 'node:fs/promises';
import { StrataError, toStrataError } from '../agent-core/api/errors.js';
import type { TrackedChanges } from '../agent-core/engine/backup.js';
import type { Extent } from '../agent-core/extents.js';
import type { EpochTake, LiveTracker } from '../drivers/tracker/live-tracker.js';
import { startLiveTracker } from '../drivers/tracker/tracker-supervisor.js';

/** What the console shows of a source's tracker (ConfiguredSource.tracking). */
export type TrackingState = 'off' | 'live' | 'blind';

export interface SourceTrackersOptions {
  /** Starts a tracker on a block device; the supervised tracker by default (bpf, else bpftrace, else tracefs). */
  readonly start?: (devicePath: string) => Promise<LiveTracker>;
  /** One line per event worth noting (a tracker that could not start). */
  readonly log?: (line: string) => void;
}

interface Entry {
  readonly path: string;
  /** Settles when the start attempt ends; the tracker, or null if it failed (the error is logged). */
  readonly started: Promise<LiveTracker | null>;
  tracker: LiveTracker | null;
  stopped: boolean;
}

/** Refuses anything but a block device: an image file has no block layer to watch. */
/** fsync of a block device writes its page cache's dirty pages to the device and waits for them. */
async function flushDevice(devicePath: string): Promise<void> {
  let handle;
  try {
    handle = await open(devicePath, 'r');
    await handle.sync();
  } catch (err) {
    throw toStrataError(err, `Flushing ${devicePath} before the backup`);
  } finally {
    await handle?.close();
  }
}

export async function assertTrackable(devicePath: string): Promise<void> {
  let isDevice: boolean;
  try {
    isDevice = (await stat(devicePath)).isBlockDevice();
  } catch (cause) {
    throw toStrataError(cause, `Reading ${devicePath}`);
  }
  if (!isDevice) {
    throw new StrataError('InvalidInput', `${devicePath} is not a block device; only block devices can be tracked live, so back up this image without tracking.`);
  }
}

/** A tracker's take as the engine's backup reads it (agent-core/engine/backup.ts, TrackedChanges). */
export function trackedChangesOf(take: EpochTake): TrackedChanges {
  return { changes: [...take.changes.runs()], epochKey: take.epochKey, previousEpochKey: take.previousEpochKey, gapReason: take.gapReason };
}

export class SourceTrackers {
  private readonly entries = new Map<string, Entry>();
  private readonly start: (devicePath: string) => Promise<LiveTracker>;
  private readonly log: (line: string) => void;

  constructor(options: SourceTrackersOptions = {}) {
    this.start = options.start ?? ((p) => startLiveTracker(p));
    this.log = options.log ?? (() => {});
  }

  /**
   * Starts tracking a source's device and waits until the tracker is attached; throws (and keeps
   * nothing) if it cannot start. A source already tracked keeps its tracker and its epoch.
   */
  async enable(sourceId: string, devicePath: string): Promise<void> {
    const existing = this.entries.get(sourceId);
    if (existing && !existing.stopped && existing.path === devicePath && (await existing.started)) return;
    if (existing) await this.disable(sourceId);
    await assertTrackable(devicePath);
    const tracker = await this.start(devicePath);
    if (this.entries.has(sourceId)) {
      // Enabled twice at once: keep the first, stop this one.
      await tracker.close();
      return;
    }
    this.entries.set(sourceId, { path: devicePath, started: Promise.resolve(tracker), tracker, stopped: false });
  }

  /**
   * Starts tracking in the background (at agent start, for sources stored as tracked); a failure is
   * logged and the source shows as blind, and its backups are resyncs until a start succeeds.
   */
  resume(sourceId: string, devicePath: string): void {
    if (this.entries.has(sourceId)) return;
    const entry: Entry = {
      path: devicePath,
      tracker: null,
      stopped: false,
      started: assertTrackable(devicePath)
        .then(() => this.start(devicePath))
        .then(
          async (t) => {
            if (entry.stopped) {
              await t.close();
              return null;
            }
            entry.tracker = t;
            return t;
          },
          (err: unknown) => {
            this.log(`the live tracker of ${devicePath} could not start (${toStrataError(err).message}); its backups read every valid block until it does`);
            return null;
          },
        ),
    };
    this.entries.set(sourceId, entry);
  }

  /** Stops a source's tracker, if it has one. */
  async disable(sourceId: string): Promise<void> {
    const entry = this.entries.get(sourceId);
    if (!entry) return;
    this.entries.delete(sourceId);
    entry.stopped = true;
    const tracker = await entry.started;
    await tracker?.close();
  }

  state(sourceId: string): TrackingState {
    const entry = this.entries.get(sourceId);
    if (!entry) return 'off';
    return entry.tracker?.status().state === 'tracking' ? 'live' : 'blind';
  }

  /** What the source's tracker has marked since its last backup's take; null when it is not tracked or not started. */
  peek(sourceId: string): Extent[] | null {
    const entry = this.entries.get(sourceId);
    return entry?.tracker && !entry.stopped ? entry.tracker.peekChanges() : null;
  }

  /**
   * Closes the source's current epoch and returns its changes for the backup about to read, or
   * null when the source is not tracked (or its tracker never started): that backup then reads
   * every valid block, and the next tracked one is a resync.
   */
  async take(sourceId: string): Promise<TrackedChanges | null> {
    const entry = this.entries.get(sourceId);
    if (!entry) return null;
    const tracker = await entry.started;
    if (!tracker || entry.stopped) return null;
    // Buffered writes to the device node sit in its page cache and are not bios yet, so the tracker
    // has not seen them; flush them first (the take's barrier then waits for their events), or the
    // backup would keep the parent's blocks there while the device is about to hold new ones.
    await flushDevice(entry.path);
    let take;
    try {
      take = await tracker.takeAndReset();
    } catch (err) {
      // Switched off while the backup started: it reads every valid block, as untracked ones do.
      if (entry.stopped) return null;
      throw err;
    }
    return trackedChangesOf(take);
  }

  async closeAll(): Promise<void> {
    await Promise.all([...this.entries.keys()].map((id) => this.disable(id)));
  }
}
