// The catalog's SQLite schema as an append-only list of migrations, and the values that mark a
// file as a Strata catalog. The catalog is a cache of repositories; nothing here is normative.

/** PRAGMA application_id of every catalog: 'STRC' in ASCII, so a stranger's database is recognised. */
export const CATALOG_APPLICATION_ID = 0x53545243;

/** Wait this long for another process's write lock before failing with Locked. */
export const CATALOG_BUSY_TIMEOUT_MS = 5_000;

/**
 * MIGRATIONS[i] takes a catalog from PRAGMA user_version i to i + 1. Never edit a published entry:
 * catalogs in the field already ran it. Append a new one instead; the version follows the length.
 *
 * Enumerations (backup mode, job kind and state, event level) carry no CHECK: growing one would
 * need a table rebuild in SQLite, and every writer is typed. Sizes, ids and JSON are checked.
 */
export const MIGRATIONS: readonly string[] = [
  // 1: repositories, their sources and snapshots; jobs and their events.
  `
  CREATE TABLE repositories (
    id   TEXT NOT NULL PRIMARY KEY,
    path TEXT NOT NULL
  ) STRICT;
  CREATE INDEX repositories_by_path ON repositories (path);

  CREATE TABLE snapshots (
    repo_id      TEXT NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    id           TEXT NOT NULL CHECK (length(id) = 64 AND id NOT GLOB '*[^0-9a-f]*'),
    source_id    TEXT NOT NULL CHECK (length(source_id) = 64 AND source_id NOT GLOB '*[^0-9a-f]*'),
    source_name  TEXT NOT NULL,
    -- No foreign key: a parent may have been pruned while its child stays.
    parent_id    TEXT CHECK (parent_id IS NULL OR (length(parent_id) = 64 AND parent_id NOT GLOB '*[^0-9a-f]*')),
    mode         TEXT NOT NULL,
    mode_reason  TEXT,
    tracker      TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    hostname     TEXT NOT NULL,
    tags         TEXT NOT NULL CHECK (json_valid(tags) AND json_type(tags) = 'array'),
    source_bytes INTEGER NOT NULL CHECK (source_bytes >= 0),
    valid_bytes  INTEGER NOT NULL CHECK (valid_bytes >= 0),
    bytes_read   INTEGER NOT NULL CHECK (bytes_read >= 0),
    bytes_new    INTEGER NOT NULL CHECK (bytes_new >= 0),
    bytes_stored INTEGER NOT NULL CHECK (bytes_stored >= 0),
    duration_ms  INTEGER NOT NULL CHECK (duration_ms >= 0),
    PRIMARY KEY (repo_id, id)
  ) STRICT;
  CREATE INDEX snapshots_by_time ON snapshots (repo_id, created_at, id);
  CREATE INDEX snapshots_by_source ON snapshots (repo_id, source_id, created_at, id);
  CREATE INDEX snapshots_by_parent ON snapshots (repo_id, parent_id);

  -- Derived from snapshots: one row per source that has at least one snapshot, naming the newest.
  CREATE TABLE sources (
    repo_id          TEXT NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    source_id        TEXT NOT NULL,
    name             TEXT NOT NULL,
    last_size_bytes  INTEGER NOT NULL,
    last_snapshot_id TEXT NOT NULL,
    PRIMARY KEY (repo_id, source_id)
  ) STRICT;

  -- repo_id is not a foreign key: a job may start before its repository is in the catalog, and
  -- the job history outlives a repository's rows.
  CREATE TABLE jobs (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    kind          TEXT NOT NULL,
    state         TEXT NOT NULL,
    repo_id       TEXT,
    source_name   TEXT,
    -- The process that runs the job: its pid, and a token drawn at its start (pids get reused).
    pid           INTEGER NOT NULL,
    owner         TEXT NOT NULL,
    started_at    TEXT NOT NULL,
    finished_at   TEXT,
    error_code    TEXT,
    error_message TEXT,
    summary       TEXT CHECK (summary IS NULL OR json_valid(summary))
  ) STRICT;
  CREATE INDEX jobs_by_state ON jobs (state);

  CREATE TABLE events (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id  INTEGER REFERENCES jobs (id) ON DELETE CASCADE,
    at      TEXT NOT NULL,
    level   TEXT NOT NULL,
    message TEXT NOT NULL
  ) STRICT;
  CREATE INDEX events_by_job ON events (job_id, id);
  `,
  // 2: the console's configuration (sources it protects, settings) and the agent's job ids.
  `
  -- The agent's queue names jobs by UUID; the row keeps it so live and past jobs are one list.
  ALTER TABLE jobs ADD COLUMN uuid TEXT;
  CREATE UNIQUE INDEX jobs_by_uuid ON jobs (uuid) WHERE uuid IS NOT NULL;

  CREATE TABLE configured_sources (
    id          TEXT NOT NULL PRIMARY KEY,
    path        TEXT NOT NULL UNIQUE,
    label       TEXT NOT NULL,
    schedule    TEXT,
    added_at    TEXT NOT NULL,
    last_run_at TEXT,
    demo        INTEGER NOT NULL DEFAULT 0 CHECK (demo IN (0, 1))
  ) STRICT;

  CREATE TABLE settings (
    key   TEXT NOT NULL PRIMARY KEY,
    value TEXT NOT NULL CHECK (json_valid(value))
  ) STRICT;
  `,
  // 3: sources the user tracks live (the agent runs a block tracker for each while it runs).
  `
  ALTER TABLE configured_sources ADD COLUMN tracking INTEGER NOT NULL DEFAULT 0 CHECK (tracking IN (0, 1));
  `,
];

export const CATALOG_SCHEMA_VERSION = MIGRATIONS.length;
