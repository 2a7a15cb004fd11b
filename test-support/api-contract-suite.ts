// The contract suite every transport of the agent's API runs (socket now, Electron IPC next): the
// same calls, events and rejections on a real state directory, repository and mkfs'd ext4 image.
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_VERSION, type AgentEvent, type ApiClient, type Reply } from '../agent-core/api/contract.js';
import type { JobFinished, JobId, JobProgress } from '../agent-core/api/job.js';
import { makeContent, run, Scratch } from './disk.js';

const MiB = 1 << 20;

/** A connected client for an agent on stateDir; close() ends the client and whatever serves it. */
export type MakeClient = (env: { stateDir: string }) => Promise<{ client: ApiClient; close(): Promise<void> }>;

/** An ext4 image of sizeMiB made from a directory of files, without mounting anything. */
export function makeExt4Image(scratch: Scratch, name: string, sizeMiB = 32, seed = 1, randomMiB = 6): string {
  const content = scratch.path(`${name}.d`);
  mkdirSync(content, { recursive: true });
  for (let i = 0; i < 8; i++) writeFileSync(path.join(content, `note-${i}.txt`), makeContent(2000 + i * 700, 'text', seed + i));
  writeFileSync(path.join(content, 'random.bin'), makeContent(randomMiB * MiB, 'random', seed));
  const image = scratch.path(name);
  run('mkfs.ext4', ['-q', '-F', '-d', content, image, `${sizeMiB}M`]);
  return image;
}

export function valueOf<T>(reply: Reply<T>): T {
  if (!reply.ok) throw new Error(`expected a value, got ${reply.error.code}: ${reply.error.message}`);
  return reply.value;
}

/** Records every event the client receives, and waits for a job's jobs:finished. */
export class EventLog {
  readonly events: AgentEvent[] = [];
  private readonly stop: () => void;
  private waiters: Array<() => void> = [];

  constructor(client: ApiClient) {
    this.stop = client.onEvent((e) => {
      this.events.push(e);
      for (const w of this.waiters) w();
    });
  }

  progressOf(jobId: JobId): JobProgress[] {
    return this.events.flatMap((e) => (e.event === 'jobs:progress' && e.payload.jobId === jobId ? [e.payload] : []));
  }

  finishedOf(jobId: JobId): JobFinished | undefined {
    for (const e of this.events) if (e.event === 'jobs:finished' && e.payload.jobId === jobId) return e.payload;
    return undefined;
  }

  finished(jobId: JobId, timeoutMs = 60_000): Promise<JobFinished> {
    return this.waitFor(() => this.finishedOf(jobId), `job ${jobId} to finish`, timeoutMs);
  }

