// The catalog: a local SQLite cache of what each repository holds (snapshots, sources) and of the
// jobs this machine ran, so the console and CLI list fast. Deleting it loses nothing but job history.
import { randomUUID } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { StrataError, toStrataError, type ErrorCode } from '../api/errors.js';
import type { BackupMode, JobKind, JobState, SnapshotSummary, TrackerState } from '../api/snapshot.js';
import { CATALOG_APPLICATION_ID, CATALOG_BUSY_TIMEOUT_MS, CATALOG_SCHEMA_VERSION, MIGRATIONS } from './catalog-schema.js';
import { SqliteConnection, type SqlValue } from './sqlite-connection.js';

export interface CatalogRepository {
  id: string;
  path: string;
}

/** A source as of its newest snapshot in the catalog. */
export interface CatalogSource {
  sourceId: string;
  name: string;
  lastSizeBytes: number;
  lastSnapshotId: string;
}

export interface JobError {
  code: ErrorCode;
  message: string;
}

export interface CatalogJob {
  id: number;
  /** The agent queue's id of the job; null for jobs the CLI ran. */
  uuid: string | null;
  kind: JobKind;
  state: JobState;
  repoId: string | null;
  sourceName: string | null;
  startedAt: string;
  finishedAt: string | null;
  error: JobError | null;
  /** Whatever the job's finisher stored, parsed back from JSON. */
  summary: unknown;
}

export type EventLevel = 'info' | 'warning' | 'error';

export interface CatalogEvent {
  id: number;
  jobId: number | null;
  at: string;
  level: EventLevel;
  message: string;
}

export interface JobResult {
  state: 'succeeded' | 'failed' | 'cancelled';
  error?: JobError | null;
  summary?: unknown;
}

const ONLY_A_CACHE =
  'The catalog is only a cache: delete the file and run `strata catalog rebuild --repo PATH` for each repository to recreate it.';

const ABANDONED_ERROR: JobError = { code: 'Cancelled', message: 'The process running this job stopped before it finished.' };

/** Tells this process's jobs from those of an earlier process that had the same pid (containers reuse pid 1). */
const PROCESS_TOKEN = randomUUID();

const SNAPSHOT_PREFIX_MIN_DIGITS = 4;

/** In the order snapshotParams gives their values, after repo_id. */
const SNAPSHOT_COLUMN_NAMES = [
  'id', 'source_id', 'source_name', 'parent_id', 'mode', 'mode_reason', 'tracker', 'created_at', 'hostname', 'tags',
  'source_bytes', 'valid_bytes', 'bytes_read', 'bytes_new', 'bytes_stored', 'duration_ms',
];
const SNAPSHOT_COLUMNS = SNAPSHOT_COLUMN_NAMES.join(', ');

/** Rows per INSERT in a rebuild: each statement is a trip to sqlite3's thread pool, so batch them
 *  (100 rows × 17 values stays far below SQLite's limit of 32,766 bound values). */
const SNAPSHOTS_PER_INSERT = 100;

function insertSnapshots(rows: number): string {
  const row = `(${new Array(SNAPSHOT_COLUMN_NAMES.length + 1).fill('?').join(', ')})`;
  return `INSERT OR REPLACE INTO snapshots (repo_id, ${SNAPSHOT_COLUMNS}) VALUES ${new Array(rows).fill(row).join(', ')}`;
}

interface SnapshotRow {
  id: string;
  source_id: string;
  source_name: string;
  parent_id: string | null;
  mode: string;
  mode_reason: string | null;
  tracker: string;
  created_at: string;
  hostname: string;
  tags: string;
  source_bytes: number;
  valid_bytes: number;
  bytes_read: number;
  bytes_new: number;
  bytes_stored: number;
  duration_ms: number;
}

interface JobRow {
  id: number;
  uuid: string | null;
  kind: string;
  state: string;
  repo_id: string | null;
  source_name: string | null;
  started_at: string;
  finished_at: string | null;
  error_code: string | null;
  error_message: string | null;
  summary: string | null;
}

/** A source the console protects, as stored. */
export interface ConfiguredSourceRow {
  id: string;
  path: string;
  label: string;
  schedule: string | null;
  addedAt: string;
  lastRunAt: string | null;
  demo: boolean;
  /** The user switched live tracking on (block devices only). */
  tracking: boolean;
}

