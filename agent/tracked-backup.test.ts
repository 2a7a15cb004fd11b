// Tracked incrementals on real loop devices with a real live tracker: only the changed blocks are
// read, a restarted tracker or a lost take makes a resync that misses nothing, and the forced full
// read reports the blocks a tracker failed to mark.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runBackup, type BackupResult, type TrackedChanges } from '../agent-core/engine/backup.js';
import { Repository } from '../agent-core/repo/repository.js';
import { WorkerPool } from '../drivers/compute/worker-pool.js';
import { mapDisk } from '../drivers/disk/map-disk.js';
import { openSource } from '../drivers/source/open-source.js';
import { LocalDirBackend } from '../drivers/storage/local-dir-backend.js';
import type { LiveTracker } from '../drivers/tracker/live-tracker.js';
import { startLiveTracker } from '../drivers/tracker/tracker-supervisor.js';
import { Scratch } from '../test-support/disk.js';
import { restore } from './operations.js';
import { trackedChangesOf } from './trackers.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const DEVICE_BYTES = 24 * MiB;

/** Writes noise at offsetBytes with O_DIRECT, as an application bypassing the page cache would. */
function directWrite(dev: string, offsetBytes: number, lengthBytes: number): void {
  execFileSync('dd', ['if=/dev/urandom', `of=${dev}`, 'bs=4096', `seek=${offsetBytes / 4096}`, `count=${lengthBytes / 4096}`, 'oflag=direct', 'conv=notrunc', 'status=none']);
}

/** Bytes the last take marked again for a possibly skipped completion event (bpf backend): extra reads allowed. */
let remarked = 0;

async function takeOf(tracker: LiveTracker): Promise<TrackedChanges> {
  const t = await tracker.takeAndReset();
  remarked = t.remarkedBytes;
  return trackedChangesOf(t);
}

