// What the desktop says when a job ends: a title and one line, or nothing (a job the user cancelled,
// or a kind of outcome the settings silence). Plain data; main.ts shows it with Electron's Notification.
import type { Settings } from '../agent-core/api/console-config.js';
import type { Job, JobFinished } from '../agent-core/api/job.js';

export interface DesktopNotification {
  readonly title: string;
  readonly body: string;
  /** Failures stay until dismissed where the desktop allows it. */
  readonly urgency: 'normal' | 'critical';
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

export function formatBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} B` : `${value < 10 ? value.toFixed(1) : Math.round(value)} ${UNITS[unit]}`;
}

export function formatDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${s % 60} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

const KIND_NAME = { backup: 'Backup', restore: 'Restore', verify: 'Verification' } as const;

/**
 * The notification for a jobs:finished event. The job (from jobs:list) names the kind and the disk;
 * without it the result's kind is used, and a failure is still reported.
 */
export function notificationFor(finished: JobFinished, job: Job | undefined, prefs: Settings['notifications']): DesktopNotification | null {
  if (finished.state === 'cancelled') return null;
  const kind = job?.kind ?? finished.result?.kind;
  const name = kind ? KIND_NAME[kind] : 'A job';
  if (finished.state === 'failed') {
    if (!prefs.onFailure) return null;
    const what = job?.source ? ` of ${job.source}` : '';
    return { title: `${name}${what} failed`, body: finished.error?.message ?? 'See the console for details.', urgency: 'critical' };
  }
  if (!prefs.onSuccess) return null;
  const result = finished.result;
  switch (result?.kind) {
    case 'backup': {
      const s = result.snapshot;
      return {
        title: `Backup of ${s.sourceName} finished`,
        body: `${s.mode === 'full' ? 'Full' : s.mode === 'resync' ? 'Resync' : 'Incremental'} snapshot ${s.id.slice(0, 8)}: ${formatBytes(s.bytesNew)} new, ${formatBytes(s.bytesStored)} stored, in ${formatDuration(s.durationMs)}.`,
        urgency: 'normal',
      };
    }
    case 'restore': {
      const r = result.restore;
      return { title: `Restore to ${r.target} finished`, body: `${formatBytes(r.bytesWritten)} written from snapshot ${r.snapshot.slice(0, 8)} in ${formatDuration(r.durationMs)}.`, urgency: 'normal' };
    }
    case 'verify': {
      const v = result.report;
      // A verification that finds damage is a failure for the person reading it, whatever the job's state.
      if (v.problems.length > 0) {
        if (!prefs.onFailure) return null;
        return { title: 'Verification found problems', body: `${v.problems.length} problem${v.problems.length === 1 ? '' : 's'} in ${v.snapshots} snapshots; open the console to see them.`, urgency: 'critical' };
      }
      return { title: 'Repository verified', body: `${v.snapshots} snapshots and ${formatBytes(v.bytesRead)} checked; no problems.`, urgency: 'normal' };
    }
    default:
      return { title: `${name} finished`, body: 'Open the console for details.', urgency: 'normal' };
  }
}
