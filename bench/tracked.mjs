// The tracked incremental (issue 7): a copy of the bench image on a loop device that a running agent
// tracks (`strata track add`), backed up once untimed, changed by about 1 % through a mount of the
// device, unmounted, and backed up again through the agent, timed: its tracker says which blocks were
// written, so the backup reads those instead of every valid block. Timed twice, each after its own
// 1 % change: first as the product runs it (a client already connected to the agent asks over its
// HTTP API and long-polls the end: bench/agent-backup.mjs), then as `strata backup` from a shell does
// (a fresh CLI process that forwards to the agent). Everything it sets up (agent, loop device,
// scratch copy) is undone in `finally`, and by a watcher if the bench is killed.
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { differingBlockBytes } from './block-delta.mjs';
import { changeImage } from './mutate.mjs';
import { lastJson } from './peers.mjs';
import { failedRow, measuredRow, skippedRow } from './rows.mjs';
import { describeFailure, duBytes, run, settleCache, timed } from './shell.mjs';

const TOOL = 'tracked';
const CLI_TOOL = 'tracked-cli';
const PHASE = 'incremental';
const AGENT_CLIENT = path.join(import.meta.dirname, 'agent-backup.mjs');
const AGENT_READY_MS = 30_000;
const AGENT_STOP_MS = 15_000;
const POLL_MS = 50;

const sleep = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

/**
 * Runs the phase and returns its two rows, `{agent, cli}`; a failure becomes a failed row naming the
 * step that failed (and the row not reached says so).
 * `usedBytes` sizes the change as the main change phase does; `pristinePath` is the image the device
 * starts as (a byte copy of it), so it is the "before" of the differing-blocks count.
 */
