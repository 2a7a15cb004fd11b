// The job queue with stand-in job bodies: order per repository, concurrency across repositories,
// cancel before and during a run, progress throttling and the finished event.
import { describe, expect, it } from 'vitest';
import type { AgentEvent } from '../agent-core/api/contract.js';
import { StrataError } from '../agent-core/api/errors.js';
import type { JobId, JobResult } from '../agent-core/api/job.js';
import { JobQueue, type JobRun } from './jobs.js';

const report: JobResult = { kind: 'verify', report: { snapshots: 0, packs: 0, blobs: 0, bytesRead: 0, problems: [], warnings: [] } };

/** A job body that runs until released (or cancelled), and says when it has started. */
function gate() {
  let release!: () => void;
  let started!: () => void;
  const running = new Promise<void>((r) => (started = r));
  const released = new Promise<void>((r) => (release = r));
  const run = async (r: JobRun): Promise<JobResult> => {
    started();
    await Promise.race([
      released,
      new Promise<never>((_, reject) => r.signal.addEventListener('abort', () => reject(new StrataError('Cancelled', 'stopped')))),
    ]);
    return report;
  };
  return { run, running, release };
}

function collect(queue: JobQueue): AgentEvent[] {
  const events: AgentEvent[] = [];
  queue.subscribe((e) => events.push(e));
  return events;
}

const settle = () => new Promise((r) => setTimeout(r, 10));

describe('JobQueue', () => {
  it('runs jobs of one repository one at a time, in order', async () => {
    const queue = new JobQueue();
    const a = gate();
    const b = gate();
    const first = queue.start({ kind: 'verify', repo: '/r', source: null, run: a.run });
    const second = queue.start({ kind: 'verify', repo: '/r/../r', source: null, run: b.run });
    await a.running;
    expect(queue.get(second)?.state).toBe('queued');
    a.release();
    await b.running;
    expect(queue.get(first)?.state).toBe('succeeded');
    expect(queue.get(second)?.state).toBe('running');
    b.release();
    await queue.idle();
    expect(queue.get(second)?.result).toEqual(report);
  });

  it('runs jobs of different repositories side by side', async () => {
    const queue = new JobQueue();
    const a = gate();
    const b = gate();
    queue.start({ kind: 'verify', repo: '/one', source: null, run: a.run });
    queue.start({ kind: 'verify', repo: '/two', source: null, run: b.run });
    await Promise.all([a.running, b.running]);
    a.release();
    b.release();
    await queue.idle();
  });

  it('cancels a running job through its signal and reports it cancelled', async () => {
    const queue = new JobQueue();
    const events = collect(queue);
    const a = gate();
    const id = queue.start({ kind: 'backup', repo: '/r', source: '/img', run: a.run });
    await a.running;
    expect(queue.cancel(id)).toEqual({ jobId: id, state: 'running' });
    await settle();
    expect(queue.get(id)).toMatchObject({ state: 'cancelled', error: { code: 'Cancelled' } });
    expect(events).toEqual([{ event: 'jobs:finished', payload: { jobId: id, state: 'cancelled', error: expect.objectContaining({ code: 'Cancelled' }) } }]);
  });

  it('a failing job ends failed with its code, and the next one still runs', async () => {
    const queue = new JobQueue();
    const failing = queue.start({ kind: 'verify', repo: '/r', source: null, run: () => Promise.reject(new StrataError('Corrupt', 'bad pack')) });
    const next = queue.start({ kind: 'verify', repo: '/r', source: null, run: async () => report });
    await queue.idle();
    expect(queue.get(failing)).toMatchObject({ state: 'failed', error: { code: 'Corrupt', message: 'bad pack' } });
    expect(queue.get(next)?.state).toBe('succeeded');
  });

  it('throttles progress events but always sends the last one', async () => {
    const queue = new JobQueue();
    const events = collect(queue);
    const id = queue.start({
      kind: 'backup',
      repo: '/r',
      source: '/img',
      run: async (r) => {
        for (let done = 0; done <= 100; done += 10) r.onProgress({ phase: 'backup', bytesDone: done, bytesTotal: 100, elapsedMs: 1000 });
        return report;
      },
    });
    await queue.idle();
    const progress = events.flatMap((e) => (e.event === 'jobs:progress' ? [e.payload] : []));
    expect(progress.map((p) => p.bytesDone)).toEqual([0, 100]);
    expect(progress[1]).toEqual({ jobId: id, phase: 'backup', bytesDone: 100, bytesTotal: 100, rateBytesPerSec: 100, etaMs: 0 });
    expect(queue.get(id)?.progress?.bytesDone).toBe(100);
  });

  it('cancels queued and running jobs on close and then takes no new ones', async () => {
    const queue = new JobQueue();
    const a = gate();
    const running = queue.start({ kind: 'verify', repo: '/r', source: null, run: a.run });
    const queued = queue.start({ kind: 'verify', repo: '/r', source: null, run: async () => report });
    await a.running;
    await queue.close();
    expect(queue.get(running)?.state).toBe('cancelled');
    expect(queue.get(queued)?.state).toBe('cancelled');
    expect(() => queue.start({ kind: 'verify', repo: '/r', source: null, run: async () => report })).toThrow(StrataError);
  });

  it('wait answers the finished job, or the job as it is when its timeout passes first', async () => {
    const queue = new JobQueue();
    const a = gate();
    const running = queue.start({ kind: 'verify', repo: '/r', source: null, run: a.run });
    const queued = queue.start({ kind: 'verify', repo: '/r', source: null, run: async () => report });
    await a.running;
    expect(await queue.wait(running, 0)).toMatchObject({ id: running, state: 'running', finishedAt: null });
    expect(await queue.wait(queued, 0)).toMatchObject({ id: queued, state: 'queued', finishedAt: null });
    // Parked before the end, woken by it: each waiter gets the job with its result.
    const waits = [queue.wait(running), queue.wait(running), queue.wait(queued)];
    a.release();
    const [first, second, third] = await Promise.all(waits);
    expect(first).toMatchObject({ state: 'succeeded', result: report });
    expect(second).toEqual(first);
    expect(third).toMatchObject({ id: queued, state: 'succeeded', result: report });
    expect((await queue.wait(running)).finishedAt).not.toBeNull();
  });

  it('wait wakes for a cancelled job and refuses an unknown one', async () => {
    const queue = new JobQueue();
    const a = gate();
    queue.start({ kind: 'verify', repo: '/r', source: null, run: a.run });
    const queued = queue.start({ kind: 'verify', repo: '/r', source: null, run: async () => report });
    await a.running;
    const waiting = queue.wait(queued);
    queue.cancel(queued);
    expect(await waiting).toMatchObject({ state: 'cancelled', error: { code: 'Cancelled' } });
    await expect(queue.wait('00000000-0000-4000-8000-000000000000' as JobId)).rejects.toMatchObject({ code: 'NotFound' });
    a.release();
    await queue.idle();
  });
});
