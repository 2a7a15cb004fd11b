// The agent's operations: each user-visible action (init, inspect, backup, snapshots, restore,
// verify, catalog rebuild) composed from the engine and the drivers. The CLI calls these today;
// the console's API will call the same functions.
import { open, realpath } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { StrataError, toStrataError } from '../agent-core/api/errors.js';
import type { SnapshotSummary } from '../agent-core/api/snapshot.js';
import { Catalog } from '../agent-core/catalog/catalog.js';
import { runBackup, checkSourceSize, type ParentSnapshot, type TrackedChanges } from '../agent-core/engine/backup.js';
import type { Progress } from '../agent-core/engine/progress.js';
import { runRestore } from '../agent-core/engine/restore.js';
import { verifyRestored } from '../agent-core/engine/restore-verify.js';
import { runVerify, type VerifyReport } from '../agent-core/engine/verify.js';
import { summaryOf } from '../agent-core/repo/manifest.js';
import { Repository } from '../agent-core/repo/repository.js';
import type { SnapshotDiff, SnapshotMap, TargetCheck } from '../agent-core/api/console-config.js';
import type { DiskMap as DiskMapView } from '../agent-core/api/extents.js';
import { loadExtents } from '../agent-core/engine/parent-view.js';
import { snapshotsToForget } from '../agent-core/engine/retention.js';
import { differingExtents, storedExtents } from '../agent-core/engine/snapshot-diff.js';
import { alignExtents, totalBytes } from '../agent-core/extents.js';
import type { Manifest } from '../agent-core/repo/manifest.js';
import type { BlockCompute } from '../agent-core/engine/compute.js';
import { WorkerPool } from '../drivers/compute/worker-pool.js';
import { mountedFilesystems } from '../drivers/source/freeze.js';
import { mountedLoopOf, startConsistentCopy, type ConsistentCopy, type ConsistentCopyOptions } from './consistent-copy.js';
import type { ComputeLease, WarmRepositories } from './warm-repositories.js';
import { checkTarget } from '../drivers/source/check-target.js';
import { mapDisk } from '../drivers/disk/map-disk.js';
import { openSource } from '../drivers/source/open-source.js';
import { openTarget } from '../drivers/source/open-target.js';
import { LocalDirBackend } from '../drivers/storage/local-dir-backend.js';
import { fadvise } from '../native/index.js';

/** How long an operation waits for another one's repository lock before it gives up (Locked). */
const LOCK_WAIT_MS = 30_000;

/** The granularity of the maps the console draws: the repository's change-detection block. */
const BLOCK_BYTES = 4096;

export interface AgentContext {
  /** Holds the catalog. */
  readonly stateDir: string;
  /** Called only when an encrypted repository is opened. */
  readonly password: () => string | null;
  readonly onProgress?: (p: Progress) => void;
  readonly signal?: AbortSignal;
  /** The agent queue's id of the job this operation runs as, recorded with its catalog row. */
  readonly jobUuid?: string;
  /** The agent's memos and compute pools kept between jobs; absent in the CLI, which starts cold each run. */
  readonly warm?: WarmRepositories;
}

export { defaultStateDir } from './state-dir.js';

async function withCatalog<T>(ctx: AgentContext, fn: (c: Catalog) => Promise<T>): Promise<T> {
  const catalog = await Catalog.open(path.join(ctx.stateDir, 'catalog.sqlite'));
  try {
    // Jobs whose process died (kill -9, power loss) would otherwise show as running forever.
    await catalog.markAbandonedJobs();
    return await fn(catalog);
  } finally {
    await catalog.close();
  }
}