export function trackedIncremental(ctx, { bin, pristinePath, usedBytes, log }) {
  const dir = path.join(ctx.runDir, 'tracked');
  const imagePath = path.join(dir, 'disk.img');
  const stateDir = path.join(dir, 'state');
  const repo = path.join(dir, 'repo');
  const cleanups = [];
  let step = 'setup';
  let row;
  let cliRow;
  try {
    if (!existsSync(bin)) return { agent: skippedRow(TOOL, PHASE, `${bin} is missing`), cli: skippedRow(CLI_TOOL, PHASE, `${bin} is missing`) };
    step = 'clearing an earlier run';
    detachLoopsBelow(dir);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(stateDir, { recursive: true });
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));

    step = 'copying the image';
    run('cp', ['--sparse=always', pristinePath, imagePath]);
    step = 'losetup';
    const device = run('losetup', ['--find', '--show', imagePath]).stdout.trim();
    cleanups.push(() => detachLoop(device, imagePath));

    step = 'starting the agent';
    const agent = startAgent(bin, dir, stateDir);
    cleanups.push(() => stopAgent(agent));
    // A killed bench runs no `finally`: this watcher stops the agent and detaches the device then.
    const watcher = startWatcher({ agent, device, imagePath, dir });
    cleanups.push(() => stopWatcher(watcher));
    log(`  tracked: ${device} (a copy of the image), agent pid ${agent.pid} at ${agent.url}`);

    const cli = (args) => {
      const r = run('sh', [bin, ...args, '--state-dir', stateDir], { allowFail: true });
      if (r.status !== 0) throw new Error(`strata ${args.join(' ')}: ${describeFailure(r)}`);
      return r;
    };
    step = 'strata track add';
    const tracked = lastJson(cli(['track', 'add', device, '--json']).stdout, (o) => o.type === 'tracked');
    if (tracked?.tracking !== 'live') throw new Error(`the agent's tracker is ${tracked?.tracking ?? 'unknown'}, not live`);
    step = 'strata init';
    cli(['init', '--repo', repo]);
    step = 'the first (untimed) backup';
    const first = lastJson(cli(['backup', device, '--repo', repo, '--json']).stdout, (o) => o.type === 'summary');
    if (!first) throw new Error('it printed no {type:"summary"} line');
    log(`  tracked: first backup mode ${first.mode}, tracker ${first.tracker}, read ${first.bytesRead} bytes in ${first.durationMs} ms`);

    step = 'changing 1 % through a mount of the device';
    const change = changeImage({ imagePath: device, usedBytes, mountName: 'tracked-change' });
    step = 'counting differing blocks';
    change.differingBlockBytes = differingBlockBytes(pristinePath, device);
    log(`  tracked: wrote ${change.changedBytes} bytes; ${change.differingBlockBytes} bytes of 4 KiB blocks differ on ${device}`);

    step = 'the timed backup through the API';
    row = timedAgentBackup(ctx, { device, repo, stateDir, agent, imagePath, change });

    // The CLI's row needs a change of its own: its "before" is the device as the row above left it.
    step = 'copying the device for the second change';
    const before = path.join(dir, 'before-cli.img');
    run('cp', ['--sparse=always', device, before]);
    step = 'changing another 1 % through a mount of the device';
    const cliChange = changeImage({ imagePath: device, usedBytes, mountName: 'tracked-change-cli', variant: 'cli' });
    step = 'counting differing blocks of the second change';
    cliChange.differingBlockBytes = differingBlockBytes(before, device);
    rmSync(before, { force: true });
    log(`  tracked (CLI): wrote ${cliChange.changedBytes} bytes; ${cliChange.differingBlockBytes} bytes of 4 KiB blocks differ on ${device}`);
    step = 'the timed backup through the CLI';
    cliRow = timedCliBackup(ctx, { bin, device, repo, stateDir, agent, imagePath, change: cliChange });
  } catch (error) {
    if (row === undefined) row = failedRow(TOOL, PHASE, `${step}: ${error.message}`);
    else cliRow = failedRow(CLI_TOOL, PHASE, `${step}: ${error.message}`);
  } finally {
    const failures = [];
    for (const undo of cleanups.reverse()) {
      try {
        undo();
      } catch (error) {
        failures.push(error.message);
      }
    }
    if (failures.length) {
      const note = `cleanup: ${failures.join('; ')}`;
      for (const r of [row, cliRow].filter(Boolean)) {
        if (r.error) r.error += `; ${note}`;
        else r.warning = [r.warning, note].filter(Boolean).join('; ');
      }
    }
  }
  cliRow ??= row.error ? skippedRow(CLI_TOOL, PHASE, 'the row through the API failed first') : failedRow(CLI_TOOL, PHASE, 'not reached');
  return { agent: row, cli: cliRow };
}

/**
 * The product's path: a connected client's `jobs:start-backup` until `jobs:wait` answers the ended
 * job and `sync -f REPO` returns, timed inside bench/agent-backup.mjs after its connection is open.
 */
function timedAgentBackup(ctx, { device, repo, stateDir, agent, imagePath, change }) {
  const beforeBytes = duBytes(repo);
  const r = run(process.execPath, [AGENT_CLIENT, stateDir, device, repo, String(agent.pid), ctx.coldCache ? '1' : '0', imagePath, repo], { allowFail: true });
  if (r.status !== 0) return failedRow(TOOL, PHASE, `bench/agent-backup.mjs: ${describeFailure(r)}`);
  const out = lastJson(r.stdout, (o) => o.job !== undefined);
  if (!out) return failedRow(TOOL, PHASE, 'bench/agent-backup.mjs printed no result');
  if (!out.syncOk) return failedRow(TOOL, PHASE, `sync -f ${repo} failed`);
  if (out.job.state !== 'succeeded') return failedRow(TOOL, PHASE, `the job ended ${out.job.state}: ${out.job.error?.message ?? 'no error'}`);
  const summary = out.job.result.snapshot;
  const liveIncremental = summary.tracker === 'live' && summary.mode === 'incremental';
  const row = {
    tool: TOOL,
    phase: PHASE,
    wallMs: Math.round(out.wallMs),
    diskReadBytes: out.agentReadBytes,
    peakRssBytes: out.agentPeakRssBytes,
    readBytes: summary.bytesRead,
    storedBytes: duBytes(repo) - beforeBytes,
    note: [
      `mode ${summary.mode}, tracker ${summary.tracker}, job durationMs ${summary.durationMs} (the agent's runBackup alone)`,
      `wall: jobs:start-backup → jobs:wait answers the ended job (${Math.round(out.untilFinishedMs)} ms) → sync -f`,
      "disk read: the agent's; peak RSS: the agent's since it started",
    ].join('; '),
    ...measuredFields(summary, device, change, liveIncremental),
  };
  if (!liveIncremental) row.warning = notLive(summary);
  return row;
}

