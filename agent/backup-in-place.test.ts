// Chunks stored in place (agent-core/engine/backup.ts): the workers write each chunk's stored bytes
// over its raw ones in the shared window and the packs are written from there, with a bound on how
// many windows unwritten packs may hold; past it chunks are copied out. Every way must store the
// same snapshot, byte for byte, on a real loop device of mixed compressible and random data.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runBackup } from '../agent-core/engine/backup.js';
import { Repository } from '../agent-core/repo/repository.js';
import { WorkerPool } from '../drivers/compute/worker-pool.js';
import { mapDisk } from '../drivers/disk/map-disk.js';
import { openSource } from '../drivers/source/open-source.js';
import { LocalDirBackend } from '../drivers/storage/local-dir-backend.js';
import { makeContent, Scratch } from '../test-support/disk.js';
import { restore, verify } from './operations.js';

const MiB = 1024 * 1024;
const DEVICE_BYTES = 64 * MiB;

describe('chunks stored in place in their windows', () => {
  let scratch: Scratch;
  let dev: string;

  beforeEach(() => {
    scratch = new Scratch('strata-in-place-');
    dev = scratch.loop(scratch.image('disk.img', DEVICE_BYTES));
    // Alternating 3 MiB of text (compresses ~10x) and 1 MiB of noise, so windows hold both kinds,
    // and small packs span many windows.
    const content = Buffer.alloc(DEVICE_BYTES);
    for (let at = 0, i = 0; at < DEVICE_BYTES; at += 4 * MiB, i++) {
      makeContent(3 * MiB, 'text', i + 1).copy(content, at);
      makeContent(1 * MiB, 'random', i + 100).copy(content, at + 3 * MiB);
    }
    execFileSync('dd', [`of=${dev}`, 'bs=1M', 'oflag=direct', 'status=none'], { input: content });
  });

  afterEach(() => scratch.cleanup());

  it.each([
    ['every chunk held in its window', undefined],
    ['one window held at most, the rest copied out', 1],
    ['no window held: every chunk copied out', 0],
  ])('%s: the snapshot verifies and restores byte for byte', async (_name, maxPinnedWindows) => {
    const repoDir = scratch.path(`repo-${maxPinnedWindows ?? 'default'}`);
    // Small packs (1 MiB) over 16 windows: windows are reused while packs holding their chunks are
    // still being written, which is what a hold must prevent (a missing one fails verify).
    await Repository.init(new LocalDirBackend(repoDir), { encryption: 'none', password: null });
    const repo = await Repository.open(new LocalDirBackend(repoDir), () => null);
    Object.assign(repo.config, { packTargetBytes: 1 * MiB });
    const source = await openSource(dev);
    const lock = await repo.lock(true, 'in-place test');
    const compute = new WorkerPool(repo.keys, { blockSizeBytes: repo.config.blockSizeBytes, zstdLevel: repo.config.zstdLevel });
    let id: string;
    try {
      const { layout, validExtents } = await mapDisk(source);
      await repo.loadIndex();
      const r = await runBackup({ source, sourceName: dev, validExtents, layout, repo, compute, parent: null, hostname: 'test', ...(maxPinnedWindows !== undefined ? { maxPinnedWindows } : {}) });
      id = r.id;
      expect(r.summary.bytesNew).toBe(DEVICE_BYTES);
      // The text compressed: far less stored than read.
      expect(r.summary.bytesStored).toBeLessThan(DEVICE_BYTES / 2);
    } finally {
      await compute.close();
      await lock.release();
      await source.close();
    }
    const ctx = { stateDir: scratch.path('state'), password: () => null };
    const report = await verify(ctx, repoDir, { readData: true });
    expect(report.problems).toEqual([]);
    const target = scratch.path(`restored-${maxPinnedWindows ?? 'default'}.img`);
    await restore(ctx, id, repoDir, target);
    expect(readFileSync(target).equals(readFileSync(dev))).toBe(true);
  });
});