interface SourceRow {
  id: string;
  path: string;
  label: string;
  schedule: string | null;
  added_at: string;
  last_run_at: string | null;
  demo: number;
  tracking: number;
}

function sourceOfRow(r: SourceRow): ConfiguredSourceRow {
  return { id: r.id, path: r.path, label: r.label, schedule: r.schedule, addedAt: r.added_at, lastRunAt: r.last_run_at, demo: r.demo === 1, tracking: r.tracking === 1 };
}

interface EventRow {
  id: number;
  job_id: number | null;
  at: string;
  level: string;
  message: string;
}

export class Catalog {
  private db: SqliteConnection | null;
  /** Every operation waits for the one before: a transaction's statements never interleave with another's. */
  private tail: Promise<unknown> = Promise.resolve();

  private constructor(
    readonly filePath: string,
    db: SqliteConnection,
  ) {
    this.db = db;
  }

  /** Opens the catalog file, creating it and its directory if missing, and brings its schema up to date. */
  static async open(filePath: string): Promise<Catalog> {
    const doing = 'Opening the catalog';
    try {
      await mkdir(path.dirname(filePath), { recursive: true });
    } catch (err) {
      throw toStrataError(err, doing);
    }
    let db: SqliteConnection;
    try {
      db = await SqliteConnection.open(filePath);
    } catch (err) {
      throw catalogError(err, filePath, doing);
    }
    try {
      await db.run(`PRAGMA busy_timeout = ${CATALOG_BUSY_TIMEOUT_MS}`);
      await checkIdentity(db, filePath);
      await db.get('PRAGMA journal_mode = WAL');
      // A cache may lose its last transactions in a power cut; it may not be corrupted, and WAL keeps that.
      await db.run('PRAGMA synchronous = NORMAL');
      await db.run('PRAGMA foreign_keys = ON');
      await migrate(db, filePath);
    } catch (err) {
      await db.close().catch(() => undefined);
      throw catalogError(err, filePath, doing);
    }
    return new Catalog(filePath, db);
  }

  /** Closes the file after the operations already issued; later calls fail. */
  close(): Promise<void> {
    const closing = this.tail.then(async () => {
      const db = this.db;
      this.db = null;
      if (db) await db.close();
    });
    this.tail = closing.catch(() => undefined);
    return closing;
  }

  // ---- repositories and snapshots ----

  /** Adds a repository or moves it to a new path. A different repository cached at the same path is
   *  dropped: a path holds one repository, so the old rows describe something no longer there. */
  upsertRepository(repo: CatalogRepository): Promise<void> {
    return this.serial('Recording a repository in the catalog', (db) => this.transaction(db, () => upsertRepositoryRow(db, repo)));
  }

  listRepositories(): Promise<CatalogRepository[]> {
    return this.serial('Listing repositories', (db) => db.all<CatalogRepository>('SELECT id, path FROM repositories ORDER BY path, id'));
  }

  /** Caches one snapshot of a repository already in the catalog, and brings its source's row up to date. */
  recordSnapshot(repoId: string, s: SnapshotSummary): Promise<void> {
    return this.serial(`Recording snapshot ${s.id} in the catalog`, (db) =>
      this.transaction(db, async () => {
        await requireRepository(db, repoId);
        await db.run(insertSnapshots(1), snapshotParams(repoId, s));
        await refreshSources(db, repoId, s.sourceId);
      }),
    );
  }

  /** Replaces every cached snapshot and source of one repository, all or nothing (catalog rebuild). */
  replaceRepositorySnapshots(repo: CatalogRepository, snapshots: readonly SnapshotSummary[]): Promise<void> {
    return this.serial(`Rebuilding the catalog of repository ${repo.id}`, (db) =>
      this.transaction(db, async () => {
        await upsertRepositoryRow(db, repo);
        await db.run('DELETE FROM snapshots WHERE repo_id = ?', [repo.id]);
        for (let start = 0; start < snapshots.length; start += SNAPSHOTS_PER_INSERT) {
          const batch = snapshots.slice(start, start + SNAPSHOTS_PER_INSERT);
          await db.run(insertSnapshots(batch.length), batch.flatMap((s) => snapshotParams(repo.id, s)));
        }
        await refreshSources(db, repo.id, null);
      }),
    );
  }

