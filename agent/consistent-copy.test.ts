// Backups of a mounted ext4 on a real loop device while a writer keeps writing to it: the first
// freeze switches the tracking epoch, the passes re-read what the writer changed, the last one runs
// frozen. The restored image must pass e2fsck and hold every file closed before the backup began
// byte for byte (issue 7 part 5).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, realpathSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { TrackedChanges } from '../agent-core/engine/backup.js';
import { Repository } from '../agent-core/repo/repository.js';
import { LocalDirBackend } from '../drivers/storage/local-dir-backend.js';
import type { LiveTracker } from '../drivers/tracker/live-tracker.js';
import { startLiveTracker } from '../drivers/tracker/tracker-supervisor.js';
import { fileTreeHashes, populate, run, Scratch } from '../test-support/disk.js';
import { trackedChangesOf } from './trackers.js';
import { backup, restore, type AgentContext } from './operations.js';

const MiB = 1 << 20;

/** Appends and rewrites files under dir with fsync, so the device sees writes during the whole backup. */
function startWriter(dir: string): ChildProcess {
  mkdirSync(dir, { recursive: true });
  const script = [
    'i=0',
    'while :; do',
    '  dd if=/dev/urandom of="$1/w$((i % 24))" bs=64k count=$((1 + i % 8)) conv=fsync status=none',
    '  echo "line $i" >> "$1/log"',
    '  i=$((i + 1))',
    'done',
  ].join('\n');
  return spawn('bash', ['-c', script, 'writer', dir], { stdio: 'ignore' });
}

async function stopWriter(writer: ChildProcess): Promise<void> {
  if (writer.exitCode !== null || writer.signalCode !== null) return;
  const gone = new Promise((resolve) => writer.once('exit', resolve));
  writer.kill('SIGKILL');
  await gone;
}