/** Runs fn as a catalog job: recorded as running, then succeeded or failed with its error. */
async function asJob<T>(
  ctx: AgentContext,
  catalog: Catalog,
  kind: 'backup' | 'restore' | 'verify' | 'catalog-rebuild',
  repoId: string | null,
  sourceName: string | null,
  fn: (jobId: number) => Promise<T>,
): Promise<T> {
  const jobId = await catalog.createJob({ kind, repoId, sourceName, uuid: ctx.jobUuid ?? null });
  try {
    const result = await fn(jobId);
    await catalog.finishJob(jobId, { state: 'succeeded', summary: result });
    return result;
  } catch (err) {
    const e = toStrataError(err);
    await catalog.finishJob(jobId, { state: e.code === 'Cancelled' ? 'cancelled' : 'failed', error: { code: e.code, message: e.message } });
    throw e;
  }
}

/** The value of a settled promise, or its error thrown. */
function settled<T>(r: PromiseSettledResult<T>): T {
  if (r.status === 'rejected') throw r.reason;
  return r.value;
}

async function openRepository(ctx: AgentContext, repoPath: string): Promise<Repository> {
  return ctx.warm ? ctx.warm.open(repoPath, ctx.password) : Repository.open(new LocalDirBackend(repoPath), ctx.password);
}

/** The agent's warm pool of this repository, or (in the CLI) a new one stopped after the operation. */
function computeFor(ctx: AgentContext, repo: Repository): ComputeLease {
  if (ctx.warm) return ctx.warm.compute(repo);
  const pool = new WorkerPool(repo.keys, { blockSizeBytes: repo.config.blockSizeBytes, zstdLevel: repo.config.zstdLevel });
  return { compute: pool, release: () => pool.close() };
}

/** Runs fn with a compute pool; only an operation that succeeded hands a warm pool back for reuse. */
async function withCompute<T>(ctx: AgentContext, repo: Repository, fn: (compute: BlockCompute) => Promise<T>): Promise<T> {
  const lease = computeFor(ctx, repo);
  let ok = false;
  try {
    const result = await fn(lease.compute);
    ok = true;
    return result;
  } finally {
    await lease.release(ok);
  }
}

export async function initRepository(repoPath: string, options: { encryption: 'none' | 'aes-256-gcm'; password: string | null; fullEvery?: number }) {
  const repo = await Repository.init(new LocalDirBackend(repoPath), options);
  return { id: repo.id, path: repo.backend.location, encryption: repo.config.encryption, fullEvery: repo.config.fullEvery };
}

export async function inspectSource(sourcePath: string) {
  return (await diskMap(sourcePath)).layout;
}

/** The layout and valid map of a disk as the API carries them (run-length extents). */
export async function diskMap(sourcePath: string): Promise<DiskMapView> {
  const source = await openSource(sourcePath);
  try {
    const { layout, validExtents } = await mapDisk(source);
    // Whole blocks, as a backup reads them: the map shows exactly what the next backup would read.
    const used = alignExtents(validExtents, BLOCK_BYTES, source.sizeBytes);
    return { path: sourcePath, layout, blockSize: BLOCK_BYTES, used: used.map((e) => [e.startBytes, e.lengthBytes] as const) };
  } finally {
    await source.close();
  }
}

/** A source as the console lists it: its layout, and the name its snapshots carry (one open of the source). */
export async function describeSourcePath(sourcePath: string): Promise<{ layout: DiskMapView['layout']; sourceName: string }> {
  const source = await openSource(sourcePath);
  try {
    const { layout } = await mapDisk(source);
    return { layout, sourceName: await sourceNameOf(sourcePath, source.kind) };
  } finally {
    await source.close();
  }
}

/** The regions a snapshot holds, read from its map pages alone. */
export async function snapshotMap(ctx: AgentContext, repoPath: string, ref: string): Promise<SnapshotMap> {
  return withSnapshots(ctx, repoPath, [ref], async (repo, [one]) => ({
    snapshotId: one!.id,
    sizeBytes: one!.manifest.summary.sourceBytes,
    blockSize: one!.manifest.blockSizeBytes,
    stored: storedExtents(await loadExtents(repo, one!.manifest)).map((e) => [e.startBytes, e.lengthBytes] as const),
  }));
}

