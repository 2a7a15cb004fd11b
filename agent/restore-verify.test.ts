// The read-back after a restore on a real ext4 image: every data and zero block is checked, a target
// damaged after it was written is caught at the right offset, and a mismatch fails the restore.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StrataError } from '../agent-core/api/errors.js';
import type { Progress } from '../agent-core/engine/progress.js';
import { loadExtents } from '../agent-core/engine/parent-view.js';
import { verifyRestored } from '../agent-core/engine/restore-verify.js';
import { ExtentKind } from '../agent-core/repo/format.js';
import type { MapExtent } from '../agent-core/repo/map-page.js';
import type { Manifest } from '../agent-core/repo/manifest.js';
import { Repository } from '../agent-core/repo/repository.js';
import { WorkerPool } from '../drivers/compute/worker-pool.js';
import { openSource } from '../drivers/source/open-source.js';
import { LocalDirBackend } from '../drivers/storage/local-dir-backend.js';
import { makeContent, patchFile, peekFile, run, Scratch } from '../test-support/disk.js';
import { strata } from '../test-support/cli.js';
import * as ops from './operations.js';

const MiB = 1 << 20;
const BS = 4096;

/** A copy with the same holes (a plain copy may fill them with written zeros). */
const copySparse = (from: string, to: string): void => void run('cp', ['--sparse=always', from, to]);

const blocksOf = (extents: readonly MapExtent[], kind: ExtentKind): number =>
  extents.filter((e) => e.kind === kind).reduce((n, e) => n + Math.ceil(e.lengthBytes / BS), 0);

