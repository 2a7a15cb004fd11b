import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StrataError } from '../api/errors.js';
import type { SnapshotSummary } from '../api/snapshot.js';
import { Catalog } from './catalog.js';
import { CATALOG_APPLICATION_ID, CATALOG_SCHEMA_VERSION } from './catalog-schema.js';
import { SqliteConnection } from './sqlite-connection.js';

const REPO_A = { id: 'a'.repeat(32), path: '/backups/a' };
const REPO_B = { id: 'b'.repeat(32), path: '/backups/b' };

function hexId(name: string): string {
  return createHash('sha256').update(name).digest('hex');
}

function summary(name: string, overrides: Partial<SnapshotSummary> = {}): SnapshotSummary {
  return {
    id: hexId(name),
    sourceId: hexId('source /dev/sdb'),
    sourceName: '/dev/sdb',
    parentId: null,
    mode: 'full',
    modeReason: null,
    tracker: 'none',
    createdAt: '2025-01-01T00:00:00.000Z',
    hostname: 'host-1',
    tags: [],
    sourceBytes: 8 * 2 ** 30,
    validBytes: 3 * 2 ** 30,
    bytesRead: 3 * 2 ** 30,
    bytesNew: 2 ** 30,
    bytesStored: 2 ** 29,
    durationMs: 61_000,
    ...overrides,
  };
}

async function rejection(promise: Promise<unknown>): Promise<StrataError> {
  const err = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(StrataError);
  return err as StrataError;
}

let dir: string;
let file: string;
let catalog: Catalog | null;

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'strata-catalog-'));
  file = path.join(dir, 'state', 'catalog.db');
  catalog = null;
});

afterEach(async () => {
  await catalog?.close();
  await rm(dir, { recursive: true, force: true });
});

async function openCatalog(): Promise<Catalog> {
  catalog = await Catalog.open(file);
  return catalog;
}

/** A second, raw connection to the same file, for what the Catalog API cannot do to itself. */
async function withRawConnection<T>(use: (db: SqliteConnection) => Promise<T>): Promise<T> {
  const db = await SqliteConnection.open(file);
  try {
    return await use(db);
  } finally {
    await db.close();
  }
}

describe('Catalog.open', () => {
  it('creates the directory and the schema, in WAL mode with foreign keys and a busy timeout', async () => {
    const c = await openCatalog();
    expect(c.filePath).toBe(file);
    await withRawConnection(async (db) => {
      expect(await db.get('PRAGMA user_version')).toEqual({ user_version: CATALOG_SCHEMA_VERSION });
      expect(await db.get('PRAGMA application_id')).toEqual({ application_id: CATALOG_APPLICATION_ID });
      expect(await db.get('PRAGMA journal_mode')).toEqual({ journal_mode: 'wal' });
      const tables = await db.all<{ name: string }>("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name");
      expect(tables.map((t) => t.name)).toEqual(['configured_sources', 'events', 'jobs', 'repositories', 'settings', 'snapshots', 'sources']);
      const indexes = await db.all<{ name: string }>("SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'snapshots'");
      expect(indexes.map((i) => i.name)).toContain('snapshots_by_parent');
    });
    // foreign_keys is per connection, so check the catalog's own through what it does.
    await expect(c.addEvent(999, 'info', 'no such job')).rejects.toMatchObject({ code: 'NotFound' });
  });

  it('waits for another process’s write lock instead of failing at once', async () => {
    const c = await openCatalog();
    const other = await SqliteConnection.open(file);
    try {
      await other.run('BEGIN IMMEDIATE');
      const write = c.upsertRepository(REPO_A);
      await new Promise((resolve) => setTimeout(resolve, 300));
      await other.run('COMMIT');
      await write;
    } finally {
      await other.close();
    }
    expect(await c.listRepositories()).toEqual([REPO_A]);
  });

  it('keeps its data when reopened and does not migrate again', async () => {
    const first = await Catalog.open(file);
    await first.upsertRepository(REPO_A);
    await first.recordSnapshot(REPO_A.id, summary('one'));
    await first.close();

    const again = await openCatalog();
    expect((await again.listSnapshots(REPO_A.id)).map((s) => s.id)).toEqual([hexId('one')]);
    expect(await again.listRepositories()).toEqual([REPO_A]);
  });

  it('refuses a file that is not a SQLite database with Corrupt and says the catalog can be rebuilt', async () => {
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, Buffer.alloc(8192, 0x5a));
    const err = await rejection(Catalog.open(file));
    expect(err.code).toBe('Corrupt');
    expect(err.message).toContain('only a cache');
    expect(err.message).toContain('strata catalog rebuild');
  });

  it('refuses a catalog written by a newer Strata with Unsupported and says the catalog can be rebuilt', async () => {
    await (await Catalog.open(file)).close();
    await withRawConnection((db) => db.run(`PRAGMA user_version = ${CATALOG_SCHEMA_VERSION + 1}`));
    const err = await rejection(Catalog.open(file));
    expect(err.code).toBe('Unsupported');
    expect(err.message).toContain('only a cache');
    expect(err.message).toContain('strata catalog rebuild');
  });

  it('refuses another program’s SQLite database instead of adding tables to it', async () => {
    await mkdir(path.dirname(file), { recursive: true });
    await withRawConnection((db) => db.run('CREATE TABLE notes (body TEXT)'));
    const err = await rejection(Catalog.open(file));
    expect(err.code).toBe('Corrupt');
    expect(err.message).toContain('not a Strata catalog');
    await withRawConnection(async (db) => {
      expect(await db.all("SELECT name FROM sqlite_schema WHERE name = 'snapshots'")).toEqual([]);
    });
  });
});