  /** Snapshots of a repository, oldest first (createdAt, then id). */
  listSnapshots(repoId: string, filter: { sourceId?: string } = {}): Promise<SnapshotSummary[]> {
    return this.serial('Listing snapshots', async (db) => {
      const rows =
        filter.sourceId === undefined
          ? await db.all<SnapshotRow>(`SELECT ${SNAPSHOT_COLUMNS} FROM snapshots WHERE repo_id = ? ORDER BY created_at, id`, [repoId])
          : await db.all<SnapshotRow>(
              `SELECT ${SNAPSHOT_COLUMNS} FROM snapshots WHERE repo_id = ? AND source_id = ? ORDER BY created_at, id`,
              [repoId, filter.sourceId],
            );
      return rows.map(summaryOfRow);
    });
  }

  /** The snapshot whose id is, or starts with, idOrPrefix (at least 4 hex digits). */
  getSnapshot(repoId: string, idOrPrefix: string): Promise<SnapshotSummary> {
    const prefix = idOrPrefix.trim().toLowerCase();
    return this.serial(`Looking up snapshot ${prefix}`, async (db) => {
      if (!new RegExp(`^[0-9a-f]{${SNAPSHOT_PREFIX_MIN_DIGITS},64}$`).test(prefix)) {
        throw new StrataError(
          'InvalidInput',
          `"${idOrPrefix}" is not a snapshot id: give the id or its first ${SNAPSHOT_PREFIX_MIN_DIGITS} or more hex digits.`,
        );
      }
      // Ids are lowercase hex, so every id with this prefix sorts between these two bounds.
      const range = [repoId, prefix, prefix.padEnd(64, 'f')];
      const rows = await db.all<SnapshotRow>(
        `SELECT ${SNAPSHOT_COLUMNS} FROM snapshots WHERE repo_id = ? AND id BETWEEN ? AND ? ORDER BY id LIMIT 2`,
        range,
      );
      const [first] = rows;
      if (!first) {
        throw new StrataError(
          'NotFound',
          `No snapshot of repository ${repoId} in the catalog starts with ${prefix}. If it was made elsewhere, run \`strata catalog rebuild --repo PATH\`.`,
        );
      }
      if (rows.length > 1) {
        const count = await db.get<{ n: number }>('SELECT count(*) AS n FROM snapshots WHERE repo_id = ? AND id BETWEEN ? AND ?', range);
        throw new StrataError('InvalidInput', `${prefix} matches ${count?.n ?? rows.length} snapshots; give more digits of the id.`);
      }
      return summaryOfRow(first);
    });
  }

  /** The newest snapshot of a source, the parent of its next incremental; null if it has none. */
  latestSnapshot(repoId: string, sourceId: string): Promise<SnapshotSummary | null> {
    return this.serial('Looking up the latest snapshot', async (db) => {
      const row = await db.get<SnapshotRow>(
        `SELECT ${SNAPSHOT_COLUMNS} FROM snapshots WHERE repo_id = ? AND source_id = ? ORDER BY created_at DESC, id DESC LIMIT 1`,
        [repoId, sourceId],
      );
      return row ? summaryOfRow(row) : null;
    });
  }

  snapshotIds(repoId: string): Promise<Set<string>> {
    return this.serial('Listing snapshot ids', async (db) => {
      const rows = await db.all<{ id: string }>('SELECT id FROM snapshots WHERE repo_id = ?', [repoId]);
      return new Set(rows.map((r) => r.id));
    });
  }

  /** Drops snapshots from the cache (after a prune); returns how many were there. */
  removeSnapshots(repoId: string, ids: Iterable<string>): Promise<number> {
    const list = [...ids];
    return this.serial('Removing snapshots from the catalog', (db) =>
      this.transaction(db, async () => {
        let removed = 0;
        const remove = await db.prepare('DELETE FROM snapshots WHERE repo_id = ? AND id = ?');
        try {
          for (const id of list) removed += (await remove.run([repoId, id])).changes;
        } finally {
          await remove.finalize();
        }
        if (removed > 0) await refreshSources(db, repoId, null);
        return removed;
      }),
    );
  }