describe('verification of a restored target', () => {
  const scratch = new Scratch();
  let repoPath: string;
  let ctx: ops.AgentContext;
  let snapshotId: string;
  let restored: string;
  let repo: Repository;
  let manifest: Manifest;
  let extents: readonly MapExtent[];
  let compute: WorkerPool;

  /** Verifies a file with verifyRestored directly, as the restore does after reopening its target. */
  async function verifyFile(file: string, extra: { signal?: AbortSignal; onProgress?: (p: Progress) => void } = {}) {
    const source = await openSource(file);
    try {
      return await verifyRestored({ repo, compute, manifest, source, ...extra });
    } finally {
      await source.close();
    }
  }

  beforeAll(async () => {
    // Files spread over several 4 MiB windows; the free space and the untouched inode tables of a
    // sparse image give unmapped and zero extents.
    const tree = scratch.path('tree');
    mkdirSync(path.join(tree, 'docs'), { recursive: true });
    for (let i = 0; i < 30; i++) writeFileSync(path.join(tree, 'docs', `note-${i}.txt`), makeContent(5000 + i * 700, 'text', i + 1));
    for (let i = 0; i < 4; i++) writeFileSync(path.join(tree, `blob-${i}.bin`), makeContent(5 * MiB, 'random', 20 + i));
    const image = scratch.image('disk.img', 96 * MiB);
    run('mkfs.ext4', ['-q', '-F', '-b', '4096', '-d', tree, image]);
    repoPath = scratch.path('repo');
    ctx = { stateDir: scratch.path('state'), password: () => null };
    await ops.initRepository(repoPath, { encryption: 'none', password: null });
    snapshotId = (await ops.backup(ctx, image, repoPath)).id;
    repo = await Repository.open(new LocalDirBackend(repoPath), () => null);
    await repo.loadIndex();
    manifest = await repo.loadManifest(snapshotId);
    extents = await loadExtents(repo, manifest);
    compute = new WorkerPool(repo.keys, { blockSizeBytes: BS, zstdLevel: 1, threads: 2 });
    restored = scratch.path('restored.img');
  }, 120_000);

  afterAll(async () => {
    await compute?.close();
    scratch.cleanup();
  });

  it('a restore reads the target back and finds every data and zero block of the snapshot as stored', async () => {
    const phases: Progress[] = [];
    const r = await ops.restore({ ...ctx, onProgress: (p) => phases.push(p) }, snapshotId, repoPath, restored);
    const dataBlocks = blocksOf(extents, ExtentKind.data);
    const zeroBlocks = blocksOf(extents, ExtentKind.zero);
    expect(dataBlocks).toBeGreaterThan(5000); // 20 MiB of files and the metadata
    expect(zeroBlocks).toBeGreaterThan(0);
    expect(r.verification).not.toBeNull();
    expect(r.verification!.blocksChecked).toBe(dataBlocks + zeroBlocks);
    expect(r.verification!.mismatches).toBe(0);
    // Data is read back; the zero extents are holes of the restored file and are not.
    expect(r.verification!.bytesRead).toBeGreaterThanOrEqual(dataBlocks * BS);
    expect(r.verification!.bytesRead).toBeLessThan((dataBlocks + zeroBlocks) * BS);
    const verify = phases.filter((p) => p.phase === 'verify');
    expect(phases.findIndex((p) => p.phase === 'verify')).toBeGreaterThan(phases.findLastIndex((p) => p.phase === 'restore'));
    expect(verify.at(-1)!.bytesDone).toBe(verify.at(-1)!.bytesTotal);
  });

  it('skips the read-back when asked to, and says so with a null verification', async () => {
    const r = await ops.restore(ctx, snapshotId, repoPath, scratch.path('unverified.img'), { verify: false });
    expect(r.verification).toBeNull();
    expect(r.bytesWritten).toBe(blocksOf(extents, ExtentKind.data) * BS);
  });

  it('names the first block that a target damaged after the restore differs in', async () => {
    const copy = scratch.path('damaged.img');
    copySparse(restored, copy);
    const data = extents.filter((e) => e.kind === ExtentKind.data && e.lengthBytes >= 4 * BS);
    // One byte deep inside a late extent, then one inside an earlier one: the earlier is reported.
    const late = data[data.length - 1]!.startBytes + 3 * BS + 100;
    const early = data[Math.floor(data.length / 2)]!.startBytes + 17;
    expect(early).toBeLessThan(late - BS);
    for (const at of [late, early]) patchFile(copy, at, Buffer.from([peekFile(copy, at, 1)[0]! ^ 0x5a]));
    const v = await verifyFile(copy);
    expect(v.mismatches).toBe(2);
    expect(v.firstMismatchBytes).toBe(early - (early % BS));
    expect(v.blocksChecked).toBe(blocksOf(extents, ExtentKind.data) + blocksOf(extents, ExtentKind.zero));
  });

  it('catches a zero extent that reads back non-zero', async () => {
    const copy = scratch.path('zero-damaged.img');
    copySparse(restored, copy);
    const zero = extents.find((e) => e.kind === ExtentKind.zero && e.lengthBytes >= 2 * BS)!;
    const at = zero.startBytes + BS + 5; // the second block of the extent, now allocated in the copy
    patchFile(copy, at, Buffer.from([1]));
    const v = await verifyFile(copy);
    expect(v.mismatches).toBe(1);
    expect(v.firstMismatchBytes).toBe(zero.startBytes + BS);
    // Only what the copy stores is read: the patched block besides the data.
    expect(v.bytesRead).toBeLessThan(blocksOf(extents, ExtentKind.data) * BS + 2 * BS + 256 * 1024);
  });

  it('leaves unmapped extents alone', async () => {
    const copy = scratch.path('unmapped-written.img');
    copySparse(restored, copy);
    const unmapped = extents.find((e) => e.kind === ExtentKind.unmapped && e.lengthBytes >= BS)!;
    patchFile(copy, unmapped.startBytes, Buffer.from('not part of the snapshot'));
    expect((await verifyFile(copy)).mismatches).toBe(0);
  });

  it('stops with Cancelled when its signal is aborted, before or during the read-back', async () => {
    await expect(verifyFile(restored, { signal: AbortSignal.abort() })).rejects.toMatchObject({ code: 'Cancelled' });
    const controller = new AbortController();
    let windows = 0;
    const err = (await verifyFile(restored, {
      signal: controller.signal,
      onProgress: () => {
        windows++;
        controller.abort();
      },
    }).catch((e: unknown) => e)) as StrataError;
    expect(err.code).toBe('Cancelled');
    expect(err.message).toMatch(/not verified/);
    expect(windows).toBeLessThan(manifest.summary.sourceBytes / (4 * MiB));
  });

  it('refuses a target smaller than the snapshot', async () => {
    const short = scratch.path('short.img');
    copySparse(restored, short);
    run('truncate', ['-s', String(manifest.summary.sourceBytes - BS), short]);
    await expect(verifyFile(short)).rejects.toMatchObject({ code: 'Corrupt' });
  });

  it('fails the restore with Corrupt and the first differing offset when the read-back differs (CLI exit 4)', async () => {
    // A damaged digests blob: restore writes the right bytes (chunks are checked against their
    // ids), but they no longer match what the snapshot says the disk held.
    const damaged = scratch.path('repo-damaged');
    run('cp', ['-a', repoPath, damaged]);
    const first = extents.find((e) => e.kind === ExtentKind.data)!;
    const entry = repo.index.get(repo.digestsBlobId(first.chunkId!))!;
    const at = entry.offset + (first.offsetInChunkBytes! / BS) * 16; // stored plain: unencrypted, uncompressed
    const pack = path.join(damaged, 'data', entry.packId.slice(0, 2), entry.packId);
    patchFile(pack, at, Buffer.from([peekFile(pack, at, 1)[0]! ^ 0xff]));

    const target = scratch.path('from-damaged.img');
    const r = strata(['restore', snapshotId.slice(0, 12), '--repo', damaged, '--target', target, '--json'], { STRATA_STATE_DIR: ctx.stateDir });
    expect(r.status, r.stdout + r.stderr).toBe(4);
    const error = r.lines.find((l) => l.type === 'error')!;
    expect(error.code).toBe('Corrupt');
    expect(error.message).toContain(`at byte ${first.startBytes};`);
    expect(error.message).toContain('strata verify --read-data');

    const ok = strata(['restore', snapshotId.slice(0, 12), '--repo', damaged, '--target', scratch.path('unchecked.img'), '--no-verify', '--json'], { STRATA_STATE_DIR: ctx.stateDir });
    expect(ok.status, ok.stderr).toBe(0);
    expect(r.lines.some((l) => l.type === 'progress' && l.phase === 'verify')).toBe(true);
    expect(ok.lines.find((l) => l.type === 'summary')!.verification).toBeNull();
  }, 60_000);
});
