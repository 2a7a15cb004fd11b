// The CLI as a client of a real `strata agent` child process on a real loop device: track add,
// status and remove, backups of a tracked device run in the agent with its live tracker, tracking
// survives an agent restart (whose next backup is a resync), and without an agent the CLI says so.
import type { ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Scratch, requireRoot } from '../test-support/disk.js';
import { strata, strataAsync, summaryOf } from '../test-support/cli.js';

const KiB = 1024;
const MiB = 1024 * KiB;

function directWrite(dev: string, offsetBytes: number, lengthBytes: number): void {
  execFileSync('dd', ['if=/dev/urandom', `of=${dev}`, 'bs=4096', `seek=${offsetBytes / 4096}`, `count=${lengthBytes / 4096}`, 'oflag=direct', 'conv=notrunc', 'status=none']);
}

async function waitFor<T>(what: string, probe: () => T | null | undefined | false, timeoutMs = 60_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** No stack trace, one line: what an expected failure prints. */
function expectOneSentence(stderr: string): void {
  expect(stderr).not.toMatch(/^\s+at /m);
  expect(stderr.trim().split('\n')).toHaveLength(1);
}

describe('strata track and tracked backups through a running agent', () => {
  let scratch: Scratch;
  let stateDir: string;
  let agent: ChildProcess | null = null;
  let agentLog = '';

  beforeEach(() => {
    requireRoot();
    scratch = new Scratch('strata-cli-track-');
    stateDir = scratch.path('state');
  });

  afterEach(async () => {
    await stopAgent();
    scratch.cleanup();
  });

  async function startAgent(): Promise<string> {
    const child = strataAsync(['agent', '--listen', '127.0.0.1:0', '--state-dir', stateDir]);
    agent = child;
    child.stdout!.on('data', (d: Buffer) => (agentLog += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (agentLog += d.toString()));
    const urlFile = path.join(stateDir, 'agent.url');
    return waitFor(`the agent's address (log: ${agentLog})`, () => {
      if (child.exitCode !== null) throw new Error(`the agent exited ${child.exitCode}: ${agentLog}`);
      return existsSync(urlFile) && readFileSync(urlFile, 'utf8').trim();
    });
  }

  async function stopAgent(): Promise<void> {
    const child = agent;
    agent = null;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  }

  function cli(args: string[]) {
    return strata([...args, '--state-dir', stateDir]);
  }

  it('without a running agent, track commands fail with NotFound in one sentence, and a stale agent.url is ignored', () => {
    const none = strata(['track', 'status'], { STRATA_STATE_DIR: stateDir });
    expect(none.status, none.stderr).toBe(3);
    expect(none.stderr).toMatch(/No Strata agent is running for .*; start `strata agent --state-dir .*` \(or the systemd unit strata-agent\) first\./);
    expectOneSentence(none.stderr);

    // An agent killed without cleaning up leaves its address behind; nothing answers there.
    execFileSync('mkdir', ['-p', stateDir]);
    writeFileSync(path.join(stateDir, 'agent.url'), 'http://127.0.0.1:9\n');
    const stale = strata(['track', 'add', '/dev/null'], { STRATA_STATE_DIR: stateDir });
    expect(stale.status, stale.stderr).toBe(3);
    expect(stale.stderr).toMatch(/nothing answers at http:\/\/127\.0\.0\.1:9/);
    expectOneSentence(stale.stderr);

    // A backup is not affected: with no agent it runs in the command, as ever.
    const image = scratch.image('plain.img', 4 * MiB);
    const repo = scratch.path('repo');
    expect(cli(['init', '--repo', repo]).status).toBe(0);
    const local = cli(['backup', image, '--repo', repo]);
    expect(local.status, local.stderr).toBe(0);
    expect(local.stdout).toMatch(/backed up by this command, tracker none/);
  });

  it('track add, status and remove; a tracked device backs up in the agent with its live tracker, also after an agent restart', async () => {
    const dev = scratch.loop(scratch.image('disk.img', 16 * MiB));
    directWrite(dev, 1 * MiB, 4 * MiB);
    // The agent's settings repository, so `track status` can show the last backup.
    const repo = path.join(stateDir, 'repository');
    expect(cli(['init', '--repo', repo]).status).toBe(0);

    const url = await startAgent();
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(statSync(path.join(stateDir, 'agent.url')).mode & 0o777).toBe(0o600);

    const added = cli(['track', 'add', dev, '--label', 'scratch disk', '--json']);
    expect(added.status, added.stderr + agentLog).toBe(0);
    expect(added.lines[0]).toMatchObject({ type: 'tracked', path: dev, label: 'scratch disk', tracking: 'live' });

    // An image file has no block layer to watch: the agent's sentence passes through.
    const image = scratch.image('plain.img', 4 * MiB);
    const refused = cli(['track', 'add', image]);
    expect(refused.status).toBe(2);
    expect(refused.stderr).toMatch(/is not a block device; only block devices can be tracked live/);
    expectOneSentence(refused.stderr);

    const first = cli(['backup', dev, '--repo', repo, '--json']);
    expect(first.status, first.stderr + agentLog).toBe(0);
    expect(summaryOf(first).mode).toBe('full');
    // The agent's jobs:progress events, printed as a local backup prints its own.
    expect(first.lines.filter((l) => l.type === 'progress').at(-1)).toMatchObject({ phase: 'backup', bytesDone: 16 * MiB, bytesTotal: 16 * MiB });

    directWrite(dev, 2 * MiB, 16 * KiB);
    directWrite(dev, 12 * MiB, 4 * KiB);
    const second = cli(['backup', dev, '--repo', repo]);
    expect(second.status, second.stderr + agentLog).toBe(0);
    expect(second.stdout).toMatch(/^snapshot [0-9a-f]{12} \(incremental\): read 20\.0 KiB of 16\.0 MiB valid/m);
    expect(second.stdout).toMatch(/^backed up through the agent, tracker live$/m);

    directWrite(dev, 3 * MiB, 4 * KiB);
    const third = cli(['backup', dev, '--repo', repo, '--json']);
    expect(summaryOf(third)).toMatchObject({ mode: 'incremental', tracker: 'live', bytesRead: 4 * KiB, bytesNew: 4 * KiB });

    const status = cli(['track', 'status', '--json']);
    expect(status.status, status.stderr).toBe(0);
    const tracked = status.lines[0] as unknown as Array<{ path: string; tracking: string; lastBackup: { snapshotId: string; mode: string } | null }>;
    expect(tracked).toHaveLength(1);
    expect(tracked[0]).toMatchObject({ path: dev, tracking: 'live', lastBackup: { snapshotId: summaryOf(third).snapshot, mode: 'incremental' } });
    const text = cli(['track', 'status', dev]);
    expect(text.stdout).toMatch(new RegExp(`^${dev}  live   last backup .* \\(incremental, [0-9a-f]{12}\\)  "scratch disk"$`, 'm'));

    // A clean stop withdraws the address; tracking is in the catalog and comes back with the agent.
    await stopAgent();
    expect(existsSync(path.join(stateDir, 'agent.url'))).toBe(false);
    directWrite(dev, 5 * MiB, 8 * KiB); // while no agent watches
    await startAgent();
    await waitFor('the tracker to be live again', () => {
      const s = cli(['track', 'status', dev, '--json']);
      return s.status === 0 && (s.lines[0] as unknown as Array<{ tracking: string }>)[0]?.tracking === 'live';
    });
    const after = cli(['backup', dev, '--repo', repo, '--json']);
    expect(after.status, after.stderr + agentLog).toBe(0);
    expect(summaryOf(after)).toMatchObject({ mode: 'resync', bytesNew: 8 * KiB });
    expect(summaryOf(after).modeReason).toMatch(/restarted/);

    // Off: the source stays, untracked, and its backups run in the command again.
    const removed = cli(['track', 'remove', dev]);
    expect(removed.status, removed.stderr).toBe(0);
    expect(removed.stdout).toMatch(/stopped tracking/);
    expect(cli(['track', 'status']).stdout).toMatch(/^no devices are tracked/);
    const notTracked = cli(['track', 'remove', dev]);
    expect(notTracked.status).toBe(3);
    expectOneSentence(notTracked.stderr);
    const local = cli(['backup', dev, '--repo', repo]);
    expect(local.status, local.stderr).toBe(0);
    expect(local.stdout).toMatch(/^backed up by this command, tracker none$/m);
  });
});