  listSources(repoId: string): Promise<CatalogSource[]> {
    return this.serial('Listing sources', (db) =>
      db.all<CatalogSource>(
        `SELECT source_id AS sourceId, name, last_size_bytes AS lastSizeBytes, last_snapshot_id AS lastSnapshotId
         FROM sources WHERE repo_id = ? ORDER BY name, source_id`,
        [repoId],
      ),
    );
  }

  // ---- jobs and events ----

  /** Starts a job in state 'running' and returns its id. */
  createJob(job: { kind: JobKind; repoId?: string | null; sourceName?: string | null; uuid?: string | null }): Promise<number> {
    return this.serial('Recording a job in the catalog', async (db) => {
      const result = await db.run(
        `INSERT INTO jobs (kind, state, repo_id, source_name, pid, owner, started_at, uuid) VALUES (?, 'running', ?, ?, ?, ?, ?, ?)`,
        [job.kind, job.repoId ?? null, job.sourceName ?? null, process.pid, PROCESS_TOKEN, new Date().toISOString(), job.uuid ?? null],
      );
      return result.lastId;
    });
  }

  finishJob(id: number, result: JobResult): Promise<void> {
    return this.serial(`Finishing job ${id} in the catalog`, async (db) => {
      const summary = result.summary === undefined ? null : (JSON.stringify(result.summary) ?? null);
      const update = await db.run(
        `UPDATE jobs SET state = ?, finished_at = ?, error_code = ?, error_message = ?, summary = ?
         WHERE id = ? AND state IN ('queued', 'running')`,
        [result.state, new Date().toISOString(), result.error?.code ?? null, result.error?.message ?? null, summary, id],
      );
      if (update.changes > 0) return;
      const row = await db.get<{ state: string }>('SELECT state FROM jobs WHERE id = ?', [id]);
      if (!row) throw new StrataError('NotFound', `Job ${id} is not in the catalog.`);
      throw new StrataError('InvalidInput', `Job ${id} has already finished (${row.state}); it cannot finish again.`);
    });
  }

  /** Logs an event, for a job or (jobId null) for the agent as a whole. */
  addEvent(jobId: number | null, level: EventLevel, message: string): Promise<void> {
    return this.serial('Recording an event in the catalog', async (db) => {
      try {
        await db.run('INSERT INTO events (job_id, at, level, message) VALUES (?, ?, ?, ?)', [jobId, new Date().toISOString(), level, message]);
      } catch (err) {
        if (jobId !== null && sqliteCode(err) === 'SQLITE_CONSTRAINT') {
          throw new StrataError('NotFound', `Job ${jobId} is not in the catalog, so an event cannot be added to it.`, { cause: err });
        }
        throw err;
      }
    });
  }

  /** The most recent jobs, newest first. */
  listJobs(limit = 50): Promise<CatalogJob[]> {
    return this.serial('Listing jobs', async (db) => {
      if (!Number.isSafeInteger(limit) || limit < 1) throw new StrataError('InvalidInput', `A job list limit must be a positive whole number, not ${limit}.`);
      const rows = await db.all<JobRow>(
        `SELECT id, uuid, kind, state, repo_id, source_name, started_at, finished_at, error_code, error_message, summary
         FROM jobs ORDER BY id DESC LIMIT ?`,
        [limit],
      );
      return rows.map(jobOfRow);
    });
  }

  /** Events of one job (or, for null, of no job), oldest first. */
  listEvents(jobId: number | null): Promise<CatalogEvent[]> {
    return this.serial('Listing events', async (db) => {
      const rows = await db.all<EventRow>('SELECT id, job_id, at, level, message FROM events WHERE job_id IS ? ORDER BY id', [jobId]);
      return rows.map((r) => ({ id: r.id, jobId: r.job_id, at: r.at, level: r.level as EventLevel, message: r.message }));
    });
  }

