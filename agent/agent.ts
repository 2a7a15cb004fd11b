// The long-lived agent: the job queue and the handlers of every API channel, composed once and
// served by any number of transports (the local socket, Electron IPC). Closing it cancels its jobs.
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Settings } from '../agent-core/api/console-config.js';
import { API_VERSION, type AgentEvent, type Handlers } from '../agent-core/api/contract.js';
import { StrataError } from '../agent-core/api/errors.js';
import { AUTOMATIC_TAG } from '../agent-core/engine/retention.js';
import { JobResultSchema, type Job, type JobId } from '../agent-core/api/job.js';
import { Catalog, type CatalogJob, type CatalogRepository, type ConfiguredSourceRow } from '../agent-core/catalog/catalog.js';
import { chainLimitOf, describeSources, readSettings, updateSettings, withCatalog } from './console-config.js';
import { changeDemoDisk, createDemoDisk } from './demo-disk.js';
import type { LiveTracker } from '../drivers/tracker/live-tracker.js';
import { JobQueue } from './jobs.js';
import { WarmRepositories } from './warm-repositories.js';
import { assertTrackable, SourceTrackers } from './trackers.js';
import { assertSchedule, Scheduler, systemClock, type ScheduleClock, type ScheduledSource } from './scheduler.js';
import {
  backup,
  checkRestoreTarget,
  forgetSnapshots,
  diskMap,
  initRepository,
  inspectSource,
  listSnapshots,
  restore,
  snapshotDiff,
  snapshotMap,
  verify,
  type AgentContext,
} from './operations.js';

export interface AgentOptions {
  readonly stateDir: string;
  /** Opens encrypted repositories; defaults to STRATA_PASSWORD. */
  readonly password?: () => string | null;
  /** The repository calls use when they name none and the settings name none; default STATE_DIR/repository. */
  readonly defaultRepository?: string;
  /** The scheduler's clock; the system's by default. */
  readonly clock?: ScheduleClock;
  /** One line per scheduler decision worth noting; default stderr. */
  readonly log?: (line: string) => void;
  /** Starts a live tracker on a block device (sources with tracking on); the supervised tracker by default. */
  readonly startTracker?: (devicePath: string) => Promise<LiveTracker>;
}

export interface Agent {
  readonly stateDir: string;
  readonly handlers: Handlers;
  readonly jobs: JobQueue;
  readonly scheduler: Scheduler;
  /** The live trackers of the sources with tracking on. */
  readonly trackers: SourceTrackers;
  /** Repository memos and compute pools kept warm between jobs. */
  readonly warm: WarmRepositories;
  onEvent(listener: (e: AgentEvent) => void): () => void;
  close(): Promise<void>;
}

/** The version in package.json, found from here in the sources (agent/) and in the build (dist/agent/). */
function agentVersion(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let up = 0; up < 3; up++, dir = path.dirname(dir)) {
    try {
      const pkg = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'strata' && pkg.version) return pkg.version;
    } catch {
      // not here; look one level up
    }
  }
  return 'unknown';
}

/** Past jobs shown next to this agent's own, newest first. */
const HISTORY_JOBS = 50;

/** A job of an earlier agent or of the CLI, as the API shows jobs; null for kinds the queue does not run. */
function jobOfCatalog(row: CatalogJob, repositories: readonly CatalogRepository[]): Job | null {
  if (row.kind === 'catalog-rebuild') return null;
  const result = row.summary === null ? null : JobResultSchema.safeParse(wrapSummary(row.kind, row.summary));
  return {
    id: (row.uuid ?? randomUUIDFromRow(row.id)) as JobId,
    kind: row.kind,
    state: row.state,
    repo: repositories.find((r) => r.id === row.repoId)?.path ?? row.repoId ?? '',
    source: row.sourceName,
    queuedAt: row.startedAt,
    startedAt: row.startedAt,
    finishedAt: row.finishedAt,
    progress: null,
    error: row.error ? { code: row.error.code, message: row.error.message, retryable: false } : null,
    result: result?.success ? result.data : null,
  };
}

function wrapSummary(kind: 'backup' | 'restore' | 'verify', summary: unknown): unknown {
  if (kind === 'backup') return { kind, snapshot: summary };
  if (kind === 'restore') return { kind, restore: summary };
  return { kind, report: summary };
}

