// What the agent keeps warm between jobs, with a real agent, real ext4 images, the real CLI and a
// real repository: the memo of index files and manifests follows what other processes write and
// remove, and one compute pool serves job after job until the agent closes.
import { readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Job, JobId } from '../agent-core/api/job.js';
import { makeExt4Image } from '../test-support/api-contract-suite.js';
import { strata, summaryOf } from '../test-support/cli.js';
import { run, Scratch } from '../test-support/disk.js';
import { Repository } from '../agent-core/repo/repository.js';
import { LocalDirBackend } from '../drivers/storage/local-dir-backend.js';
import { openAgent, type Agent } from './agent.js';
import { WarmRepositories } from './warm-repositories.js';

describe('the agent between jobs', () => {
  let scratch: Scratch;
  let agent: Agent;
  let repo: string;

  beforeEach(async () => {
    scratch = new Scratch('strata-warm-');
    agent = await openAgent({ stateDir: scratch.path('state'), log: () => undefined });
    repo = scratch.path('repo');
    await agent.handlers['repository:init']({ repo, encryption: 'none' });
  });

  afterEach(async () => {
    await agent.close();
    scratch.cleanup();
  });

  async function ended(jobId: JobId): Promise<Job> {
    let job = await agent.jobs.wait(jobId);
    while (job.finishedAt === null) job = await agent.jobs.wait(jobId);
    return job;
  }

  async function backup(source: string): Promise<{ bytesNew: number; bytesRead: number; mode: string }> {
    const { jobId } = await agent.handlers['jobs:start-backup']({ source, repo });
    const job = await ended(jobId);
    if (job.result?.kind !== 'backup') throw new Error(`the backup of ${source} ended ${job.state}: ${job.error?.message}`);
    return job.result.snapshot;
  }

  async function verifyProblems(): Promise<unknown[]> {
    const { jobId } = await agent.handlers['jobs:start-verify']({ repo, readData: true });
    const job = await ended(jobId);
    if (job.result?.kind !== 'verify') throw new Error(`verify ended ${job.state}: ${job.error?.message}`);
    return job.result.report.problems;
  }

  it('knows the chunks the CLI stored between two of its jobs, and reuses one compute pool until it closes', async () => {
    const a = makeExt4Image(scratch, 'a.img', 32, 1);
    await backup(a);
    // The second job reads the index the first one wrote, so the agent holds it from here on.
    expect((await backup(a)).bytesNew).toBe(0);
    // Another process writes into the same repository: new packs, index files and a snapshot.
    const b = makeExt4Image(scratch, 'b.img', 32, 2);
    const cli = strata(['backup', b, '--repo', repo, '--state-dir', scratch.path('cli-state'), '--json']);
    expect(cli.status).toBe(0);
    expect(summaryOf(cli).bytesNew).toBeGreaterThan(1024 * 1024);
    // The same disk under another name: a full backup, every chunk of which the CLI stored. An index
    // kept from before the CLI ran would store them all again.
    const copy = scratch.path('b-copy.img');
    run('cp', [b, copy]);
    const again = await backup(copy);
    expect(again.mode).toBe('full');
    expect(again.bytesRead).toBeGreaterThan(1024 * 1024);
    expect(again.bytesNew).toBe(0);
    expect(await verifyProblems()).toEqual([]);
    expect(agent.warm.poolsStarted).toBe(1);
    expect(agent.warm.poolsStopped).toBe(0);
    await agent.close();
    expect(agent.warm.poolsStopped).toBe(1);
  });

  it('stores chunks again when their index files are gone, instead of trusting what it read before', async () => {
    const a = makeExt4Image(scratch, 'a.img', 32, 3);
    const first = await backup(a);
    expect(first.bytesNew).toBeGreaterThan(1024 * 1024);
    expect((await backup(a)).bytesNew).toBe(0);
    // Everything the first job wrote vanishes behind the agent's back (another process, a prune).
    for (const dir of ['index', 'data', 'snapshots']) {
      for (const entry of readdirSync(path.join(repo, dir))) rmSync(path.join(repo, dir, entry), { recursive: true });
    }
    const second = await backup(a);
    expect(second.mode).toBe('full');
    expect(second.bytesNew).toBe(first.bytesNew);
    expect(await verifyProblems()).toEqual([]);
  });
});

describe('WarmRepositories and encrypted repositories', () => {
  it('derives the password key once per repository, never for a wrong password, and forgets it when closed', async () => {
    const scratch = new Scratch('strata-warm-keys-');
    const warm = new WarmRepositories();
    try {
      const repoPath = scratch.path('repo');
      await Repository.init(new LocalDirBackend(repoPath), { encryption: 'aes-256-gcm', password: 'right horse' });
      const first = await warm.open(repoPath, () => 'right horse');
      const second = await warm.open(repoPath, () => 'right horse');
      expect(warm.wrappingKeysDerived).toBe(1);
      // The same keys either way: the second open unwrapped the key file with the remembered key.
      expect(second.keys.encKey!.equals(first.keys.encKey!)).toBe(true);
      expect(second.keys.idKey.equals(first.keys.idKey)).toBe(true);
      await expect(warm.open(repoPath, () => 'wrong horse')).rejects.toMatchObject({ code: 'PermissionDenied' });
      expect(warm.wrappingKeysDerived).toBe(1);
      // Another repository with the same password has its own salt: its own key.
      const otherPath = scratch.path('other');
      await Repository.init(new LocalDirBackend(otherPath), { encryption: 'aes-256-gcm', password: 'right horse' });
      await warm.open(otherPath, () => 'right horse');
      expect(warm.wrappingKeysDerived).toBe(2);
      await warm.close();
      // Closed: opens still work, as in the CLI, and remember nothing.
      expect((await warm.open(repoPath, () => 'right horse')).keys.idKey.equals(first.keys.idKey)).toBe(true);
      expect(warm.wrappingKeysDerived).toBe(2);
    } finally {
      await warm.close();
      scratch.cleanup();
    }
  });
});