  /**
   * Fails the jobs whose process died before finishing them; call at startup. A job is left alone
   * while its process runs, since the console and the CLI may share one catalog. Returns the count.
   */
  markAbandonedJobs(): Promise<number> {
    return this.serial('Marking abandoned jobs in the catalog', (db) =>
      this.transaction(db, async () => {
        const open = await db.all<{ id: number; pid: number; owner: string }>("SELECT id, pid, owner FROM jobs WHERE state IN ('queued', 'running')");
        const now = new Date().toISOString();
        let marked = 0;
        for (const job of open) {
          if (job.owner === PROCESS_TOKEN) continue;
          // Our own pid under another token is an earlier process that had it (a container's pid 1).
          if (job.pid !== process.pid && processIsAlive(job.pid)) continue;
          await db.run(
            "UPDATE jobs SET state = 'failed', finished_at = ?, error_code = ?, error_message = ? WHERE id = ?",
            [now, ABANDONED_ERROR.code, ABANDONED_ERROR.message, job.id],
          );
          marked += 1;
        }
        return marked;
      }),
    );
  }

  // ---- the console's configuration ----

  listConfiguredSources(): Promise<ConfiguredSourceRow[]> {
    return this.serial('Listing sources', async (db) =>
      (await db.all<SourceRow>('SELECT id, path, label, schedule, added_at, last_run_at, demo, tracking FROM configured_sources ORDER BY added_at, id')).map(sourceOfRow),
    );
  }

  /** Adds a source; a path already configured is refused (InvalidInput). */
  addConfiguredSource(s: { id: string; path: string; label: string; schedule: string | null; demo?: boolean; tracking?: boolean }): Promise<ConfiguredSourceRow> {
    return this.serial(`Adding the source ${s.path}`, async (db) => {
      const taken = await db.get<{ label: string }>('SELECT label FROM configured_sources WHERE path = ?', [s.path]);
      if (taken) throw new StrataError('InvalidInput', `${s.path} is already a source (“${taken.label}”); edit that one instead.`);
      const row: SourceRow = {
        id: s.id, path: s.path, label: s.label, schedule: s.schedule, added_at: new Date().toISOString(), last_run_at: null, demo: s.demo ? 1 : 0, tracking: s.tracking ? 1 : 0,
      };
      await db.run('INSERT INTO configured_sources (id, path, label, schedule, added_at, last_run_at, demo, tracking) VALUES (?, ?, ?, ?, ?, ?, ?, ?)', [
        row.id, row.path, row.label, row.schedule, row.added_at, row.last_run_at, row.demo, row.tracking,
      ]);
      return sourceOfRow(row);
    });
  }

  /** Changes a source's label, schedule, last run or tracking; fields left undefined stay. */
  updateConfiguredSource(id: string, change: { label?: string; schedule?: string | null; lastRunAt?: string; tracking?: boolean }): Promise<ConfiguredSourceRow> {
    return this.serial(`Updating source ${id}`, async (db) => {
      const row = await db.get<SourceRow>('SELECT id, path, label, schedule, added_at, last_run_at, demo, tracking FROM configured_sources WHERE id = ?', [id]);
      if (!row) throw new StrataError('NotFound', `No source ${id}; list them with sources:list.`);
      if (change.label !== undefined) row.label = change.label;
      if (change.schedule !== undefined) row.schedule = change.schedule;
      if (change.lastRunAt !== undefined) row.last_run_at = change.lastRunAt;
      if (change.tracking !== undefined) row.tracking = change.tracking ? 1 : 0;
      await db.run('UPDATE configured_sources SET label = ?, schedule = ?, last_run_at = ?, tracking = ? WHERE id = ?', [row.label, row.schedule, row.last_run_at, row.tracking, id]);
      return sourceOfRow(row);
    });
  }

  removeConfiguredSource(id: string): Promise<void> {
    return this.serial(`Removing source ${id}`, async (db) => {
      const result = await db.run('DELETE FROM configured_sources WHERE id = ?', [id]);
      if (result.changes === 0) throw new StrataError('NotFound', `No source ${id}; list them with sources:list.`);
    });
  }

  /** Every stored setting, parsed from JSON; the caller validates and fills defaults. */
  readSettings(): Promise<Record<string, unknown>> {
    return this.serial('Reading settings', async (db) => {
      const out: Record<string, unknown> = {};
      for (const r of await db.all<{ key: string; value: string }>('SELECT key, value FROM settings')) out[r.key] = JSON.parse(r.value) as unknown;
      return out;
    });
  }