/** Where two snapshots' content differs, from their map pages alone. */
export async function snapshotDiff(ctx: AgentContext, repoPath: string, fromRef: string, toRef: string): Promise<SnapshotDiff> {
  return withSnapshots(ctx, repoPath, [fromRef, toRef], async (repo, [a, b]) => {
    const changed = differingExtents(await loadExtents(repo, a!.manifest), await loadExtents(repo, b!.manifest), Math.min(a!.manifest.blockSizeBytes, b!.manifest.blockSizeBytes));
    return { from: a!.id, to: b!.id, changed: changed.map((e) => [e.startBytes, e.lengthBytes] as const), changedBytes: totalBytes(changed) };
  });
}

async function withSnapshots<T>(ctx: AgentContext, repoPath: string, refs: string[], fn: (repo: Repository, snapshots: { id: string; manifest: Manifest }[]) => Promise<T>): Promise<T> {
  const repo = await openRepository(ctx, repoPath);
  const lock = await repo.lock(false, 'strata snapshot map', LOCK_WAIT_MS);
  try {
    await repo.loadIndex();
    const snapshots = [];
    for (const ref of refs) {
      const id = await resolveSnapshot(repo, ref);
      snapshots.push({ id, manifest: await repo.loadManifest(id) });
    }
    return await fn(repo, snapshots);
  } finally {
    await lock.release();
  }
}

/** What a restore of this snapshot would need of a target, and what stands in its way. */
export async function checkRestoreTarget(ctx: AgentContext, repoPath: string, ref: string, targetPath: string): Promise<TargetCheck> {
  const neededBytes = await withSnapshots(ctx, repoPath, [ref], async (_repo, [one]) => one!.manifest.summary.sourceBytes);
  return checkTarget(targetPath, neededBytes);
}

/** Brings the catalog up to date with the repository (the repository is the truth). */
async function syncCatalog(catalog: Catalog, repo: Repository): Promise<SnapshotSummary[]> {
  await catalog.upsertRepository({ id: repo.id, path: repo.backend.location });
  const inRepo = new Set(await repo.listSnapshotIds());
  const known = await catalog.snapshotIds(repo.id);
  const gone = [...known].filter((id) => !inRepo.has(id));
  if (gone.length > 0) await catalog.removeSnapshots(repo.id, gone);
  for (const id of inRepo) {
    if (!known.has(id)) await catalog.recordSnapshot(repo.id, summaryOf(id, await repo.loadManifest(id)));
  }
  return catalog.listSnapshots(repo.id);
}

async function sourceNameOf(sourcePath: string, kind: 'file' | 'block-device'): Promise<string> {
  // Image files are named by their real path; devices by the path given (by-id links stay stable).
  return kind === 'file' ? realpath(sourcePath) : path.resolve(sourcePath);
}

export interface BackupOptions {
  tags?: string[];
  full?: boolean;
  /**
   * The source's live tracker: called once, under the repository lock right before the engine
   * reads, to take the changes since the previous take (null when no tracker runs). A backup that
   * fails after the take leaves the parent's epoch key stored, so the next one is a resync.
   */
  takeChanges?: () => Promise<TrackedChanges | null>;
  /** Told what a person should know about this backup; also recorded as a warning event of its job. */
  onWarning?: (message: string) => void;
  /** Tuning of the convergence of a mounted source (tests shrink the budget to force passes). */
  convergence?: Pick<ConsistentCopyOptions, 'maxPasses' | 'frozenBudgetBytes' | 'startTracker'>;
  /**
   * The chain limit (agent-core/engine/retention.ts), read from the backup's catalog and applied
   * under its lock once its snapshot is recorded; `onForgotten` hears the ids forgotten. A failure
   * to apply it is a warning of the backup, which stands.
   */
  retention?: { chainLimitOf: (catalog: Catalog) => Promise<number>; onForgotten: (ids: readonly string[]) => void };
}