describe('a mounted filesystem backed up while it is written', () => {
  let scratch: Scratch;
  let dev: string;
  let mnt: string;
  let repoDir: string;
  let ctx: AgentContext;
  let writer: ChildProcess | null;
  let trackers: LiveTracker[];
  /** The files closed before any backup starts, by path relative to the mount. */
  let closedFiles: Map<string, string>;

  beforeEach(async () => {
    scratch = new Scratch('strata-converge-');
    trackers = [];
    writer = null;
    dev = scratch.loop(scratch.image('disk.img', 96 * MiB));
    run('mkfs.ext4', ['-q', '-F', '-b', '4096', dev]);
    mnt = scratch.mount(dev);
    populate(path.join(mnt, 'kept'), { smallFiles: 120, largeFiles: 3, largeBytes: 3 * MiB, seed: 7 });
    closedFiles = fileTreeHashes(mnt);
    repoDir = scratch.path('repo');
    await Repository.init(new LocalDirBackend(repoDir), { encryption: 'none', password: null });
    ctx = { stateDir: scratch.path('state'), password: () => null };
  });

  afterEach(async () => {
    if (writer) await stopWriter(writer);
    for (const t of trackers) await t.close().catch(() => {});
    scratch.cleanup();
  });

  /** Restores a snapshot to a new image, checks it with e2fsck and returns its files' hashes. */
  async function restoredFiles(snapshotId: string, name: string): Promise<Map<string, string>> {
    const target = scratch.path(name);
    await restore(ctx, snapshotId, repoDir, target);
    // -f: check even though the image says clean; -n: change nothing. Throws on any problem.
    run('e2fsck', ['-fn', target]);
    const restoredMnt = scratch.mount(target, ['-o', 'loop,ro']);
    return fileTreeHashes(restoredMnt);
  }

  function expectClosedFilesIn(restored: Map<string, string>): void {
    expect(closedFiles.size).toBeGreaterThan(50);
    for (const [file, hash] of closedFiles) expect(restored.get(file), file).toBe(hash);
  }

  it('converges under a live writer with a tracker of its own, and the restore passes e2fsck with every closed file intact', async () => {
    writer = startWriter(path.join(mnt, 'live'));
    const warnings: string[] = [];
    // A budget of zero makes every pass that still finds changes take another, up to the bound.
    const summary = await backup(ctx, dev, repoDir, { convergence: { frozenBudgetBytes: 0, maxPasses: 2 }, onWarning: (m) => warnings.push(m) });
    await stopWriter(writer);

    expect(summary.mode).toBe('full');
    expect(summary.converged).toBeDefined();
    // The unfrozen passes ran (the writer never stops), then the frozen one.
    expect(summary.converged!.passes).toBe(3);
    expect(summary.converged!.rereadBytes).toBeGreaterThan(0);
    expect(warnings).toEqual([]);
    // A tracker of the backup's own is gone with it: no key to continue from.
    const manifest = await (await Repository.open(new LocalDirBackend(repoDir), () => null)).loadManifest(summary.id);
    expect(manifest.trackerEpoch ?? null).toBeNull();

    const restored = await restoredFiles(summary.id, 'restored.img');
    expectClosedFilesIn(restored);
    expect([...restored.keys()].some((f) => f.startsWith('live/'))).toBe(true);
  });

  it("keeps the agent's tracker epoch across the convergence, so the next backup is a tracked incremental", async () => {
    const tracker = await startLiveTracker(dev, { restartInitialMs: 50 });
    trackers.push(tracker);
    let lastKey = '';
    const takeChanges = async (): Promise<TrackedChanges> => {
      const t = await tracker.takeAndReset();
      lastKey = t.epochKey;
      return trackedChangesOf(t);
    };
    writer = startWriter(path.join(mnt, 'live'));
    const first = await backup(ctx, dev, repoDir, { takeChanges, convergence: { maxPasses: 3 } });
    expect(first.converged!.passes).toBeGreaterThanOrEqual(1);
    const repo = await Repository.open(new LocalDirBackend(repoDir), () => null);
    // The stored key is the epoch that began at the last frozen take, not the one the backup began with.
    expect((await repo.loadManifest(first.id)).trackerEpoch).toBe(lastKey);

    const second = await backup(ctx, dev, repoDir, { takeChanges, convergence: { maxPasses: 3 } });
    await stopWriter(writer);
    expect(second.mode).toBe('incremental');
    expect(second.tracker).toBe('live');
    // Its first pass read only what the tracker marked; the convergence passes after it re-read what
    // the writer kept changing, which over a busy backup may add up to more than the valid bytes.
    expect(second.bytesRead - second.converged!.rereadBytes).toBeLessThan(second.validBytes);

    expectClosedFilesIn(await restoredFiles(second.id, 'second.img'));
  });

  it('copies an image file that is mounted through a loop device through that device, converged, under the file’s name', async () => {
    const image = scratch.path('disk.img');
    writer = startWriter(path.join(mnt, 'live'));
    const summary = await backup(ctx, image, repoDir, { convergence: { maxPasses: 2 } });
    await stopWriter(writer);
    expect(summary.sourceName).toBe(realpathSync(image));
    expect(summary.sourceBytes).toBe(96 * MiB);
    // Read as the mounted device it is: frozen, tracked and converged, not as a file changing under the reader.
    expect(summary.converged).toBeDefined();
    expect(summary.converged!.passes).toBeGreaterThanOrEqual(1);
    expectClosedFilesIn(await restoredFiles(summary.id, 'restored-file.img'));
  });

  it('refuses an image file mounted through a loop device that shows only part of it, and stores nothing', async () => {
    const image = scratch.image('partial.img', 64 * MiB);
    const partial = scratch.loop(image, { offsetBytes: 1 * MiB });
    run('mkfs.ext4', ['-q', '-F', partial]);
    scratch.mount(partial);
    const before = run('du', ['-sb', repoDir]);
    await expect(backup(ctx, image, repoDir)).rejects.toMatchObject({
      code: 'DeviceBusy',
      message: expect.stringMatching(new RegExp(`is mounted through ${partial} \\(mounted at .*\\), which shows only part of the file; unmount it, or back up ${partial} itself\\.$`)),
    });
    expect(run('du', ['-sb', repoDir])).toBe(before);
  });

  it('refuses a mounted device when no tracker can start, and stores nothing', async () => {
    const before = run('du', ['-sb', repoDir]);
    await expect(
      backup(ctx, dev, repoDir, {
        convergence: {
          startTracker: () => Promise.reject(new Error('no probe on this machine (test)')),
        },
      }),
    ).rejects.toMatchObject({ code: 'Unsupported', message: expect.stringMatching(/is mounted .* no change tracker could start.*unmount it first/) });
    expect(run('du', ['-sb', repoDir])).toBe(before);
    // And nothing was left frozen: a write goes through.
    run('dd', ['if=/dev/zero', `of=${path.join(mnt, 'after')}`, 'bs=4k', 'count=1', 'conv=fsync', 'status=none']);
  });
});