  writeSettings(values: Record<string, unknown>): Promise<void> {
    return this.serial('Saving settings', (db) =>
      this.transaction(db, async () => {
        for (const [key, value] of Object.entries(values)) {
          await db.run('INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value', [key, JSON.stringify(value)]);
        }
      }),
    );
  }

  // ---- plumbing ----

  private serial<T>(doing: string, operation: (db: SqliteConnection) => Promise<T>): Promise<T> {
    const run = async (): Promise<T> => {
      const db = this.db;
      if (!db) throw new StrataError('Internal', `${doing} failed: the catalog ${this.filePath} is already closed.`);
      try {
        return await operation(db);
      } catch (err) {
        throw catalogError(err, this.filePath, doing);
      }
    };
    const result = this.tail.then(run);
    this.tail = result.catch(() => undefined);
    return result;
  }

  private async transaction<T>(db: SqliteConnection, body: () => Promise<T>): Promise<T> {
    // IMMEDIATE takes the write lock up front, so a busy catalog fails or waits here, not at COMMIT.
    await db.run('BEGIN IMMEDIATE');
    try {
      const value = await body();
      await db.run('COMMIT');
      return value;
    } catch (err) {
      await db.run('ROLLBACK').catch(() => undefined);
      throw err;
    }
  }
}

async function checkIdentity(db: SqliteConnection, filePath: string): Promise<void> {
  const applicationId = (await db.get<{ application_id: number }>('PRAGMA application_id'))?.application_id ?? 0;
  const version = (await db.get<{ user_version: number }>('PRAGMA user_version'))?.user_version ?? 0;
  if (applicationId === 0 && version === 0) {
    const anything = await db.get('SELECT 1 FROM sqlite_schema LIMIT 1');
    if (!anything) return; // a new, empty file
  }
  if (applicationId !== CATALOG_APPLICATION_ID) {
    throw new StrataError(
      'Corrupt',
      `${filePath} holds a SQLite database that is not a Strata catalog; check the state directory, and move the file away if another program owns it. ` +
        'The catalog is only a cache: `strata catalog rebuild --repo PATH` recreates it.',
    );
  }
  checkVersion(version, filePath);
}

function checkVersion(version: number, filePath: string): void {
  if (version > CATALOG_SCHEMA_VERSION) {
    throw new StrataError(
      'Unsupported',
      `The catalog ${filePath} has schema version ${version}, written by a newer Strata (this one knows up to ${CATALOG_SCHEMA_VERSION}). Use the newer Strata, or: ${ONLY_A_CACHE}`,
    );
  }
}