export async function backup(ctx: AgentContext, sourcePath: string, repoPath: string, options: BackupOptions = {}) {
  // Everything that can refuse the input happens before the repository is touched.
  let source = await openSource(sourcePath);
  const nameKind = source.kind;
  try {
    // An image file mounted through a loop device is a disk in use: it is read through that device.
    let devicePath = sourcePath;
    const loop = source.kind === 'file' ? await mountedLoopOf(sourcePath, source.sizeBytes) : null;
    if (loop) {
      const device = await openSource(loop.device);
      await source.close();
      source = device;
      devicePath = loop.device;
    }
    // Independent, so side by side; all settle before anything goes on (the source stays open
    // until its map is read), and the disk's own errors come first. A device with mounted
    // filesystems is copied consistently (consistent-copy.ts); image files and unmounted devices
    // are read as they are.
    const [mapped, mountedOf, opened, named] = await Promise.allSettled([
      mapDisk(source),
      source.kind === 'block-device' ? mountedFilesystems(devicePath) : Promise.resolve([]),
      openRepository(ctx, repoPath),
      sourceNameOf(sourcePath, nameKind),
    ]);
    let { layout, validExtents } = settled(mapped);
    const mounted = settled(mountedOf);
    const repo = settled(opened);
    const sourceName = settled(named);
    // Started now, so the workers load their modules while the catalog and the lock are opened
    // (in the agent, usually the warm pool of the previous job).
    return await withCompute(ctx, repo, (compute) =>
      withCatalog(ctx, async (catalog) => {
        const snapshots = await syncCatalog(catalog, repo);
        const sourceId = repo.sourceId(sourceName);
        const latest = snapshots.filter((s) => s.sourceId === sourceId).at(-1) ?? null;
        const parent: ParentSnapshot | null = latest ? { id: latest.id, manifest: await repo.loadManifest(latest.id) } : null;
        checkSourceSize(sourceName, source.sizeBytes, parent, options.full ?? false);
        return asJob(ctx, catalog, 'backup', repo.id, sourceName, async (jobId) => {
          const lock = await repo.lock(true, `strata backup ${sourceName}`, LOCK_WAIT_MS);
          const warnings: string[] = [];
          const warn = (message: string): void => {
            warnings.push(message);
            options.onWarning?.(message);
          };
          let copy: ConsistentCopy | null = null;
          try {
            await Promise.all([repo.backend.cleanTemp(), repo.loadIndex()]);
            let tracked: TrackedChanges | null;
            if (mounted.length > 0) {
              copy = await startConsistentCopy(devicePath, mounted, { takeChanges: options.takeChanges, onWarning: warn, ...options.convergence });
              tracked = copy.initial;
              // Mapped again after the freeze flushed the filesystems: blocks allocated before it are
              // in this map, blocks allocated after it are in the tracker's next epoch.
              ({ layout, validExtents } = await mapDisk(source));
            } else {
              tracked = options.takeChanges ? await options.takeChanges() : null;
            }
            const { summary } = await runBackup({
              source,
              sourceName,
              validExtents,
              layout,
              repo,
              compute,
              parent,
              full: options.full ?? false,
              tracked,
              tags: options.tags ?? [],
              hostname: os.hostname(),
              onWarning: warn,
              ...(copy ? { converge: copy.converge } : {}),
              ...(ctx.onProgress ? { onProgress: ctx.onProgress } : {}),
              ...(ctx.signal ? { signal: ctx.signal } : {}),
            });
            await catalog.recordSnapshot(repo.id, summary);
            if (options.retention) await applyChainLimit(repo, catalog, options.retention, warn);
            for (const message of warnings) await catalog.addEvent(jobId, 'warning', message);
            return summary;
          } finally {
            await copy?.close();
            await lock.release();
          }
        });
      }),
    );
  } finally {
    await source.close();
  }
}

