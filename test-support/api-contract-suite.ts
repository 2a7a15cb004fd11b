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
