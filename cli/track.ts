// `strata track add|remove|status` and backups of tracked devices: the CLI as a client of the running
// agent, which owns the live trackers (docs/CLI.md). Every agent reply's error passes through as is.
import path from 'node:path';
import type { ConfiguredSource } from '../agent-core/api/console-config.js';
import type { ApiClient, Reply } from '../agent-core/api/contract.js';
import { StrataError } from '../agent-core/api/errors.js';
import type { JobFinished, JobId, JobProgress } from '../agent-core/api/job.js';
import type { SnapshotSummary } from '../agent-core/api/snapshot.js';
import type { Progress } from '../agent-core/engine/progress.js';
import { findAgent, requireAgent } from '../agent/server/find-agent.js';
import { formatDuration } from './output.js';

function valueOf<T>(reply: Reply<T>): T {
  if (!reply.ok) throw new StrataError(reply.error.code, reply.error.message, { retryable: reply.error.retryable });
  return reply.value;
}

/** The agent's source for a device path as the user typed it (the agent stores absolute paths). */
function sourceOf(sources: readonly ConfiguredSource[], device: string): ConfiguredSource | undefined {
  const absolute = path.resolve(device);
  return sources.find((s) => s.path === absolute);
}

async function withAgent<T>(stateDir: string, fn: (client: ApiClient) => Promise<T>): Promise<T> {
  const client = await requireAgent(stateDir);
  try {
    return await fn(client);
  } finally {
    await client.close();
  }
}

export interface TrackedView {
  readonly path: string;
  readonly label: string;
  readonly tracking: ConfiguredSource['tracking'];
  readonly lastBackup: ConfiguredSource['lastBackup'];
}

function view(s: ConfiguredSource): TrackedView {
  return { path: s.path, label: s.label, tracking: s.tracking, lastBackup: s.lastBackup };
}

/** Switches tracking on: adds the device as a source, or switches it on for the source it already is. */
export function trackAdd(stateDir: string, device: string, label: string | undefined): Promise<TrackedView> {
  return withAgent(stateDir, async (client) => {
    const existing = sourceOf(valueOf(await client.call('sources:list', {})), device);
    const source = existing
      ? valueOf(await client.call('sources:update', { id: existing.id, tracking: true, ...(label !== undefined ? { label } : {}) }))
      : valueOf(await client.call('sources:add', { path: path.resolve(device), tracking: true, ...(label !== undefined ? { label } : {}) }));
    return view(source);
  });
}

/** Switches tracking off; the source stays (with its schedule and snapshots). */
export function trackRemove(stateDir: string, device: string): Promise<TrackedView> {
  return withAgent(stateDir, async (client) => {
    const existing = sourceOf(valueOf(await client.call('sources:list', {})), device);
    if (!existing || existing.tracking === 'off') {
      throw new StrataError('NotFound', `The agent does not track ${path.resolve(device)}; \`strata track status\` lists the devices it tracks.`);
    }
    return view(valueOf(await client.call('sources:update', { id: existing.id, tracking: false })));
  });
}

/** The tracked sources (one, with a device), as the agent sees them now. */
export function trackStatus(stateDir: string, device: string | undefined): Promise<TrackedView[]> {
  return withAgent(stateDir, async (client) => {
    const tracked = valueOf(await client.call('sources:list', {})).filter((s) => s.tracking !== 'off');
    if (device === undefined) return tracked.map(view);
    const one = sourceOf(tracked, device);
    if (!one) throw new StrataError('NotFound', `The agent does not track ${path.resolve(device)}; \`strata track add ${device}\` starts tracking it.`);
    return [view(one)];
  });
}

export function trackedLine(t: TrackedView): string {
  const last = t.lastBackup ? `last backup ${t.lastBackup.at.replace('T', ' ').slice(0, 19)} (${t.lastBackup.mode}, ${t.lastBackup.snapshotId.slice(0, 12)})` : 'never backed up';
  return `${t.path}  ${t.tracking.padEnd(5)}  ${last}${t.label !== path.basename(t.path) ? `  "${t.label}"` : ''}`;
}

