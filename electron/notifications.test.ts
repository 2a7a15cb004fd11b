// The text of desktop notifications: what a person reads when a job ends while the window is closed.
import { describe, expect, it } from 'vitest';
import type { Job, JobFinished, JobId } from '../agent-core/api/job.js';
import { formatBytes, formatDuration, notificationFor } from './notifications.js';

const JOB_ID = '6f1c2d3e-4a5b-4c6d-8e7f-000000000001' as JobId;
const HEX = (c: string) => c.repeat(64);
const ALL = { onSuccess: true, onFailure: true };

function job(over: Partial<Job> = {}): Job {
  return {
    id: JOB_ID,
    kind: 'backup',
    state: 'succeeded',
    repo: '/srv/repo',
    source: '/dev/sdb',
    queuedAt: '2026-11-23T10:00:00.000Z',
    startedAt: '2026-11-23T10:00:01.000Z',
    finishedAt: '2026-11-23T10:04:00.000Z',
    progress: null,
    error: null,
    result: null,
    ...over,
  };
}

const backupDone: JobFinished = {
  jobId: JOB_ID,
  state: 'succeeded',
  result: {
    kind: 'backup',
    snapshot: {
      id: HEX('a'),
      sourceId: HEX('b'),
      sourceName: '/dev/sdb',
      parentId: HEX('c'),
      mode: 'incremental',
      modeReason: null,
      tracker: 'none',
      createdAt: '2026-11-23T10:04:00.000Z',
      hostname: 'host',
      tags: [],
      sourceBytes: 64 * 2 ** 30,
      validBytes: 20 * 2 ** 30,
      bytesRead: 3 * 2 ** 30,
      bytesNew: 1536 * 2 ** 20,
      bytesStored: 700 * 2 ** 20,
      durationMs: 245_000,
    },
  },
};

describe('desktop notifications', () => {
  it('says what a backup stored and how long it took', () => {
    expect(notificationFor(backupDone, job(), ALL)).toEqual({
      title: 'Backup of /dev/sdb finished',
      body: 'Incremental snapshot aaaaaaaa: 1.5 GiB new, 700 MiB stored, in 4 min 5 s.',
      urgency: 'normal',
    });
  });

  it('gives a failure the agent’s sentence and keeps it on screen', () => {
    const failed: JobFinished = { jobId: JOB_ID, state: 'failed', error: { code: 'NoSpace', message: 'No space left on /srv; free space or choose another location.', retryable: false } };
    expect(notificationFor(failed, job({ state: 'failed' }), ALL)).toEqual({ title: 'Backup of /dev/sdb failed', body: 'No space left on /srv; free space or choose another location.', urgency: 'critical' });
    expect(notificationFor(failed, undefined, ALL)).toMatchObject({ title: 'A job failed' });
  });

  it('says nothing for a job the user cancelled', () => {
    expect(notificationFor({ jobId: JOB_ID, state: 'cancelled', error: { code: 'Cancelled', message: 'x', retryable: false } }, job(), ALL)).toBeNull();
  });

  it('follows the settings: successes and failures can each be silenced', () => {
    const failed: JobFinished = { jobId: JOB_ID, state: 'failed', error: { code: 'Internal', message: 'x', retryable: false } };
    expect(notificationFor(backupDone, job(), { onSuccess: false, onFailure: true })).toBeNull();
    expect(notificationFor(failed, job(), { onSuccess: true, onFailure: false })).toBeNull();
    expect(notificationFor(failed, job(), { onSuccess: false, onFailure: true })).not.toBeNull();
  });

  it('reports a verification with problems as a failure, and a clean one as verified', () => {
    const report = { snapshots: 3, packs: 10, blobs: 100, bytesRead: 5 * 2 ** 20, problems: [], warnings: [] };
    const clean: JobFinished = { jobId: JOB_ID, state: 'succeeded', result: { kind: 'verify', report } };
    expect(notificationFor(clean, job({ kind: 'verify', source: null }), ALL)).toEqual({ title: 'Repository verified', body: '3 snapshots and 5.0 MiB checked; no problems.', urgency: 'normal' });
    const bad: JobFinished = { ...clean, result: { kind: 'verify', report: { ...report, problems: [{ object: 'pack x', problem: 'bad' }] } } };
    expect(notificationFor(bad, job({ kind: 'verify' }), ALL)).toMatchObject({ title: 'Verification found problems', urgency: 'critical', body: expect.stringContaining('1 problem in 3 snapshots') });
    expect(notificationFor(bad, job({ kind: 'verify' }), { onSuccess: true, onFailure: false })).toBeNull();
  });

  it('says where a restore wrote', () => {
    const done: JobFinished = { jobId: JOB_ID, state: 'succeeded', result: { kind: 'restore', restore: { snapshot: HEX('d'), target: '/dev/sdc', bytesWritten: 10 * 2 ** 30, durationMs: 90_000 } } };
    expect(notificationFor(done, job({ kind: 'restore' }), ALL)).toEqual({ title: 'Restore to /dev/sdc finished', body: '10 GiB written from snapshot dddddddd in 1 min 30 s.', urgency: 'normal' });
  });

  it('formats sizes and durations for people', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(1023)).toBe('1023 B');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(300 * 2 ** 30)).toBe('300 GiB');
    expect(formatDuration(4_400)).toBe('4 s');
    expect(formatDuration(3 * 3600_000 + 60_000)).toBe('3 h 1 min');
  });
});