async function migrate(db: SqliteConnection, filePath: string): Promise<void> {
  const current = async () => (await db.get<{ user_version: number }>('PRAGMA user_version'))?.user_version ?? 0;
  if ((await current()) === CATALOG_SCHEMA_VERSION) return;
  await db.run('BEGIN IMMEDIATE');
  try {
    // Read again under the write lock: another process may have migrated since.
    const from = await current();
    checkVersion(from, filePath);
    for (let version = from; version < CATALOG_SCHEMA_VERSION; version += 1) {
      await db.exec(MIGRATIONS[version] ?? '');
    }
    await db.run(`PRAGMA application_id = ${CATALOG_APPLICATION_ID}`);
    await db.run(`PRAGMA user_version = ${CATALOG_SCHEMA_VERSION}`);
    await db.run('COMMIT');
  } catch (err) {
    await db.run('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

async function upsertRepositoryRow(db: SqliteConnection, repo: CatalogRepository): Promise<void> {
  await db.run('DELETE FROM repositories WHERE path = ? AND id <> ?', [repo.path, repo.id]);
  await db.run('INSERT INTO repositories (id, path) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET path = excluded.path', [repo.id, repo.path]);
}

async function requireRepository(db: SqliteConnection, repoId: string): Promise<void> {
  if (!(await db.get('SELECT 1 FROM repositories WHERE id = ?', [repoId]))) {
    throw new StrataError('NotFound', `Repository ${repoId} is not in the catalog; add it before recording its snapshots.`);
  }
}

/** Recomputes the source rows of a repository (or of one of its sources) from its snapshots. */
async function refreshSources(db: SqliteConnection, repoId: string, sourceId: string | null): Promise<void> {
  await db.run('DELETE FROM sources WHERE repo_id = ?1 AND (?2 IS NULL OR source_id = ?2)', [repoId, sourceId]);
  await db.run(
    `INSERT INTO sources (repo_id, source_id, name, last_size_bytes, last_snapshot_id)
     SELECT repo_id, source_id, source_name, source_bytes, id FROM (
       SELECT repo_id, source_id, source_name, source_bytes, id,
              row_number() OVER (PARTITION BY source_id ORDER BY created_at DESC, id DESC) AS recency
       FROM snapshots WHERE repo_id = ?1 AND (?2 IS NULL OR source_id = ?2)
     ) WHERE recency = 1`,
    [repoId, sourceId],
  );
}

function snapshotParams(repoId: string, s: SnapshotSummary): SqlValue[] {
  return [
    repoId, s.id, s.sourceId, s.sourceName, s.parentId, s.mode, s.modeReason, s.tracker, s.createdAt, s.hostname,
    JSON.stringify(s.tags), s.sourceBytes, s.validBytes, s.bytesRead, s.bytesNew, s.bytesStored,
    // Whole milliseconds: the column is INTEGER, and a cache needs no finer.
    Math.round(s.durationMs),
  ];
}

function summaryOfRow(r: SnapshotRow): SnapshotSummary {
  return {
    id: r.id,
    sourceId: r.source_id,
    sourceName: r.source_name,
    parentId: r.parent_id,
    mode: r.mode as BackupMode,
    modeReason: r.mode_reason,
    tracker: r.tracker as TrackerState,
    createdAt: r.created_at,
    hostname: r.hostname,
    tags: JSON.parse(r.tags) as string[],
    sourceBytes: r.source_bytes,
    validBytes: r.valid_bytes,
    bytesRead: r.bytes_read,
    bytesNew: r.bytes_new,
    bytesStored: r.bytes_stored,
    durationMs: r.duration_ms,
  };
}

function jobOfRow(r: JobRow): CatalogJob {
  return {
    id: r.id,
    uuid: r.uuid,
    kind: r.kind as JobKind,
    state: r.state as JobState,
    repoId: r.repo_id,
    sourceName: r.source_name,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    error: r.error_code === null ? null : { code: r.error_code as ErrorCode, message: r.error_message ?? '' },
    summary: r.summary === null ? null : (JSON.parse(r.summary) as unknown),
  };
}

function processIsAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the process exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function sqliteCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** Maps a SQLite failure to the error a person can act on. */
function catalogError(err: unknown, filePath: string, doing: string): StrataError {
  if (err instanceof StrataError) return err;
  const detail = err instanceof Error ? err.message : String(err);
  switch (sqliteCode(err)) {
    case 'SQLITE_NOTADB':
    case 'SQLITE_CORRUPT':
      return new StrataError('Corrupt', `${doing} failed: ${filePath} is not a readable SQLite database (${detail}). ${ONLY_A_CACHE}`, { cause: err });
    case 'SQLITE_BUSY':
    case 'SQLITE_LOCKED':
      return new StrataError(
        'Locked',
        `${doing} failed: another Strata process kept the catalog ${filePath} locked for over ${CATALOG_BUSY_TIMEOUT_MS / 1000} s; try again.`,
        { cause: err },
      );
    case 'SQLITE_FULL':
      return new StrataError('NoSpace', `${doing} failed: the disk holding the catalog ${filePath} is full; free space there.`, { cause: err });
    case 'SQLITE_CANTOPEN':
    case 'SQLITE_READONLY':
    case 'SQLITE_PERM':
    case 'SQLITE_AUTH':
      return new StrataError(
        'PermissionDenied',
        `${doing} failed: the catalog ${filePath} cannot be opened for writing (${detail}); check that it is a file this user may write.`,
        { cause: err },
      );
    case 'SQLITE_CONSTRAINT':
      return new StrataError('InvalidInput', `${doing} failed: the data breaks a rule of the catalog (${detail}).`, { cause: err });
    default:
      return toStrataError(err, doing);
  }
}