export interface AgentBackupOptions {
  readonly tags: string[];
  readonly full: boolean;
  readonly onProgress: (p: Progress) => void;
}

/**
 * Runs the backup in the agent when one runs for stateDir and tracks the device, so the agent's
 * tracker's epoch is taken; null when there is no such agent or the device is not tracked (the
 * caller backs up locally). Ctrl-C cancels the agent's job instead of leaving it running.
 */
export async function backupThroughAgent(stateDir: string, device: string, repo: string, options: AgentBackupOptions): Promise<SnapshotSummary | null> {
  const found = await findAgent(stateDir);
  if (!found.client) return null;
  const client = found.client;
  try {
    const sources = await client.call('sources:list', {});
    const source = sources.ok ? sourceOf(sources.value, device) : undefined;
    if (!source || source.tracking === 'off') return null;

    // Subscribed before the job starts: its events may arrive before the reply naming it.
    let jobId: JobId | null = null;
    const early: Array<{ event: string; payload: unknown }> = [];
    let settle: (finished: JobFinished) => void = () => {};
    const finished = new Promise<JobFinished>((resolve) => (settle = resolve));
    const started = Date.now();
    const handle = (event: { event: string; payload: unknown }): void => {
      if (event.event === 'jobs:progress') {
        const p = event.payload as JobProgress;
        // The agent's rate, not this command's clock: the job may have waited in the agent's queue.
        const elapsedMs = p.rateBytesPerSec > 0 ? (p.bytesDone * 1000) / p.rateBytesPerSec : 0;
        if (p.jobId === jobId) options.onProgress({ phase: p.phase, bytesDone: p.bytesDone, bytesTotal: p.bytesTotal, elapsedMs });
      } else if (event.event === 'jobs:finished') {
        const f = event.payload as JobFinished;
        if (f.jobId === jobId) settle(f);
      }
    };
    const unsubscribe = client.onEvent((event) => (jobId === null ? early.push(event) : handle(event)));
    let interrupted = false;
    const cancel = (): void => {
      interrupted = true;
      if (jobId !== null) void client.call('jobs:cancel', { jobId });
    };
    process.on('SIGINT', cancel);
    // The socket gives no close event to an ApiClient; a call that cannot be answered says it is gone.
    let lost: (err: StrataError) => void = () => {};
    const gone = new Promise<never>((_resolve, reject) => (lost = reject));
    gone.catch(() => undefined); // a watch answering after the race must not be an unhandled rejection
    const watch = setInterval(() => {
      void client.call('agent:hello', {}).then((r) => {
        if (!r.ok) lost(new StrataError('NotFound', 'The agent stopped answering during the backup; the job may still finish there (`strata snapshots` will show it), else run the backup again.', { retryable: true }));
      });
    }, 1000);
    try {
      jobId = valueOf(await client.call('jobs:start-backup', { source: source.path, repo: path.resolve(repo), tags: options.tags, full: options.full })).jobId;
      if (interrupted) cancel(); // Ctrl-C while the job was being started
      for (const event of early.splice(0)) handle(event);
      const end = await Promise.race([finished, gone]);
      if (end.state !== 'succeeded') {
        const e = end.error ?? { code: end.state === 'cancelled' ? 'Cancelled' : 'Internal', message: `The agent's backup job ended ${end.state}.`, retryable: false };
        throw new StrataError(e.code, e.message, { retryable: e.retryable });
      }
      if (end.result?.kind !== 'backup') throw new StrataError('Internal', `The agent's backup job finished without a snapshot (after ${formatDuration(Date.now() - started)}).`);
      return end.result.snapshot;
    } finally {
      clearInterval(watch);
      process.off('SIGINT', cancel);
      unsubscribe();
    }
  } finally {
    await client.close();
  }
}
