// Live tracking through the agent's API on a real loop device: switched on per source, its second
// backup reads only what changed, switching it off or removing the source stops the tracker, and
// an image file cannot be tracked.
import { execFileSync, spawn } from 'node:child_process';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ConfiguredSource } from '../agent-core/api/console-config.js';
import type { Reply } from '../agent-core/api/contract.js';
import type { JobId } from '../agent-core/api/job.js';
import type { SnapshotSummary } from '../agent-core/api/snapshot.js';
import { Scratch } from '../test-support/disk.js';
import { openAgent, type Agent } from './agent.js';
import { dispatch } from './dispatch.js';

const KiB = 1024;
const MiB = 1024 * KiB;

function directWrite(dev: string, offsetBytes: number, lengthBytes: number): void {
  execFileSync('dd', ['if=/dev/urandom', `of=${dev}`, 'bs=4096', `seek=${offsetBytes / 4096}`, `count=${lengthBytes / 4096}`, 'oflag=direct', 'conv=notrunc', 'status=none']);
}

describe('live tracking through the agent API', () => {
  let scratch: Scratch;
  let agent: Agent | undefined;
  const lines: string[] = [];

  beforeEach(() => {
    scratch = new Scratch('strata-agent-tracking-');
  });

  afterEach(async () => {
    await agent?.close();
    agent = undefined;
    scratch.cleanup();
  });

  async function call<T>(channel: string, input: unknown): Promise<Reply<T>> {
    return (await dispatch(agent!.handlers, channel, input, (l) => lines.push(l))) as Reply<T>;
  }

  async function value<T>(channel: string, input: unknown): Promise<T> {
    const r = await call<T>(channel, input);
    if (!r.ok) throw new Error(`${channel}: ${r.error.code}: ${r.error.message}`);
    return r.value;
  }

  async function backupOf(dev: string): Promise<SnapshotSummary> {
    const { jobId } = await value<{ jobId: JobId }>('jobs:start-backup', { source: dev });
    await agent!.jobs.idle();
    const job = agent!.jobs.get(jobId)!;
    expect(job.error).toBeNull();
    expect(job.result?.kind).toBe('backup');
    return (job.result as { snapshot: SnapshotSummary }).snapshot;
  }

  it('buffered writes to the device node, still in its page cache, are in the next tracked backup', async () => {
    const dev = scratch.loop(scratch.image('buffered.img', 16 * MiB));
    directWrite(dev, 0, 16 * MiB);
    agent = await openAgent({ stateDir: scratch.path('state'), log: (l) => lines.push(l) });
    await value('repository:init', { repo: scratch.path('repo'), encryption: 'none' });
    await value('settings:update', { repositoryPath: scratch.path('repo') });
    const added = await value<ConfiguredSource>('sources:add', { path: dev, tracking: true });
    expect((await backupOf(dev)).mode).toBe('full');
    // No O_DIRECT and no fsync, and another opener holds the device (as a running program would), so
    // dd's close is not the last one that writes the page cache back: the 32 KiB stay dirty there.
    const holder = spawn('sh', ['-c', `exec 3<${dev}; sleep 60`], { stdio: 'ignore' });
    scratch.defer(() => holder.kill());
    await new Promise((resolve) => setTimeout(resolve, 200));
    execFileSync('dd', ['if=/dev/urandom', `of=${dev}`, 'bs=4096', `seek=${(5 * MiB) / 4096}`, 'count=8', 'conv=notrunc', 'status=none']);
    const second = await backupOf(dev);
    holder.kill();
    expect(second).toMatchObject({ mode: 'incremental', tracker: 'live', bytesNew: 32 * KiB });
    // What the snapshot holds there is what the device now holds.
    const restored = scratch.path('restored.img');
    await value('jobs:start-restore', { snapshot: second.id, target: restored });
    await agent.jobs.idle();
    const read = (file: string) => execFileSync('dd', [`if=${file}`, 'bs=4096', `skip=${(5 * MiB) / 4096}`, 'count=8', 'status=none', 'iflag=direct']);
    expect(read(restored).equals(read(dev))).toBe(true);
    await value('sources:remove', { id: added.id });
  });

  it('a tracked loop device backs up twice, the second reading only the written blocks', async () => {
    const dev = scratch.loop(scratch.image('disk.img', 16 * MiB));
    directWrite(dev, 1 * MiB, 4 * MiB);
    agent = await openAgent({ stateDir: scratch.path('state'), log: (l) => lines.push(l) });
    await value('repository:init', { repo: scratch.path('repo'), encryption: 'none' });
    await value('settings:update', { repositoryPath: scratch.path('repo') });

    const added = await value<ConfiguredSource>('sources:add', { path: dev, tracking: true });
    expect(added.tracking).toBe('live');
    const first = await backupOf(dev);
    expect(first.mode).toBe('full');

    directWrite(dev, 2 * MiB, 16 * KiB);
    directWrite(dev, 12 * MiB, 4 * KiB);
    // The console's overlay: what the tracker has seen since the last backup, without ending the epoch.
    type Changes = { tracking: string; changed: [number, number][]; changedBytes: number };
    let seen = await value<Changes>('sources:changes', { id: added.id });
    for (let i = 0; i < 50 && seen.changedBytes < 20 * KiB; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100)); // events reach the agent a moment after the write
      seen = await value<Changes>('sources:changes', { id: added.id });
    }
    expect(seen).toEqual({ tracking: 'live', changed: [[2 * MiB, 16 * KiB], [12 * MiB, 4 * KiB]], changedBytes: 20 * KiB });
    const second = await backupOf(dev);
    expect(second).toMatchObject({ mode: 'incremental', tracker: 'live', bytesRead: 20 * KiB, bytesNew: 20 * KiB });
    // The backup's take ended the epoch: nothing is pending any more.
    expect((await value<Changes>('sources:changes', { id: added.id })).changedBytes).toBe(0);

    // Off: the tracker stops, and the next backup compares every valid block again.
    const off = await value<ConfiguredSource>('sources:update', { id: added.id, tracking: false });
    expect(off.tracking).toBe('off');
    expect(agent.trackers.state(added.id)).toBe('off');
    const third = await backupOf(dev);
    expect(third).toMatchObject({ mode: 'incremental', tracker: 'none', bytesRead: 16 * MiB });

    // On again: a new epoch, so the first tracked backup is a resync; then tracked incrementals.
    expect((await value<ConfiguredSource>('sources:update', { id: added.id, tracking: true })).tracking).toBe('live');
    const fourth = await backupOf(dev);
    expect(fourth.mode).toBe('resync');
    expect(fourth.modeReason).toMatch(/not taken under the live tracker/);
    directWrite(dev, 3 * MiB, 4 * KiB);
    expect(await backupOf(dev)).toMatchObject({ mode: 'incremental', tracker: 'live', bytesRead: 4 * KiB });

    await value('sources:remove', { id: added.id });
    expect(agent.trackers.state(added.id)).toBe('off');
  });

  it('an image file cannot be tracked: sources:add and sources:update refuse it and store nothing', async () => {
    const image = scratch.image('plain.img', 8 * MiB);
    agent = await openAgent({ stateDir: scratch.path('state'), log: (l) => lines.push(l) });
    const refused = await call('sources:add', { path: image, tracking: true });
    expect(refused.ok).toBe(false);
    if (!refused.ok) {
      expect(refused.error.code).toBe('InvalidInput');
      expect(refused.error.message).toMatch(/only block devices can be tracked live/);
    }
    expect(await value<ConfiguredSource[]>('sources:list', {})).toEqual([]);

    const added = await value<ConfiguredSource>('sources:add', { path: image });
    expect(added.tracking).toBe('off');
    const update = await call('sources:update', { id: added.id, tracking: true });
    expect(update.ok).toBe(false);
    if (!update.ok) expect(update.error.message).toMatch(/only block devices can be tracked live/);
    expect((await value<ConfiguredSource[]>('sources:list', {}))[0]!.tracking).toBe('off');
  });

  it('a tracked source gets its tracker back when the agent restarts, and its next backup is a resync', async () => {
    const dev = scratch.loop(scratch.image('disk.img', 8 * MiB));
    directWrite(dev, 1 * MiB, 1 * MiB);
    const stateDir = scratch.path('state');
    agent = await openAgent({ stateDir, log: (l) => lines.push(l) });
    await value('repository:init', { repo: scratch.path('repo'), encryption: 'none' });
    await value('settings:update', { repositoryPath: scratch.path('repo') });
    const added = await value<ConfiguredSource>('sources:add', { path: dev, tracking: true });
    await backupOf(dev);
    await agent.close();

    directWrite(dev, 5 * MiB, 8 * KiB); // while no agent runs
    agent = await openAgent({ stateDir, log: (l) => lines.push(l) });
    const after = await backupOf(dev);
    expect(after.mode).toBe('resync');
    expect(after.modeReason).toMatch(/restarted/);
    expect(after.bytesNew).toBe(8 * KiB);
    expect((await value<ConfiguredSource[]>('sources:list', {})).find((s) => s.id === added.id)?.tracking).toBe('live');
  });
});