describe('repositories and snapshots', () => {
  it('round-trips every field of a snapshot summary', async () => {
    const c = await openCatalog();
    await c.upsertRepository(REPO_A);
    const full = summary('full', { tags: ['nightly', 'before upgrade', 'ünïcode'], tracker: 'live' });
    const incremental = summary('incr', {
      parentId: full.id,
      mode: 'resync',
      modeReason: 'The change tracker lost events after a reboot.',
      createdAt: '2025-01-02T00:00:00.000Z',
      hostname: 'host-2',
      sourceBytes: 2 ** 50,
      validBytes: 0,
      bytesRead: 5,
      bytesNew: 4,
      bytesStored: 3,
      durationMs: 0,
    });
    await c.recordSnapshot(REPO_A.id, incremental);
    await c.recordSnapshot(REPO_A.id, full);
    expect(await c.listSnapshots(REPO_A.id)).toEqual([full, incremental]);
  });

  it('stores a fractional duration as whole milliseconds', async () => {
    const c = await openCatalog();
    await c.upsertRepository(REPO_A);
    await c.recordSnapshot(REPO_A.id, summary('s', { durationMs: 1234.6 }));
    expect((await c.listSnapshots(REPO_A.id))[0]?.durationMs).toBe(1235);
  });

  it('lists snapshots by creation time then id, and filters by source', async () => {
    const c = await openCatalog();
    await c.upsertRepository(REPO_A);
    const other = hexId('source /dev/sdc');
    const s1 = summary('s1', { createdAt: '2025-03-01T00:00:00.000Z' });
    const s2 = summary('s2', { createdAt: '2025-01-01T00:00:00.000Z', sourceId: other, sourceName: '/dev/sdc' });
    const s3 = summary('s3', { createdAt: '2025-02-01T00:00:00.000Z' });
    const s4 = summary('s4', { createdAt: '2025-02-01T00:00:00.000Z' });
    for (const s of [s1, s2, s3, s4]) await c.recordSnapshot(REPO_A.id, s);
    const sameMoment = [s3, s4].sort((x, y) => (x.id < y.id ? -1 : 1));
    expect((await c.listSnapshots(REPO_A.id)).map((s) => s.id)).toEqual([s2, ...sameMoment, s1].map((s) => s.id));
    expect((await c.listSnapshots(REPO_A.id, { sourceId: other })).map((s) => s.id)).toEqual([s2.id]);
    expect(await c.snapshotIds(REPO_A.id)).toEqual(new Set([s1.id, s2.id, s3.id, s4.id]));
  });

  it('keeps one source row per source naming its newest snapshot, even when an older one is recorded later', async () => {
    const c = await openCatalog();
    await c.upsertRepository(REPO_A);
    const newer = summary('newer', { createdAt: '2025-05-01T00:00:00.000Z', sourceBytes: 200 });
    const older = summary('older', { createdAt: '2025-04-01T00:00:00.000Z', sourceBytes: 100 });
    await c.recordSnapshot(REPO_A.id, newer);
    await c.recordSnapshot(REPO_A.id, older);
    expect(await c.listSources(REPO_A.id)).toEqual([{ sourceId: newer.sourceId, name: '/dev/sdb', lastSizeBytes: 200, lastSnapshotId: newer.id }]);
    expect(await c.latestSnapshot(REPO_A.id, newer.sourceId)).toEqual(newer);
    expect(await c.latestSnapshot(REPO_A.id, hexId('unknown source'))).toBeNull();

    expect(await c.removeSnapshots(REPO_A.id, [newer.id, hexId('never there')])).toBe(1);
    expect(await c.listSources(REPO_A.id)).toEqual([{ sourceId: older.sourceId, name: '/dev/sdb', lastSizeBytes: 100, lastSnapshotId: older.id }]);
    await c.removeSnapshots(REPO_A.id, [older.id]);
    expect(await c.listSources(REPO_A.id)).toEqual([]);
  });

  it('refuses a snapshot of a repository that is not in the catalog', async () => {
    const c = await openCatalog();
    const err = await rejection(c.recordSnapshot(REPO_A.id, summary('s')));
    expect(err.code).toBe('NotFound');
  });

  it('moves a repository to a new path and drops a different repository cached at that path', async () => {
    const c = await openCatalog();
    await c.upsertRepository(REPO_A);
    await c.upsertRepository(REPO_B);
    await c.recordSnapshot(REPO_B.id, summary('b1'));
    await c.upsertRepository({ id: REPO_A.id, path: '/mnt/moved' });
    expect(await c.listRepositories()).toEqual([REPO_B, { id: REPO_A.id, path: '/mnt/moved' }]);

    await c.upsertRepository({ id: REPO_A.id, path: REPO_B.path });
    expect(await c.listRepositories()).toEqual([{ id: REPO_A.id, path: REPO_B.path }]);
    expect(await c.listSnapshots(REPO_B.id)).toEqual([]);
  });

  it('replaces one repository’s snapshots and sources and leaves other repositories alone', async () => {
    const c = await openCatalog();
    await c.upsertRepository(REPO_A);
    await c.upsertRepository(REPO_B);
    await c.recordSnapshot(REPO_A.id, summary('a-old'));
    await c.recordSnapshot(REPO_B.id, summary('b-kept'));

    const rebuilt = [summary('a-new-1'), summary('a-new-2', { parentId: hexId('a-new-1'), createdAt: '2025-01-03T00:00:00.000Z' })];
    await c.replaceRepositorySnapshots({ id: REPO_A.id, path: '/backups/a-moved' }, rebuilt);

    expect(await c.listSnapshots(REPO_A.id)).toEqual(rebuilt);
    expect((await c.listSources(REPO_A.id)).map((s) => s.lastSnapshotId)).toEqual([hexId('a-new-2')]);
    expect((await c.listSnapshots(REPO_B.id)).map((s) => s.id)).toEqual([hexId('b-kept')]);
    expect(await c.listSources(REPO_B.id)).toHaveLength(1);
    expect(await c.listRepositories()).toContainEqual({ id: REPO_A.id, path: '/backups/a-moved' });
  });

  it('rebuilds a repository that was not yet in the catalog', async () => {
    const c = await openCatalog();
    await c.replaceRepositorySnapshots(REPO_A, [summary('x')]);
    expect(await c.listRepositories()).toEqual([REPO_A]);
    expect(await c.snapshotIds(REPO_A.id)).toEqual(new Set([hexId('x')]));
  });

  it('keeps the old rows when a replacement fails midway', async () => {
    const c = await openCatalog();
    await c.upsertRepository(REPO_A);
    const old = [summary('old-1'), summary('old-2', { createdAt: '2025-01-02T00:00:00.000Z' })];
    for (const s of old) await c.recordSnapshot(REPO_A.id, s);
    const sourcesBefore = await c.listSources(REPO_A.id);

    // The bad row comes after several full batches of good ones, so the failure lands mid-rebuild.
    const good = Array.from({ length: 250 }, (_, i) => summary(`new-${i}`));
    const broken = [...good, summary('new-bad', { bytesStored: -1 }), summary('new-last')];
    const err = await rejection(c.replaceRepositorySnapshots({ id: REPO_A.id, path: '/elsewhere' }, broken));
    expect(err.code).toBe('InvalidInput');

    expect(await c.listSnapshots(REPO_A.id)).toEqual(old);
    expect(await c.listSources(REPO_A.id)).toEqual(sourcesBefore);
    expect(await c.listRepositories()).toEqual([REPO_A]);
    // The failed transaction left the connection usable.
    await c.recordSnapshot(REPO_A.id, summary('after'));
    expect(await c.snapshotIds(REPO_A.id)).toContain(hexId('after'));
  });

  it('inserts 10,000 snapshots in one rebuild', async () => {
    const c = await openCatalog();
    const many: SnapshotSummary[] = [];
    for (let i = 0; i < 10_000; i += 1) {
      many.push(
        summary(`bulk-${i}`, {
          parentId: i === 0 ? null : hexId(`bulk-${i - 1}`),
          mode: i === 0 ? 'full' : 'incremental',
          createdAt: new Date(Date.UTC(2025, 0, 1) + i * 60_000).toISOString(),
        }),
      );
    }
    await c.replaceRepositorySnapshots(REPO_A, many);
    const listed = await c.listSnapshots(REPO_A.id);
    expect(listed).toHaveLength(10_000);
    expect(listed[9_999]).toEqual(many[9_999]);
  });

  it('runs operations issued together one after another, so a rebuild never sees a stray write', async () => {
    const c = await openCatalog();
    await c.upsertRepository(REPO_A);
    const results = await Promise.allSettled([
      c.replaceRepositorySnapshots(REPO_A, [summary('r1'), summary('r2')]),
      c.recordSnapshot(REPO_A.id, summary('during')),
      c.replaceRepositorySnapshots(REPO_A, [summary('r3'), summary('bad', { sourceBytes: -5 })]),
      c.snapshotIds(REPO_A.id),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
    expect(results[3]).toEqual({ status: 'fulfilled', value: new Set([hexId('r1'), hexId('r2'), hexId('during')]) });
  });
});

describe('getSnapshot', () => {
  async function catalogWith(...names: string[]): Promise<Catalog> {
    const c = await openCatalog();
    await c.upsertRepository(REPO_A);
    for (const n of names) await c.recordSnapshot(REPO_A.id, summary(n));
    return c;
  }

  /** Two names whose ids share their first `digits` hex digits. */
  function collidingNames(digits: number): [string, string] {
    const seen = new Map<string, string>();
    for (let i = 0; ; i += 1) {
      const name = `collide-${i}`;
      const key = hexId(name).slice(0, digits);
      const earlier = seen.get(key);
      if (earlier) return [earlier, name];
      seen.set(key, name);
    }
  }

  it('finds a snapshot by its full id or a unique prefix of 4 or more digits, in any case', async () => {
    const c = await catalogWith('one', 'two');
    const id = hexId('one');
    expect((await c.getSnapshot(REPO_A.id, id)).id).toBe(id);
    expect((await c.getSnapshot(REPO_A.id, id.slice(0, 8).toUpperCase())).id).toBe(id);
  });

  it('refuses an ambiguous prefix and says how many snapshots it matches', async () => {
    const [x, y] = collidingNames(4);
    const c = await catalogWith(x, y, 'unrelated');
    const err = await rejection(c.getSnapshot(REPO_A.id, hexId(x).slice(0, 4)));
    expect(err.code).toBe('InvalidInput');
    expect(err.message).toContain('matches 2 snapshots');
  });

  it('reports NotFound for a prefix no snapshot has, and InvalidInput for fewer than 4 hex digits', async () => {
    const c = await catalogWith('one');
    const absent = hexId('one').startsWith('0000') ? 'ffff' : '0000';
    expect((await rejection(c.getSnapshot(REPO_A.id, absent))).code).toBe('NotFound');
    expect((await rejection(c.getSnapshot(REPO_B.id, hexId('one')))).code).toBe('NotFound');
    expect((await rejection(c.getSnapshot(REPO_A.id, hexId('one').slice(0, 3)))).code).toBe('InvalidInput');
    expect((await rejection(c.getSnapshot(REPO_A.id, 'zzzz'))).code).toBe('InvalidInput');
  });
});

describe('jobs and events', () => {
  it('records a job from start to finish with its events', async () => {
    const c = await openCatalog();
    const id = await c.createJob({ kind: 'backup', repoId: REPO_A.id, sourceName: '/dev/sdb' });
    await c.addEvent(id, 'info', 'Reading 3 GiB of valid sectors.');
    await c.addEvent(id, 'warning', 'The tracker restarted; taking a resync.');
    await c.addEvent(null, 'info', 'Agent started.');

    const [running] = await c.listJobs();
    expect(running).toMatchObject({ id, kind: 'backup', state: 'running', repoId: REPO_A.id, sourceName: '/dev/sdb', finishedAt: null, error: null, summary: null });
    expect(Number.isNaN(Date.parse(running!.startedAt))).toBe(false);

    await c.finishJob(id, { state: 'succeeded', summary: { snapshotId: hexId('s'), bytesNew: 42 } });
    const [done] = await c.listJobs();
    expect(done).toMatchObject({ state: 'succeeded', error: null, summary: { snapshotId: hexId('s'), bytesNew: 42 } });
    expect(done!.finishedAt).not.toBeNull();

    expect((await c.listEvents(id)).map((e) => [e.level, e.message])).toEqual([
      ['info', 'Reading 3 GiB of valid sectors.'],
      ['warning', 'The tracker restarted; taking a resync.'],
    ]);
    expect((await c.listEvents(null)).map((e) => e.message)).toEqual(['Agent started.']);
  });

  it('stores a failed job’s error and lists jobs newest first up to the limit', async () => {
    const c = await openCatalog();
    const first = await c.createJob({ kind: 'verify' });
    const second = await c.createJob({ kind: 'restore' });
    const third = await c.createJob({ kind: 'catalog-rebuild', repoId: REPO_B.id });
    await c.finishJob(second, { state: 'failed', error: { code: 'NoSpace', message: 'The target is full.' } });
    expect((await c.listJobs()).map((j) => j.id)).toEqual([third, second, first]);
    expect((await c.listJobs(2)).map((j) => j.id)).toEqual([third, second]);
    expect((await c.listJobs()).find((j) => j.id === second)).toMatchObject({
      state: 'failed',
      repoId: null,
      sourceName: null,
      error: { code: 'NoSpace', message: 'The target is full.' },
    });
  });

  it('refuses to finish a job twice or one that does not exist, and to log to a missing job', async () => {
    const c = await openCatalog();
    const id = await c.createJob({ kind: 'backup' });
    await c.finishJob(id, { state: 'cancelled' });
    expect((await rejection(c.finishJob(id, { state: 'succeeded' }))).code).toBe('InvalidInput');
    expect((await rejection(c.finishJob(id + 100, { state: 'succeeded' }))).code).toBe('NotFound');
    expect((await rejection(c.addEvent(id + 100, 'error', 'lost'))).code).toBe('NotFound');
  });

  it('fails a job whose process was killed, and leaves jobs of running processes alone', async () => {
    const c = await openCatalog();
    const ours = await c.createJob({ kind: 'backup' });

    const child = path.join(dir, 'killed-mid-job.mjs');
    await writeFile(
      child,
      `const { Catalog } = await import(${JSON.stringify(pathToFileURL(path.join(import.meta.dirname, 'catalog.ts')).href)});
       const catalog = await Catalog.open(${JSON.stringify(file)});
       await catalog.createJob({ kind: 'restore', sourceName: '/dev/sdc' });
       process.kill(process.pid, 'SIGKILL');`,
    );
    const run = spawnSync(process.execPath, ['--import', 'tsx', child], { cwd: process.cwd(), encoding: 'utf8' });
    expect(run.signal, run.stderr).toBe('SIGKILL');

    // A job under this process's pid but another process's token: an earlier life of a reused pid.
    await withRawConnection((db) =>
      db.run("INSERT INTO jobs (kind, state, pid, owner, started_at) VALUES ('verify', 'running', ?, 'an earlier process', ?)", [
        process.pid,
        new Date().toISOString(),
      ]),
    );

    expect(await c.markAbandonedJobs()).toBe(2);
    const jobs = await c.listJobs();
    expect(jobs.find((j) => j.id === ours)?.state).toBe('running');
    const abandoned = jobs.filter((j) => j.id !== ours);
    expect(abandoned.map((j) => j.kind).sort()).toEqual(['restore', 'verify']);
    for (const job of abandoned) {
      expect(job).toMatchObject({
        state: 'failed',
        error: { code: 'Cancelled', message: 'The process running this job stopped before it finished.' },
      });
      expect(job.finishedAt).not.toBeNull();
    }
    expect(await c.markAbandonedJobs()).toBe(0);
  });
});

describe('close', () => {
  it('waits for pending work, then refuses further calls', async () => {
    const c = await Catalog.open(file);
    await c.upsertRepository(REPO_A);
    const pending = c.recordSnapshot(REPO_A.id, summary('late'));
    await c.close();
    await pending;
    expect((await rejection(c.listSnapshots(REPO_A.id))).code).toBe('Internal');
    const reopened = await openCatalog();
    expect(await reopened.snapshotIds(REPO_A.id)).toEqual(new Set([hexId('late')]));
  });
});