/** Forgets snapshots (ids, prefixes or `latest`) under the exclusive lock; returns the ids removed. */
export async function forgetSnapshots(ctx: AgentContext, repoPath: string, refs: readonly string[]): Promise<string[]> {
  const repo = await openRepository(ctx, repoPath);
  const lock = await repo.lock(true, 'strata forget', LOCK_WAIT_MS);
  try {
    const ids: string[] = [];
    for (const ref of refs) ids.push(await resolveSnapshot(repo, ref));
    const unique = [...new Set(ids)];
    for (const id of unique) await repo.forgetSnapshot(id);
    await withCatalog(ctx, async (catalog) => {
      await catalog.upsertRepository({ id: repo.id, path: repo.backend.location });
      await catalog.removeSnapshots(repo.id, unique);
    });
    return unique;
  } finally {
    await lock.release();
  }
}

/**
 * Forgets what the chain limit allows, under an exclusive lock the caller holds (a backup's): its
 * catalog is synced with the repository first, so snapshots other processes made or forgot count.
 */
async function applyChainLimit(repo: Repository, catalog: Catalog, retention: NonNullable<BackupOptions['retention']>, warn: (message: string) => void): Promise<void> {
  try {
    const doomed = snapshotsToForget(await syncCatalog(catalog, repo), await retention.chainLimitOf(catalog));
    if (doomed.length === 0) return;
    for (const id of doomed) await repo.forgetSnapshot(id);
    await catalog.removeSnapshots(repo.id, doomed);
    retention.onForgotten(doomed);
  } catch (err) {
    warn(`The chain limit could not be applied to ${repo.backend.location}: ${toStrataError(err).message}`);
  }
}

export async function listSnapshots(ctx: AgentContext, repoPath: string): Promise<SnapshotSummary[]> {
  const repo = await openRepository(ctx, repoPath);
  const lock = await repo.lock(false, 'strata snapshots', LOCK_WAIT_MS);
  try {
    return await withCatalog(ctx, (catalog) => syncCatalog(catalog, repo));
  } finally {
    await lock.release();
  }
}

/** Resolves `latest` or a unique id prefix (at least 4 hex digits) against the repository. */
export async function resolveSnapshot(repo: Repository, ref: string): Promise<string> {
  const ids = await repo.listSnapshotIds();
  if (ref === 'latest') {
    if (ids.length === 0) throw new StrataError('NotFound', 'The repository has no snapshots yet.');
    let best: { id: string; at: string } | null = null;
    for (const id of ids) {
      const at = (await repo.loadManifest(id)).summary.createdAt;
      if (!best || at > best.at) best = { id, at };
    }
    return best!.id;
  }
  if (!/^[0-9a-f]{4,64}$/.test(ref)) throw new StrataError('InvalidInput', `"${ref}" is not a snapshot id; give at least 4 hex digits of one (see \`strata snapshots\`), or "latest".`);
  const matches = ids.filter((id) => id.startsWith(ref));
  if (matches.length === 0) throw new StrataError('NotFound', `No snapshot id starts with ${ref}; list them with \`strata snapshots --repo …\`.`);
  if (matches.length > 1) throw new StrataError('InvalidInput', `${matches.length} snapshots start with ${ref}; give more digits.`);
  return matches[0]!;
}

/**
 * Restores a snapshot onto a target, then (unless `verify` is false) reads the target back and
 * compares every data and zero block with the snapshot's digests. A target that differs fails the
 * restore with `Corrupt`: a job that ends "succeeded" must mean the target holds the snapshot.
 */
