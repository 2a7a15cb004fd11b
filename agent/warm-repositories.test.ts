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
import { openAgent, type Agent } from './agent.js';

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
