// The console's configuration kept by the agent in its catalog: settings with their defaults, and
// the sources it protects, each shown with its disk, last backup, last job and next scheduled run.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { DEFAULT_CHAIN_LIMIT, SettingsSchema, type ConfiguredSource, type Settings } from '../agent-core/api/console-config.js';
import { StrataError, toStrataError } from '../agent-core/api/errors.js';
import type { Job } from '../agent-core/api/job.js';
import type { SnapshotSummary } from '../agent-core/api/snapshot.js';
import { Catalog, type ConfiguredSourceRow } from '../agent-core/catalog/catalog.js';
import { describeSourcePath, type AgentContext } from './operations.js';

export async function withCatalog<T>(stateDir: string, fn: (c: Catalog) => Promise<T>): Promise<T> {
  const catalog = await Catalog.open(path.join(stateDir, 'catalog.sqlite'));
  try {
    return await fn(catalog);
  } finally {
    await catalog.close();
  }
}

/** A repository's id and encryption from its plaintext config, without unlocking it; nulls if none is there. */
export async function repositoryInfo(repoPath: string): Promise<Settings['repository']> {
  try {
    const config = JSON.parse(await readFile(path.join(repoPath, 'config'), 'utf8')) as { id?: unknown; encryption?: unknown };
    const encryption = config.encryption === 'aes-256-gcm' || config.encryption === 'none' ? config.encryption : null;
    return { path: repoPath, id: typeof config.id === 'string' ? config.id : null, encryption };
  } catch {
    return { path: repoPath, id: null, encryption: null };
  }
}

/** The chain limit the console set, read from an open catalog; the default when none (or no valid one) is stored. */
export async function chainLimitOf(catalog: Catalog): Promise<number> {
  const parsed = SettingsSchema.shape.retention.shape.chainLimit.safeParse((await catalog.readSettings()).chainLimit);
  return parsed.success ? parsed.data : DEFAULT_CHAIN_LIMIT;
}

export async function readSettings(stateDir: string, defaultRepository: string): Promise<Settings> {
  const stored = await withCatalog(stateDir, (c) => c.readSettings());
  const repoPath = typeof stored.repositoryPath === 'string' ? stored.repositoryPath : defaultRepository;
  const candidate = {
    repository: await repositoryInfo(repoPath),
    retention: { chainLimit: stored.chainLimit ?? DEFAULT_CHAIN_LIMIT },
    notifications: { onSuccess: true, onFailure: true, ...(typeof stored.notifications === 'object' ? stored.notifications : {}) },
    schedulesPaused: stored.schedulesPaused ?? false,
  };
  const parsed = SettingsSchema.safeParse(candidate);
  // A hand-edited or older catalog: fall back to defaults rather than refuse to start.
  return parsed.success
    ? parsed.data
    : { repository: await repositoryInfo(defaultRepository), retention: { chainLimit: DEFAULT_CHAIN_LIMIT }, notifications: { onSuccess: true, onFailure: true }, schedulesPaused: false };
}

export interface SettingsChange {
  repositoryPath?: string | undefined;
  chainLimit?: number | undefined;
  notifications?: { onSuccess?: boolean | undefined; onFailure?: boolean | undefined } | undefined;
  schedulesPaused?: boolean | undefined;
}

export async function updateSettings(stateDir: string, defaultRepository: string, change: SettingsChange): Promise<Settings> {
  const current = await readSettings(stateDir, defaultRepository);
  const values: Record<string, unknown> = {};
  if (change.repositoryPath !== undefined) {
    const repoPath = path.resolve(change.repositoryPath);
    if ((await repositoryInfo(repoPath)).id === null) {
      throw new StrataError('NotFound', `${repoPath} is not a Strata repository; create one there first (repository:init), or choose an existing one.`);
    }
    values.repositoryPath = repoPath;
  }
  if (change.chainLimit !== undefined) values.chainLimit = change.chainLimit;
  if (change.notifications !== undefined) values.notifications = { ...current.notifications, ...definedOnly(change.notifications) };
  if (change.schedulesPaused !== undefined) values.schedulesPaused = change.schedulesPaused;
  await withCatalog(stateDir, (c) => c.writeSettings(values));
  return readSettings(stateDir, defaultRepository);
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

export interface SourceViewInputs {
  ctx: AgentContext;
  settings: Settings;
  jobs: readonly Job[];
  nextRunAt: (row: ConfiguredSourceRow) => Date | null;
  /** The source's live tracker as the console shows it; "off" when not given. */
  trackingOf?: (row: ConfiguredSourceRow) => ConfiguredSource['tracking'];
}

/** Each configured source with what the console shows of it; a source that cannot be read says why. */
export async function describeSources(rows: readonly ConfiguredSourceRow[], inputs: SourceViewInputs): Promise<ConfiguredSource[]> {
  const { settings, jobs } = inputs;
  // From the catalog, which every backup and listing brings up to date: no repository lock, so
  // listing sources never stands in a backup's way.
  const repoId = settings.repository.id;
  const snapshots: SnapshotSummary[] = repoId === null ? [] : await withCatalog(inputs.ctx.stateDir, async (c) => ((await c.listRepositories()).some((r) => r.id === repoId) ? c.listSnapshots(repoId) : []));
  const out: ConfiguredSource[] = [];
  for (const row of rows) {
    let layout: ConfiguredSource['layout'] = null;
    let layoutError: ConfiguredSource['layoutError'] = null;
    let sourceName = path.resolve(row.path);
    try {
      ({ layout, sourceName } = await describeSourcePath(row.path));
    } catch (err) {
      layoutError = toStrataError(err, `Reading ${row.path}`).toPayload();
    }
    const last = snapshots.filter((s) => s.sourceName === sourceName).at(-1) ?? null;
    const job = [...jobs].reverse().find((j) => j.kind === 'backup' && j.source !== null && (j.source === row.path || j.source === sourceName)) ?? null;
    const next = inputs.nextRunAt(row);
    out.push({
      id: row.id,
      path: row.path,
      label: row.label,
      sourceName,
      schedule: row.schedule,
      addedAt: row.addedAt,
      demo: row.demo,
      lastBackup: last ? { snapshotId: last.id, at: last.createdAt, mode: last.mode } : null,
      lastJob: job ? { state: job.state, finishedAt: job.finishedAt, error: job.error } : null,
      nextRunAt: next ? next.toISOString() : null,
      tracking: inputs.trackingOf?.(row) ?? 'off',
      layout,
      layoutError,
    });
  }
  return out;
}