export async function restore(ctx: AgentContext, snapshotRef: string, repoPath: string, targetPath: string, options: { force?: boolean; verify?: boolean } = {}) {
  const repo = await openRepository(ctx, repoPath);
  const lock = await repo.lock(false, `strata restore ${snapshotRef}`, LOCK_WAIT_MS);
  try {
    const snapshotId = await resolveSnapshot(repo, snapshotRef);
    const manifest = await repo.loadManifest(snapshotId);
    await repo.loadIndex();
    return await withCatalog(ctx, (catalog) =>
      asJob(ctx, catalog, 'restore', repo.id, manifest.summary.sourceName, async () => {
        const target = await openTarget(targetPath, { sizeBytes: manifest.summary.sourceBytes, force: options.force ?? false });
        let targetOpen = true;
        const lease = computeFor(ctx, repo);
        const { compute } = lease;
        let ok = false;
        try {
          const progress = {
            ...(ctx.onProgress ? { onProgress: ctx.onProgress } : {}),
            ...(ctx.signal ? { signal: ctx.signal } : {}),
          };
          const r = await runRestore({ repo, compute, snapshotId, manifest, target, ...progress });
          targetOpen = false;
          await target.close();
          if (options.verify === false) {
            ok = true;
            return { snapshot: snapshotId, target: targetPath, bytesWritten: r.bytesWritten, durationMs: r.durationMs, verification: null };
          }
          // runRestore synced the target; dropping its cached pages makes the read-back come from the
          // disk, not from the memory the restore just wrote. Devices are read with O_DIRECT anyway.
          if (target.kind === 'file') {
            const handle = await open(targetPath, 'r');
            try {
              fadvise(handle.fd, 0, 0, 'dontneed');
            } catch {
              // Advice only: without it the read-back still proves what the restore wrote.
            } finally {
              await handle.close();
            }
          }
          const source = await openSource(targetPath);
          const v = await verifyRestored({ repo, compute, manifest, source, ...progress }).finally(() => source.close());
          if (v.mismatches > 0) {
            throw new StrataError(
              'Corrupt',
              `The restored ${targetPath} differs from snapshot ${snapshotId.slice(0, 12)} in ${v.mismatches} block(s), the first at byte ${v.firstMismatchBytes}; do not use it, run \`strata verify --read-data\` to check the repository, then restore again.`,
            );
          }
          ok = true;
          return {
            snapshot: snapshotId,
            target: targetPath,
            bytesWritten: r.bytesWritten,
            durationMs: r.durationMs,
            verification: { blocksChecked: v.blocksChecked, bytesRead: v.bytesRead, mismatches: v.mismatches, durationMs: v.durationMs },
          };
        } finally {
          await lease.release(ok);
          if (targetOpen) await target.close();
        }
      }),
    );
  } finally {
    await lock.release();
  }
}

export async function verify(ctx: AgentContext, repoPath: string, options: { readData?: boolean } = {}): Promise<VerifyReport> {
  const repo = await openRepository(ctx, repoPath);
  return withCatalog(ctx, (catalog) =>
    asJob(ctx, catalog, 'verify', repo.id, null, async () => {
      const lock = await repo.lock(false, 'strata verify', LOCK_WAIT_MS);
      try {
        return await withCompute(ctx, repo, (compute) => runVerify({ repo, compute, readData: options.readData ?? false, ...(ctx.onProgress ? { onProgress: ctx.onProgress } : {}) }));
      } finally {
        await lock.release();
      }
    }),
  );
}

export async function rebuildCatalog(ctx: AgentContext, repoPath: string): Promise<{ repository: string; snapshots: number }> {
  const repo = await openRepository(ctx, repoPath);
  const lock = await repo.lock(false, 'strata catalog rebuild', LOCK_WAIT_MS);
  try {
    const summaries: SnapshotSummary[] = [];
    for (const id of await repo.listSnapshotIds()) summaries.push(summaryOf(id, await repo.loadManifest(id)));
    await withCatalog(ctx, (catalog) => catalog.replaceRepositorySnapshots({ id: repo.id, path: repo.backend.location }, summaries));
    return { repository: repo.id, snapshots: summaries.length };
  } finally {
    await lock.release();
  }
}