/** What the report reads of either tracked row besides the timing. */
function measuredFields(summary, device, change, liveIncremental) {
  return { summary, device, jobMs: summary.durationMs, changedBytes: change.changedBytes, differingBlockBytes: change.differingBlockBytes, liveIncremental };
}

function notLive(summary) {
  return `NOT a live incremental (mode ${summary.mode}, tracker ${summary.tracker}${summary.modeReason ? `: ${summary.modeReason}` : ''}); its ratios are not computed`;
}

/** What a user at a shell waits for: `strata backup DEVICE --state-dir` (node starts, finds the agent, forwards). */
function timedCliBackup(ctx, { bin, device, repo, stateDir, agent, imagePath, change }) {
  const beforeBytes = duBytes(repo);
  settleCache(ctx.coldCache, [imagePath, repo]);
  const agentReadBefore = processReadBytes(agent.pid);
  const t = timed({ cmd: 'sh', args: [bin, 'backup', device, '--repo', repo, '--state-dir', stateDir, '--json'], outputPath: repo, statsPath: ctx.statsPath });
  const agentReadBytes = agentReadBefore === undefined ? undefined : processReadBytes(agent.pid) - agentReadBefore;
  if (!t.ok) return failedRow(CLI_TOOL, PHASE, `the timed backup: ${t.failure}`);
  const summary = lastJson(t.stdout, (o) => o.type === 'summary');
  if (!summary) return failedRow(CLI_TOOL, PHASE, 'the timed backup printed no {type:"summary"} line');
  const liveIncremental = summary.tracker === 'live' && summary.mode === 'incremental';
  const row = measuredRow(CLI_TOOL, PHASE, t, {
    readBytes: summary.bytesRead,
    storedBytes: duBytes(repo) - beforeBytes,
    note: [
      `mode ${summary.mode}, tracker ${summary.tracker}, job durationMs ${summary.durationMs} (the agent's runBackup alone)`,
      `disk read: the CLI's plus the agent's ${agentReadBytes ?? '?'} bytes; peak RSS: the CLI's`,
    ].join('; '),
    ...measuredFields(summary, device, change, liveIncremental),
  });
  if (agentReadBytes !== undefined && row.diskReadBytes !== undefined) row.diskReadBytes += agentReadBytes;
  if (!liveIncremental) row.warning = notLive(summary);
  return row;
}