  async waitFor<T>(found: () => T | undefined, what: string, timeoutMs = 60_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const done = found();
      if (done !== undefined) return done;
      if (Date.now() > deadline) throw new Error(`waited ${timeoutMs} ms for ${what}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 1000);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
      this.waiters = [];
    }
  }

  close(): void {
    this.stop();
  }
}

export function runContractSuite(name: string, makeClient: MakeClient): void {
  describe(`the agent API over ${name}`, () => {
    const scratch = new Scratch('strata-contract-');
    let image: string;
    let repo: string;
    let stateDir: string;
    let client: ApiClient;
    let closeClient: () => Promise<void>;
    let log: EventLog;

    beforeAll(async () => {
      image = makeExt4Image(scratch, 'disk.img');
      repo = scratch.path('repo');
      stateDir = scratch.path('state');
      ({ client, close: closeClient } = await makeClient({ stateDir }));
      log = new EventLog(client);
    });

    afterAll(async () => {
      log?.close();
      await closeClient?.();
      scratch.cleanup();
    });

    it('agent:hello tells the API version and the state directory', async () => {
      const hello = valueOf(await client.call('agent:hello', {}));
      expect(hello.apiVersion).toBe(API_VERSION);
      expect(hello.stateDir).toBe(stateDir);
      expect(hello.agentVersion).toMatch(/^\d+\.\d+\.\d+/);
    });

    it('sources:inspect maps an ext4 image', async () => {
      const layout = valueOf(await client.call('sources:inspect', { path: image }));
      expect(layout.sizeBytes).toBe(32 * MiB);
      expect(layout.volumes.map((v) => v.filesystem)).toEqual(['ext4']);
    });

    it('sources:inspect of a missing file answers NotFound', async () => {
      const reply = await client.call('sources:inspect', { path: scratch.path('no-such.img') });
      expect(reply).toMatchObject({ ok: false, error: { code: 'NotFound' } });
    });

    it('a schema violation answers InvalidInput naming the field', async () => {
      const reply = await client.callUnchecked('sources:inspect', { path: 42 });
      expect(reply).toMatchObject({ ok: false, error: { code: 'InvalidInput', retryable: false } });
      expect(!reply.ok && reply.error.message).toContain('path');
      const extra = await client.callUnchecked('jobs:list', { everything: true });
      expect(extra).toMatchObject({ ok: false, error: { code: 'InvalidInput' } });
    });

    it('an unknown channel answers NotFound and the agent keeps answering', async () => {
      expect(await client.callUnchecked('disks:wipe', {})).toMatchObject({ ok: false, error: { code: 'NotFound' } });
      expect((await client.call('agent:hello', {})).ok).toBe(true);
    });

    it('repository:init makes a repository whose snapshot list is empty', async () => {
      const created = valueOf(await client.call('repository:init', { repo, encryption: 'none' }));
      expect(created.encryption).toBe('none');
      expect(valueOf(await client.call('snapshots:list', { repo }))).toEqual([]);
    });

    it('repository:init refuses encryption without a password', async () => {
      const reply = await client.call('repository:init', { repo: scratch.path('repo-enc'), encryption: 'aes-256-gcm' });
      expect(reply).toMatchObject({ ok: false, error: { code: 'InvalidInput' } });
    });

    it('a backup job emits progress and a finished event, and snapshots:list then shows it', async () => {
      const { jobId } = valueOf(await client.call('jobs:start-backup', { source: image, repo, tags: ['contract'] }));
      const finished = await log.finished(jobId);
      expect(finished.error).toBeUndefined();
      expect(finished.state).toBe('succeeded');
      const progress = log.progressOf(jobId);
      expect(progress.length).toBeGreaterThan(0);
      const last = progress.at(-1)!;
      expect(last.phase).toBe('backup');
      expect(last.bytesDone).toBe(last.bytesTotal);
      expect(last.rateBytesPerSec).toBeGreaterThanOrEqual(0);
      const result = finished.result!;
      expect(result.kind).toBe('backup');
      const snapshots = valueOf(await client.call('snapshots:list', { repo }));
      expect(snapshots).toHaveLength(1);
      expect(result.kind === 'backup' && result.snapshot.id).toBe(snapshots[0]!.id);
      expect(snapshots[0]!.tags).toEqual(['contract']);
    });

    it('a restore job writes the image back byte for byte', async () => {
      const target = scratch.path('restored.img');
      const { jobId } = valueOf(await client.call('jobs:start-restore', { snapshot: 'latest', repo, target }));
      const finished = await log.finished(jobId);
      expect(finished).toMatchObject({ state: 'succeeded', result: { kind: 'restore' } });
      const digest = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');
      expect(digest(target)).toBe(digest(image));
    });

    it('a job that fails finishes with its typed error', async () => {
      const { jobId } = valueOf(await client.call('jobs:start-backup', { source: scratch.path('missing.img'), repo }));
      expect(await log.finished(jobId)).toMatchObject({ state: 'failed', error: { code: 'NotFound' } });
    });

    it('cancelling a queued job ends it as cancelled and leaves the running job alone', async () => {
      const first = valueOf(await client.call('jobs:start-backup', { source: image, repo, full: true }));
      const second = valueOf(await client.call('jobs:start-verify', { repo }));
      const jobs = valueOf(await client.call('jobs:list', {}));
      expect(jobs.find((j) => j.id === second.jobId)?.state).toBe('queued');
      expect(valueOf(await client.call('jobs:cancel', { jobId: second.jobId }))).toEqual({ jobId: second.jobId, state: 'cancelled' });
      expect(await log.finished(second.jobId)).toMatchObject({ state: 'cancelled', error: { code: 'Cancelled' } });
      expect(await log.finished(first.jobId)).toMatchObject({ state: 'succeeded' });
      expect(log.progressOf(second.jobId)).toEqual([]);
    });

    it('a verify job reports a clean repository', async () => {
      const { jobId } = valueOf(await client.call('jobs:start-verify', { repo, readData: true }));
      const finished = await log.finished(jobId);
      expect(finished).toMatchObject({ state: 'succeeded', result: { kind: 'verify', report: { snapshots: 2, problems: [] } } });
    });

    // Once crashed the agent 1 run in 5 (a worker terminated mid native call); the pool now drains first.
    it('cancelling a running backup stops it as cancelled and stores no snapshot', async () => {
      const big = makeExt4Image(scratch, 'big.img', 160, 3, 96);
      const { jobId } = valueOf(await client.call('jobs:start-backup', { source: big, repo }));
      await log.waitFor(() => log.progressOf(jobId)[0], 'the first progress event');
      expect(valueOf(await client.call('jobs:cancel', { jobId }))).toEqual({ jobId, state: 'running' });
      expect(await log.finished(jobId)).toMatchObject({ state: 'cancelled', error: { code: 'Cancelled' } });
      expect(valueOf(await client.call('snapshots:list', { repo }))).toHaveLength(2);
    });

    it('jobs:list shows every job of this agent with its outcome', async () => {
      const jobs = valueOf(await client.call('jobs:list', {}));
      expect(jobs.map((j) => `${j.kind}:${j.state}`)).toEqual([
        'backup:succeeded',
        'restore:succeeded',
        'backup:failed',
        'backup:succeeded',
        'verify:cancelled',
        'verify:succeeded',
        'backup:cancelled',
      ]);
      expect(jobs[0]!.result?.kind).toBe('backup');
      expect(jobs[2]!.error?.code).toBe('NotFound');
    });

    it('jobs:cancel of an unknown or finished job answers with a typed error', async () => {
      const unknown = await client.call('jobs:cancel', { jobId: '00000000-0000-4000-8000-000000000000' });
      expect(unknown).toMatchObject({ ok: false, error: { code: 'NotFound' } });
      const done = valueOf(await client.call('jobs:list', {}))[0]!;
      expect(await client.call('jobs:cancel', { jobId: done.id })).toMatchObject({ ok: false, error: { code: 'InvalidInput' } });
    });
  });
}

/** The console's channels: configured sources, schedules, settings, maps, diffs and target checks. */
export function runConsoleSuite(name: string, makeClient: MakeClient): void {
  describe(`the console's channels over ${name}`, () => {
    const scratch = new Scratch('strata-console-');
    let stateDir: string;
    let client: ApiClient;
    let closeClient: () => Promise<void>;
    let log: EventLog;
    let demoId: string;

    beforeAll(async () => {
      stateDir = scratch.path('state');
      ({ client, close: closeClient } = await makeClient({ stateDir }));
      log = new EventLog(client);
    });

    afterAll(async () => {
      log?.close();
      await closeClient?.();
      scratch.cleanup();
    });

    it('settings start with a default repository in the state directory, not yet made', async () => {
      const settings = valueOf(await client.call('settings:get', {}));
      expect(settings).toEqual({
        repository: { path: path.join(stateDir, 'repository'), id: null, encryption: null },
        retention: { chainLimit: 128 },
        notifications: { onSuccess: true, onFailure: true },
        schedulesPaused: false,
      });
    });

    it('settings:update refuses a folder that is not a repository and keeps the old one', async () => {
      const reply = await client.call('settings:update', { repositoryPath: scratch.path('nothing-here') });
      expect(reply).toMatchObject({ ok: false, error: { code: 'NotFound' } });
      expect(valueOf(await client.call('settings:get', {})).repository.path).toBe(path.join(stateDir, 'repository'));
    });

    it('settings:update points at a new repository, pauses schedules and announces it', async () => {
      const repo = scratch.path('repo');
      valueOf(await client.call('repository:init', { repo, encryption: 'none' }));
      const updated = valueOf(await client.call('settings:update', { repositoryPath: repo, schedulesPaused: true, notifications: { onSuccess: false } }));
      expect(updated.repository).toMatchObject({ path: repo, encryption: 'none' });
      expect(updated.repository.id).toMatch(/^[0-9a-f]{32}$/);
      expect(updated.schedulesPaused).toBe(true);
      expect(updated.notifications).toEqual({ onSuccess: false, onFailure: true });
      await log.waitFor(() => log.events.find((e) => e.event === 'settings:changed'), 'settings:changed');
      valueOf(await client.call('settings:update', { schedulesPaused: false }));
    });

    it('sources:create-demo makes a disk with an ext4 and a FAT volume and lists it', async () => {
      const demo = valueOf(await client.call('sources:create-demo', {}));
      demoId = demo.id;
      expect(demo).toMatchObject({ label: 'Demo disk', demo: true, schedule: null, lastBackup: null, tracking: 'off', layoutError: null });
      expect(demo.layout?.partitionTable).toBe('gpt');
      expect(demo.layout?.volumes.map((v) => v.filesystem)).toEqual(['ext4', 'vfat']);
      expect(valueOf(await client.call('sources:list', {})).map((s) => s.id)).toEqual([demo.id]);
      expect(await client.call('sources:create-demo', {})).toMatchObject({ ok: false, error: { code: 'InvalidInput' } });
    });

    it('sources:add refuses a path that cannot be read, a duplicate and a bad schedule', async () => {
      expect(await client.call('sources:add', { path: scratch.path('missing.img') })).toMatchObject({ ok: false, error: { code: 'NotFound' } });
      const demoPath = valueOf(await client.call('sources:list', {}))[0]!.path;
      expect(await client.call('sources:add', { path: demoPath })).toMatchObject({ ok: false, error: { code: 'InvalidInput' } });
      const image = makeExt4Image(scratch, 'other.img', 16, 5, 2);
      const bad = await client.call('sources:add', { path: image, schedule: '61 * * * *' });
      expect(bad).toMatchObject({ ok: false, error: { code: 'InvalidInput' } });
      expect(!bad.ok && bad.error.message).toMatch(/minute/);
      expect(valueOf(await client.call('sources:list', {}))).toHaveLength(1);
    });

    it('a source added with a schedule shows its next run; update and remove change the list', async () => {
      const image = makeExt4Image(scratch, 'scheduled.img', 16, 6, 2);
      const added = valueOf(await client.call('sources:add', { path: image, label: 'Scheduled', schedule: '0 3 * * *' }));
      expect(added.nextRunAt).not.toBeNull();
      expect(new Date(added.nextRunAt!).getHours()).toBe(3);
      const renamed = valueOf(await client.call('sources:update', { id: added.id, label: 'Nightly', schedule: null }));
      expect(renamed).toMatchObject({ label: 'Nightly', schedule: null, nextRunAt: null });
      expect(valueOf(await client.call('sources:remove', { id: added.id }))).toEqual({ id: added.id });
      expect(await client.call('sources:remove', { id: added.id })).toMatchObject({ ok: false, error: { code: 'NotFound' } });
    });

    it('the scheduler starts a backup of a source when its schedule comes due', async () => {
      const queued = log.events.length;
      valueOf(await client.call('sources:update', { id: demoId, schedule: '* * * * * *' }));
      const job = await log.waitFor(
        () => log.events.slice(queued).find((e) => e.event === 'jobs:queued' && e.payload.kind === 'backup'),
        'a scheduled backup to be queued',
        30_000,
      );
      valueOf(await client.call('sources:update', { id: demoId, schedule: null }));
      if (job.event !== 'jobs:queued') throw new Error('unreachable');
      const finished = await log.finished(job.payload.id);
      expect(finished.state).toBe('succeeded');
      expect(finished.result?.kind === 'backup' && finished.result.snapshot.tags).toEqual(['scheduled']);
      const demo = valueOf(await client.call('sources:list', {}))[0]!;
      expect(demo.lastBackup?.mode).toBe('full');
      expect(demo.lastJob?.state).toBe('succeeded');
    });

    it('after the demo changes, the next backup differs from the first exactly where the diff says', async () => {
      const before = valueOf(await client.call('snapshots:list', {}));
      expect(valueOf(await client.call('sources:change-demo', { id: demoId })).filesChanged).toBeGreaterThan(0);
      const demo = valueOf(await client.call('sources:list', {}))[0]!;
      const { jobId } = valueOf(await client.call('jobs:start-backup', { source: demo.path }));
      expect(await log.finished(jobId)).toMatchObject({ state: 'succeeded' });
      const after = valueOf(await client.call('snapshots:list', {}));
      expect(after).toHaveLength(before.length + 1);
      const [first, second] = [before.at(-1)!, after.at(-1)!];
      expect(second.mode).toBe('incremental');
      const diff = valueOf(await client.call('snapshots:diff', { from: first.id, to: second.id }));
      expect(diff.changedBytes).toBeGreaterThanOrEqual(2 * MiB); // the new 2 MiB photo at least
      expect(diff.changedBytes).toBeLessThan(second.validBytes);
      expect(diff.changedBytes).toBeGreaterThanOrEqual(second.bytesNew - 64 * 1024);
      expect(valueOf(await client.call('snapshots:diff', { from: second.id, to: second.id })).changed).toEqual([]);
      const map = valueOf(await client.call('snapshots:map', { snapshot: second.id }));
      expect(map.stored.reduce((n, [, l]) => n + l, 0)).toBe(second.validBytes);
      const disk = valueOf(await client.call('sources:map', { path: demo.path }));
      expect(disk.used.reduce((n, [, l]) => n + l, 0)).toBe(second.validBytes);
    });

    it('the chain limit forgets the oldest scheduled snapshot after a backup, and a snapshot can be deleted by hand', async () => {
      const before = valueOf(await client.call('snapshots:list', {}));
      expect(before.map((s) => s.tags)).toEqual([['scheduled'], []]);
      valueOf(await client.call('settings:update', { chainLimit: 2 }));
      const demo = valueOf(await client.call('sources:list', {}))[0]!;
      const { jobId } = valueOf(await client.call('jobs:start-backup', { source: demo.path, tags: ['keep'] }));
      expect(await log.finished(jobId)).toMatchObject({ state: 'succeeded' });
      const after = valueOf(await client.call('snapshots:list', {}));
      expect(after.map((s) => s.id)).toEqual([before[1]!.id, after[1]!.id]);
      expect(after[1]!.tags).toEqual(['keep']);
      // Manual snapshots stay over the limit until deleted by hand.
      expect(valueOf(await client.call('snapshots:forget', { snapshots: [before[1]!.id.slice(0, 8)] })).forgotten).toEqual([before[1]!.id]);
      expect(valueOf(await client.call('snapshots:list', {})).map((s) => s.id)).toEqual([after[1]!.id]);
      expect(await client.call('snapshots:forget', { snapshots: ['abcdef99'] })).toMatchObject({ ok: false, error: { code: 'NotFound' } });
      // What is left restores on its own, every block verified.
      const target = scratch.path('after-forget.img');
      const restore = valueOf(await client.call('jobs:start-restore', { snapshot: 'latest', target }));
      const done = await log.finished(restore.jobId);
      expect(done.state).toBe('succeeded');
      expect(done.result?.kind === 'restore' && done.result.restore.verification?.mismatches).toBe(0);
      valueOf(await client.call('settings:update', { chainLimit: 128 }));
    });

    it('targets:check tells a new file from an existing one and a missing folder', async () => {
      const fresh = valueOf(await client.call('targets:check', { snapshot: 'latest', path: scratch.path('new.img') }));
      expect(fresh).toMatchObject({ kind: 'missing', ok: true, needsForce: false, problems: [] });
      expect(fresh.neededBytes).toBe(128 * MiB);
      const existing = scratch.path('existing.img');
      writeFileSync(existing, 'something precious');
      const taken = valueOf(await client.call('targets:check', { snapshot: 'latest', path: existing }));
      expect(taken).toMatchObject({ kind: 'file', ok: false, needsForce: true });
      const nowhere = valueOf(await client.call('targets:check', { snapshot: 'latest', path: scratch.path('no/such/dir/x.img') }));
      expect(nowhere).toMatchObject({ ok: false, needsForce: false });
      expect(nowhere.problems[0]).toMatch(/does not exist/);
    });

    it('only the demo disk may be changed by the console', async () => {
      const image = makeExt4Image(scratch, 'mine.img', 16, 7, 2);
      const mine = valueOf(await client.call('sources:add', { path: image }));
      expect(await client.call('sources:change-demo', { id: mine.id })).toMatchObject({ ok: false, error: { code: 'InvalidInput' } });
    });
  });
}
