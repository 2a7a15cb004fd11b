// The agent's job queue: backups, restores and verifies run one at a time per repository, in the
// order asked, independent of any client; each can be cancelled, reports progress as events and
// ends with a jobs:finished event. Clients come and go; the queue outlives them.
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import type { AgentEvent } from '../agent-core/api/contract.js';
import { StrataError, toStrataError } from '../agent-core/api/errors.js';
import { JOB_WAIT_DEFAULT_MS, JOB_WAIT_MAX_MS, type Job, type JobId, type JobProgress, type JobResult, type QueuedJobKind } from '../agent-core/api/job.js';
import type { JobState } from '../agent-core/api/snapshot.js';
import { rateAndEta, type Progress } from '../agent-core/engine/progress.js';

/** What a job's body gets: where to report progress and the signal that asks it to stop. */
export interface JobRun {
  readonly jobId: JobId;
  readonly signal: AbortSignal;
  readonly onProgress: (p: Progress) => void;
}

export interface JobRequest {
  kind: QueuedJobKind;
  repo: string;
  source: string | null;
  run: (r: JobRun) => Promise<JobResult>;
}

/** Progress events are pushed at most this often per job; the last one (100 %) always goes out. */
const PROGRESS_INTERVAL_MS = 200;

/** Finished jobs kept in memory for jobs:list; older history is in the catalog. */
const FINISHED_JOBS_KEPT = 100;

interface Entry {
  job: Job;
  request: JobRequest;
  controller: AbortController;
  lastEmitMs: number;
  /** Callers of wait() parked until the job ends. */
  waiters: Set<() => void>;
}

export class JobQueue {
  private readonly entries = new Map<JobId, Entry>();
  /** Per repository: the promise that settles when its last queued job has ended. */
  private readonly tails = new Map<string, Promise<void>>();
  private readonly listeners = new Set<(e: AgentEvent) => void>();
  private closed = false;

  /** Queues a job and returns its id at once; it starts when the jobs before it on its repository end. */
  start(request: JobRequest): JobId {
    if (this.closed) throw new StrataError('Unsupported', 'The agent is shutting down and takes no new jobs.');
    const id = randomUUID() as JobId;
    const entry: Entry = {
      job: {
        id,
        kind: request.kind,
        state: 'queued',
        repo: request.repo,
        source: request.source,
        queuedAt: new Date().toISOString(),
        startedAt: null,
        finishedAt: null,
        progress: null,
        error: null,
        result: null,
      },
      request,
      controller: new AbortController(),
      lastEmitMs: 0,
      waiters: new Set(),
    };
    this.entries.set(id, entry);
    const key = path.resolve(request.repo);
    const tail = (this.tails.get(key) ?? Promise.resolve()).then(() => this.runEntry(entry));
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return id;
  }

  /** This agent's jobs, oldest first: queued, running and the recently finished. */
  list(): Job[] {
    return [...this.entries.values()].map((e) => structuredClone(e.job));
  }

  get(id: JobId): Job | undefined {
    const entry = this.entries.get(id);
    return entry ? structuredClone(entry.job) : undefined;
  }

  /**
   * Resolves with the job once it has ended, or after `timeoutMs` with the job as it is then (still
   * queued or running): a long poll, so a client over plain HTTP needs no event stream to learn the
   * end. The job has ended, with its result or error, exactly when its `finishedAt` is set.
   */
  async wait(id: JobId, timeoutMs: number = JOB_WAIT_DEFAULT_MS): Promise<Job> {
    const entry = this.entries.get(id);
    if (!entry) throw new StrataError('NotFound', `No job ${id} in this agent (it never ran here, or finished long ago); list them with jobs:list.`);
    if (entry.job.finishedAt === null) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          entry.waiters.delete(done);
          resolve();
        };
        const timer = setTimeout(done, Math.min(Math.max(0, timeoutMs), JOB_WAIT_MAX_MS));
        entry.waiters.add(done);
      });
    }
    return structuredClone(entry.job);
  }

  /** A queued job is cancelled at once; a running one is asked to stop and ends at its next checkpoint. */
  cancel(id: JobId): { jobId: JobId; state: JobState } {
    const entry = this.entries.get(id);
    if (!entry) throw new StrataError('NotFound', `No job ${id} in this agent; list them with jobs:list.`);
    const { job } = entry;
    if (job.state === 'queued') {
      this.finish(entry, 'cancelled', new StrataError('Cancelled', 'The job was cancelled before it started.'), null);
    } else if (job.state === 'running') {
      entry.controller.abort();
    } else {
      throw new StrataError('InvalidInput', `Job ${id} has already finished (${job.state}); there is nothing to cancel.`);
    }
    return { jobId: id, state: job.state };
  }

  subscribe(listener: (e: AgentEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Resolves when every job queued so far has ended. */
  async idle(): Promise<void> {
    await Promise.all([...this.tails.values()]);
  }

  /** Cancels every job, waits for the running ones to stop, and refuses new ones. */
  async close(): Promise<void> {
    this.closed = true;
    for (const entry of this.entries.values()) {
      if (entry.job.state === 'queued' || entry.job.state === 'running') this.cancel(entry.job.id);
    }
    await Promise.all([...this.tails.values()]);
  }

  private async runEntry(entry: Entry): Promise<void> {
    const { job } = entry;
    if (job.state !== 'queued') return; // cancelled while it waited
    job.state = 'running';
    job.startedAt = new Date().toISOString();
    const run: JobRun = { jobId: job.id, signal: entry.controller.signal, onProgress: (p) => this.progress(entry, p) };
    try {
      const result = await entry.request.run(run);
      this.finish(entry, 'succeeded', null, result);
    } catch (err) {
      const e = toStrataError(err);
      this.finish(entry, e.code === 'Cancelled' ? 'cancelled' : 'failed', e, null);
    }
  }

  private progress(entry: Entry, p: Progress): void {
    const { rateBytesPerSec, etaMs } = rateAndEta(p);
    const payload: JobProgress = { jobId: entry.job.id, phase: p.phase, bytesDone: p.bytesDone, bytesTotal: p.bytesTotal, rateBytesPerSec, etaMs };
    entry.job.progress = payload;
    const now = performance.now();
    if (now - entry.lastEmitMs < PROGRESS_INTERVAL_MS && p.bytesDone < p.bytesTotal) return;
    entry.lastEmitMs = now;
    this.emit({ event: 'jobs:progress', payload });
  }

  private finish(entry: Entry, state: 'succeeded' | 'failed' | 'cancelled', error: StrataError | null, result: JobResult | null): void {
    const { job } = entry;
    job.state = state;
    job.finishedAt = new Date().toISOString();
    job.error = error ? error.toPayload() : null;
    job.result = result;
    for (const wake of [...entry.waiters]) wake();
    this.emit({
      event: 'jobs:finished',
      payload: { jobId: job.id, state, ...(error ? { error: error.toPayload() } : {}), ...(result ? { result } : {}) },
    });
    this.forgetOldJobs();
  }

  private forgetOldJobs(): void {
    const finished = [...this.entries.values()].filter((e) => e.job.finishedAt !== null);
    for (const e of finished.slice(0, Math.max(0, finished.length - FINISHED_JOBS_KEPT))) this.entries.delete(e.job.id);
  }

  private emit(event: AgentEvent): void {
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch {
        // A transport that fails to deliver must not stop the job or the other transports.
      }
    }
  }
}