/** Bytes a process (all its threads) caused to be read from disk so far, from /proc/PID/io. */
function processReadBytes(pid) {
  try {
    return Number(/^read_bytes:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/io`, 'utf8'))?.[1]);
  } catch {
    return undefined;
  }
}

/**
 * `strata agent` in the background, its output in files: the bench runs synchronously, so a pipe
 * nobody reads would fill and block the agent. Ready once it has written <state>/agent.url, which
 * it does while it listens (docs/CLI.md); its first line of output is the same URL.
 */
function startAgent(bin, dir, stateDir) {
  const outPath = path.join(dir, 'agent.out');
  const out = openSync(outPath, 'w');
  let child;
  try {
    // The launcher execs node, so this pid is the agent's own.
    child = spawn('sh', [bin, 'agent', '--state-dir', stateDir, '--listen', '127.0.0.1:0'], { stdio: ['ignore', out, out] });
  } finally {
    closeSync(out);
  }
  const agent = { pid: child.pid, child, outPath, stateDir, url: undefined };
  if (agent.pid === undefined) throw new Error('could not spawn it');
  const urlPath = path.join(stateDir, 'agent.url');
  const deadline = performance.now() + AGENT_READY_MS;
  while (performance.now() < deadline) {
    if (!isRunning(agent.pid)) throw new Error(`it exited: ${outputTail(agent)}`);
    if (existsSync(urlPath)) {
      agent.url = readFileSync(urlPath, 'utf8').trim();
      if (agent.url) return agent;
    }
    sleep(POLL_MS);
  }
  stopAgent(agent);
  throw new Error(`no ${urlPath} after ${AGENT_READY_MS / 1000} s: ${outputTail(agent)}`);
}

/** SIGTERM, then wait for it to exit (it lets running jobs stop at a checkpoint); SIGKILL if it will not. */
function stopAgent(agent) {
  if (!isRunning(agent.pid)) return;
  agent.child.kill('SIGTERM');
  const deadline = performance.now() + AGENT_STOP_MS;
  while (performance.now() < deadline) {
    if (!isRunning(agent.pid)) return;
    sleep(POLL_MS);
  }
  agent.child.kill('SIGKILL');
  throw new Error(`the agent (pid ${agent.pid}) did not stop ${AGENT_STOP_MS / 1000} s after SIGTERM; killed`);
}

/** Alive and not a zombie: the bench never returns to its event loop to reap its child. */
function isRunning(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

function outputTail(agent) {
  try {
    return readFileSync(agent.outPath, 'utf8').trim().split('\n').slice(-3).join(' | ') || 'no output';
  } catch {
    return 'no output';
  }
}

/** Detaches the device if it is still ours (backed by our scratch file); a busy device detaches when freed. */
function detachLoop(device, imagePath) {
  if (!loopBackingFile(device)?.startsWith(imagePath)) return;
  run('losetup', ['-d', device]);
}

function loopBackingFile(device) {
  const r = run('losetup', ['--list', '--noheadings', '--output', 'BACK-FILE', device], { allowFail: true });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

/** Loop devices a killed earlier run left on a scratch file under `dir` (maybe deleted since). */
function detachLoopsBelow(dir) {
  const r = run('losetup', ['--list', '--noheadings', '--output', 'NAME,BACK-FILE'], { allowFail: true });
  for (const line of r.stdout?.split('\n') ?? []) {
    const [name, ...file] = line.trim().split(/\s+/);
    if (name && file.join(' ').startsWith(`${dir}/`)) run('losetup', ['-d', name], { allowFail: true });
  }
}

/**
 * A detached shell that waits for the bench to end; if it ends without the `finally` having run
 * (killed), it stops the agent and detaches the device, each only if it is still ours.
 */
function startWatcher({ agent, device, imagePath, dir }) {
  const script = [
    'while kill -0 "$1" 2>/dev/null; do sleep 1; done',
    'grep -qsF "$3" "/proc/$2/cmdline" && kill -TERM "$2" && sleep 3',
    'losetup --list --noheadings --output BACK-FILE "$4" 2>/dev/null | grep -qF "$5" && losetup -d "$4"',
    'rm -rf "$6"',
  ].join('\n');
  const child = spawn('sh', ['-c', script, 'tracked-watcher', String(process.pid), String(agent.pid), agent.stateDir, device, imagePath, dir], {
    detached: true,
    stdio: 'ignore',
  });
  child.unref();
  return child;
}

function stopWatcher(watcher) {
  if (watcher.pid !== undefined && isRunning(watcher.pid)) watcher.kill('SIGKILL');
}