describe('tracked incrementals on a loop device', () => {
  let scratch: Scratch;
  let trackers: LiveTracker[];
  let dev: string;
  let repoDir: string;

  beforeEach(() => {
    scratch = new Scratch('strata-tracked-');
    trackers = [];
    dev = scratch.loop(scratch.image('disk.img', DEVICE_BYTES));
    // Data from 1 MiB to 8 MiB, the rest zeros (the first MiB too, so no partition table or
    // filesystem is seen by chance): every block is valid, most of them zero.
    directWrite(dev, 1 * MiB, 7 * MiB);
    repoDir = scratch.path('repo');
  });

  afterEach(async () => {
    for (const t of trackers) await t.close().catch(() => {});
    scratch.cleanup();
  });

  async function track(): Promise<LiveTracker> {
    const t = await startLiveTracker(dev, { restartInitialMs: 50 });
    trackers.push(t);
    return t;
  }

  async function init(fullEvery?: number): Promise<void> {
    await Repository.init(new LocalDirBackend(repoDir), { encryption: 'none', password: null, ...(fullEvery ? { fullEvery } : {}) });
  }

  /** One backup through the engine, as the agent's backup operation runs it. */
  async function backup(parentId: string | null, tracked: TrackedChanges | null, warnings: string[] = []): Promise<BackupResult & { trackerEpoch: string | null }> {
    const repo = await Repository.open(new LocalDirBackend(repoDir), () => null);
    const source = await openSource(dev);
    const lock = await repo.lock(true, 'tracked backup test');
    const compute = new WorkerPool(repo.keys, { blockSizeBytes: repo.config.blockSizeBytes, zstdLevel: repo.config.zstdLevel });
    try {
      const { layout, validExtents } = await mapDisk(source);
      await repo.loadIndex();
      const parent = parentId ? { id: parentId, manifest: await repo.loadManifest(parentId) } : null;
      const r = await runBackup({ source, sourceName: dev, validExtents, layout, repo, compute, parent, tracked, hostname: 'test', onWarning: (m) => warnings.push(m) });
      return { ...r, trackerEpoch: (await repo.loadManifest(r.id)).trackerEpoch ?? null };
    } finally {
      await compute.close();
      await lock.release();
      await source.close();
    }
  }

  /** Restores a snapshot into a file and expects it to equal the device, byte for byte. */
  async function expectRestoresToDevice(snapshotId: string): Promise<void> {
    const target = scratch.path(`restored-${snapshotId.slice(0, 8)}.img`);
    const r = await restore({ stateDir: scratch.path('state'), password: () => null }, snapshotId, repoDir, target);
    expect(r.verification?.mismatches).toBe(0);
    expect(readFileSync(target).equals(readFileSync(dev))).toBe(true);
  }

  it('reads only the blocks written since the last backup and restores the device exactly', async () => {
    await init();
    const tracker = await track();
    const first = await backup(null, await takeOf(tracker));
    expect(first.summary.mode).toBe('full');
    expect(first.trackerEpoch).not.toBeNull();

    // Three runs far apart (one in the zero region), 4 KiB-aligned: 200 KiB in all.
    directWrite(dev, 1 * MiB, 64 * KiB);
    directWrite(dev, 5 * MiB + 12 * KiB, 8 * KiB);
    directWrite(dev, 17 * MiB, 128 * KiB);
    const changedBytes = 200 * KiB;
    const take = await takeOf(tracker);
    expect(take.previousEpochKey).toBe(first.trackerEpoch);
    const second = await backup(first.id, take);
    expect(second.summary).toMatchObject({ mode: 'incremental', tracker: 'live', modeReason: null, validBytes: DEVICE_BYTES });
    expect(second.summary.bytesRead).toBeGreaterThanOrEqual(changedBytes);
    expect(second.summary.bytesRead).toBeLessThanOrEqual(1.2 * changedBytes + remarked);
    expect(second.summary.bytesNew).toBe(changedBytes);
    expect(second.trackerEpoch).toBe(take.epochKey);
    expect(second.trackerMisses).toBeNull();
    await expectRestoresToDevice(second.id);
  });

  it('a tracker restarted since the last backup gives a resync that keeps the writes made while none ran', async () => {
    await init();
    const before = await track();
    const first = await backup(null, await takeOf(before));
    await before.close();
    // Nobody watches these.
    directWrite(dev, 2 * MiB, 16 * KiB);
    directWrite(dev, 20 * MiB, 4 * KiB);
    const after = await track();
    directWrite(dev, 6 * MiB, 4 * KiB);
    const take = await takeOf(after);
    expect(take.previousEpochKey).not.toBe(first.trackerEpoch);
    const resync = await backup(first.id, take);
    expect(resync.summary).toMatchObject({ mode: 'resync', tracker: 'none' });
    expect(resync.summary.modeReason).toMatch(/restarted/);
    expect(resync.summary.bytesRead).toBe(DEVICE_BYTES);
    // Only the true changes are stored: 24 KiB.
    expect(resync.summary.bytesNew).toBe(24 * KiB);
    expect(resync.trackerEpoch).toBe(take.epochKey);
    await expectRestoresToDevice(resync.id);

    // Chained again: the next one is a tracked incremental.
    directWrite(dev, 3 * MiB, 4 * KiB);
    const next = await backup(resync.id, await takeOf(after));
    expect(next.summary).toMatchObject({ mode: 'incremental', tracker: 'live' });
    expect(next.summary.bytesRead).toBeGreaterThanOrEqual(4 * KiB);
    expect(next.summary.bytesRead).toBeLessThanOrEqual(4 * KiB + remarked);
    await expectRestoresToDevice(next.id);
  });

  it('a take whose backup never finished makes the next backup a resync, so its changes are not lost', async () => {
    await init();
    const tracker = await track();
    const first = await backup(null, await takeOf(tracker));
    directWrite(dev, 4 * MiB, 8 * KiB);
    // The take of a backup that then failed: its changes are gone with it.
    await takeOf(tracker);
    directWrite(dev, 9 * MiB, 4 * KiB);
    const second = await backup(first.id, await takeOf(tracker));
    expect(second.summary.mode).toBe('resync');
    expect(second.summary.bytesNew).toBe(12 * KiB);
    await expectRestoresToDevice(second.id);
  });

  it('the forced full read reports and counts the changed blocks a take did not mark', async () => {
    await init(1);
    const tracker = await track();
    const first = await backup(null, await takeOf(tracker));
    directWrite(dev, 1 * MiB, 4 * KiB);
    const second = await backup(first.id, await takeOf(tracker));
    expect(second.summary).toMatchObject({ mode: 'incremental', tracker: 'live' });

    directWrite(dev, 2 * MiB, 8 * KiB); // marked
    directWrite(dev, 12 * MiB, 12 * KiB); // dropped from the take below: three blocks in the zero region
    directWrite(dev, 3 * MiB, 4 * KiB); // dropped too: one block over data
    const full = await takeOf(tracker);
    const incomplete = { ...full, changes: full.changes.filter((e) => e.startBytes < 3 * MiB) };
    expect(incomplete.changes.length).toBeGreaterThan(0);
    const warnings: string[] = [];
    const third = await backup(second.id, incomplete, warnings);
    expect(third.summary).toMatchObject({ mode: 'full', bytesRead: DEVICE_BYTES });
    expect(third.summary.modeReason).toMatch(/forced full read after 1 incrementals/);
    expect(third.trackerMisses).toBe(4);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/missed 4 changed block\(s\).*first at byte 3145728/);
    await expectRestoresToDevice(third.id);

    // A complete take finds nothing missing on the next forced full.
    const fourth = await backup(third.id, await takeOf(tracker));
    expect(fourth.summary.mode).toBe('incremental');
    const fifth = await backup(fourth.id, await takeOf(tracker));
    expect(fifth.summary.mode).toBe('full');
    expect(fifth.trackerMisses).toBe(0);
  });
});