/** A stable UUID-shaped id for a catalog row that has none (jobs the CLI ran). */
function randomUUIDFromRow(id: number): string {
  return `00000000-0000-4000-8000-${id.toString(16).padStart(12, '0').slice(-12)}`;
}

export async function openAgent(options: AgentOptions): Promise<Agent> {
  const { stateDir } = options;
  const defaultRepository = path.resolve(options.defaultRepository ?? path.join(stateDir, 'repository'));
  const password = options.password ?? (() => process.env.STRATA_PASSWORD ?? null);
  // Repository memos and compute pools kept between jobs (warm-repositories.ts), stopped on close.
  const warm = new WarmRepositories();
  const ctx: AgentContext = { stateDir, password, warm };
  // Jobs a crashed agent left "running" are marked failed before this one lists any.
  const catalog = await Catalog.open(path.join(stateDir, 'catalog.sqlite'));
  try {
    await catalog.markAbandonedJobs();
  } finally {
    await catalog.close();
  }
  const jobs = new JobQueue();
  const version = agentVersion();
  const listeners = new Set<(e: AgentEvent) => void>();
  const emit = (event: AgentEvent): void => {
    for (const listener of listeners) {
      try {
        listener(event);
      } catch {
        // One failing transport must not stop the others.
      }
    }
  };
  const log = options.log ?? ((line: string) => process.stderr.write(`strata agent: ${line}\n`));
  const trackers = new SourceTrackers({ log, ...(options.startTracker ? { start: options.startTracker } : {}) });
  const sourceRows = (): Promise<ConfiguredSourceRow[]> => withCatalog(stateDir, (c) => c.listConfiguredSources());
  const scheduled = (row: ConfiguredSourceRow): ScheduledSource => ({
    id: row.id,
    schedule: row.schedule,
    lastRunAt: row.lastRunAt ? new Date(row.lastRunAt) : null,
    addedAt: new Date(row.addedAt),
  });
  const scheduler = new Scheduler({
    clock: options.clock ?? systemClock,
    sources: async () => (await sourceRows()).map(scheduled),
    paused: async () => (await settings()).schedulesPaused,
    isRunning: (sourceId) => runningSources.has(sourceId),
    startBackup: async (sourceId, why) => {
      const row = (await sourceRows()).find((r) => r.id === sourceId);
      if (!row) return;
      log(`starting the ${why === 'catch-up' ? 'catch-up' : 'scheduled'} backup of ${row.label} (${row.path})`);
      await queueBackup(row.path, (await settings()).repository.path, [AUTOMATIC_TAG], false);
    },
    log,
  });
  /** Configured sources with a backup queued or running, by id. */
  const runningSources = new Map<string, JobId>();
  const changed = (): void => {
    emit({ event: 'sources:changed', payload: {} });
    void scheduler.poke();
  };
  const unsubscribeJobs = jobs.subscribe((event) => {
    emit(event);
    if (event.event === 'jobs:finished') {
      for (const [sourceId, jobId] of runningSources) if (jobId === event.payload.jobId) runningSources.delete(sourceId);
      changed();
    }
  });

  const settings = (): Promise<Settings> => readSettings(stateDir, defaultRepository);
  const repoOf = async (repo: string | undefined): Promise<string> => repo ?? (await settings()).repository.path;

  /** This agent's queue and the catalog's history, as one list, oldest first. */
  async function allJobs(): Promise<Job[]> {
    const live = jobs.list();
    const known = new Set<string>(live.map((j) => j.id));
    const { rows, repositories } = await withCatalog(stateDir, async (c) => ({ rows: await c.listJobs(HISTORY_JOBS), repositories: await c.listRepositories() }));
    const past = rows
      .filter((r) => r.uuid === null || !known.has(r.uuid))
      .map((r) => jobOfCatalog(r, repositories))
      .filter((j): j is Job => j !== null)
      .reverse();
    return [...past, ...live];
  }

  /** Queues a backup; for a configured source it also counts as the schedule's run (no overlap, no double run). */
  async function queueBackup(source: string, repo: string, tags: string[], full: boolean): Promise<JobId> {
    const row = (await sourceRows()).find((r) => r.path === path.resolve(source));
    const id = jobs.start({
      kind: 'backup',
      repo,
      source,
      run: async (r) => {
        const snapshot = await backup({ ...ctx, ...r, jobUuid: r.jobId }, source, repo, {
          tags,
          full,
          // Taken under the repository lock right before the engine reads (operations.ts).
          ...(row?.tracking ? { takeChanges: () => trackers.take(row.id) } : {}),
          onWarning: (message) => log(message),
          // The chain limit, applied by every backup under its own lock; a failure is a warning of the backup.
          retention: {
            chainLimitOf,
            onForgotten: (ids) => log(`retention: forgot ${ids.length} old scheduled snapshot(s) in ${repo}`),
          },
        });
        return { kind: 'backup', snapshot };
      },
    });
    if (row) {
      runningSources.set(row.id, id);
      await withCatalog(stateDir, (c) => c.updateConfiguredSource(row.id, { lastRunAt: new Date().toISOString() }));
    }
    emit({ event: 'jobs:queued', payload: jobs.get(id)! });
    return id;
  }

  async function describe(rows: readonly ConfiguredSourceRow[]) {
    return describeSources(rows, {
      ctx,
      settings: await settings(),
      jobs: await allJobs(),
      nextRunAt: (row) => scheduler.nextRunAt(scheduled(row)),
      trackingOf: (row) => (row.tracking ? trackers.state(row.id) : 'off'),
    });
  }

  const handlers: Handlers = {
    'agent:hello': async () => ({ apiVersion: API_VERSION, agentVersion: version, stateDir }),
    'sources:inspect': ({ path: sourcePath }) => inspectSource(sourcePath),
    'sources:map': ({ path: sourcePath }) => diskMap(sourcePath),
    'sources:changes': async ({ id }) => {
      const row = (await sourceRows()).find((r) => r.id === id);
      if (!row) throw new StrataError('NotFound', `No source ${id}; list them with sources:list.`);
      const changed = row.tracking ? (trackers.peek(row.id) ?? []) : [];
      return {
        tracking: row.tracking ? trackers.state(row.id) : 'off',
        changed: changed.map((e) => [e.startBytes, e.lengthBytes] as const),
        changedBytes: changed.reduce((n, e) => n + e.lengthBytes, 0),
      };
    },
    'sources:list': async () => describe(await sourceRows()),
    'sources:add': async ({ path: sourcePath, label, schedule, tracking }) => {
      if (schedule) assertSchedule(schedule);
      const absolute = path.resolve(sourcePath);
      await inspectSource(absolute); // refuses what cannot be read, before anything is stored
      if (tracking) await assertTrackable(absolute);
      const id = randomUUID();
      // The tracker starts before the row is stored, so a device that cannot be tracked adds nothing.
      if (tracking) await trackers.enable(id, absolute);
      let row: ConfiguredSourceRow;
      try {
        row = await withCatalog(stateDir, (c) => c.addConfiguredSource({ id, path: absolute, label: label ?? path.basename(absolute), schedule: schedule ?? null, tracking: tracking ?? false }));
      } catch (err) {
        await trackers.disable(id);
        throw err;
      }
      changed();
      return (await describe([row]))[0]!;
    },
    'sources:update': async ({ id, label, schedule, tracking }) => {
      if (schedule) assertSchedule(schedule);
      let startedNow = false;
      if (tracking) {
        const current = (await sourceRows()).find((r) => r.id === id);
        if (!current) throw new StrataError('NotFound', `No source ${id}; list them with sources:list.`);
        await assertTrackable(current.path);
        startedNow = trackers.state(id) === 'off';
        await trackers.enable(id, current.path);
      }
      let row: ConfiguredSourceRow;
      try {
        row = await withCatalog(stateDir, (c) =>
          c.updateConfiguredSource(id, { ...(label !== undefined ? { label } : {}), ...(schedule !== undefined ? { schedule } : {}), ...(tracking !== undefined ? { tracking } : {}) }),
        );
      } catch (err) {
        if (startedNow) await trackers.disable(id);
        throw err;
      }
      if (tracking === false) await trackers.disable(id);
      changed();
      return (await describe([row]))[0]!;
    },
    'sources:remove': async ({ id }) => {
      await withCatalog(stateDir, (c) => c.removeConfiguredSource(id));
      await trackers.disable(id);
      changed();
      return { id };
    },
    'sources:create-demo': async () => {
      const dir = path.join(stateDir, 'demo');
      await mkdir(dir, { recursive: true });
      const image = path.join(dir, 'demo-disk.img');
      const existing = (await sourceRows()).find((r) => r.path === image);
      if (existing) throw new StrataError('InvalidInput', 'The demo disk is already a source; use it, or remove it first to make a fresh one.');
      await createDemoDisk(image);
      const row = await withCatalog(stateDir, (c) => c.addConfiguredSource({ id: randomUUID(), path: image, label: 'Demo disk', schedule: null, demo: true }));
      changed();
      return (await describe([row]))[0]!;
    },
    'sources:change-demo': async ({ id }) => {
      const row = (await sourceRows()).find((r) => r.id === id);
      if (!row) throw new StrataError('NotFound', `No source ${id}; list them with sources:list.`);
      if (!row.demo) throw new StrataError('InvalidInput', 'Only the demo disk can be changed by the console; change your own disks by using them.');
      const filesChanged = await changeDemoDisk(row.path, Date.now() % 1000);
      changed();
      return { filesChanged };
    },
    'settings:get': () => settings(),
    'settings:update': async (change) => {
      const next = await updateSettings(stateDir, defaultRepository, change);
      emit({ event: 'settings:changed', payload: next });
      changed();
      return next;
    },
    'targets:check': async ({ path: target, snapshot, repo }) => checkRestoreTarget(ctx, await repoOf(repo), snapshot, target),
    'repository:init': async ({ repo, encryption, password: newPassword, fullEvery }) => {
      if (encryption !== 'none' && !newPassword) {
        throw new StrataError('InvalidInput', 'An encrypted repository needs a password; give one, or choose encryption "none".');
      }
      return initRepository(repo, { encryption, password: encryption === 'none' ? null : (newPassword ?? null), ...(fullEvery ? { fullEvery } : {}) });
    },
    'snapshots:list': async ({ repo }) => listSnapshots(ctx, await repoOf(repo)),
    'snapshots:forget': async ({ snapshots, repo }) => {
      const forgotten = await forgetSnapshots(ctx, await repoOf(repo), snapshots);
      changed();
      return { forgotten };
    },
    'snapshots:map': async ({ snapshot, repo }) => snapshotMap(ctx, await repoOf(repo), snapshot),
    'snapshots:diff': async ({ from, to, repo }) => snapshotDiff(ctx, await repoOf(repo), from, to),
    'jobs:start-backup': async ({ source, repo, tags, full }) => ({ jobId: await queueBackup(source, await repoOf(repo), tags ?? [], full ?? false) }),
    'jobs:start-restore': async ({ snapshot, repo, target, force }) => {
      const repoPath = await repoOf(repo);
      const jobId = jobs.start({
        kind: 'restore',
        repo: repoPath,
        source: target,
        run: async (r) => ({ kind: 'restore', restore: await restore({ ...ctx, ...r, jobUuid: r.jobId }, snapshot, repoPath, target, { force: force ?? false }) }),
      });
      emit({ event: 'jobs:queued', payload: jobs.get(jobId)! });
      return { jobId };
    },
    'jobs:start-verify': async ({ repo, readData }) => {
      const repoPath = await repoOf(repo);
      const jobId = jobs.start({
        kind: 'verify',
        repo: repoPath,
        source: null,
        run: async (r) => ({ kind: 'verify', report: await verify({ ...ctx, ...r, jobUuid: r.jobId }, repoPath, { readData: readData ?? false }) }),
      });
      emit({ event: 'jobs:queued', payload: jobs.get(jobId)! });
      return { jobId };
    },
    'jobs:list': () => allJobs(),
    'jobs:wait': ({ jobId, timeoutMs }) => jobs.wait(jobId, timeoutMs),
    'jobs:cancel': async ({ jobId }) => jobs.cancel(jobId),
  };

  // Sources stored as tracked get their trackers back; their first backups are resyncs (new epoch keys).
  for (const row of await sourceRows()) if (row.tracking) trackers.resume(row.id, row.path);
  scheduler.start();

  return {
    stateDir,
    handlers,
    jobs,
    scheduler,
    trackers,
    warm,
    onEvent: (listener) => {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    close: async () => {
      scheduler.stop();
      await jobs.close();
      await trackers.closeAll();
      await warm.close();
      unsubscribeJobs();
    },
  };
}
