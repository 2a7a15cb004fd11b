// The agent's per-source backup scheduler: starts a backup when a source's cron schedule comes round,
// once (as a catch-up) after sleep or power-off, and never while that source already has a backup.
//
// Time zone: schedules are read in the machine's local zone (croner's default, the process's TZ), so
// "0 2 * * *" means 02:00 on the wall clock of the machine being backed up. croner handles daylight
// saving: a time skipped by the change does not occur that day, a time repeated by it occurs once.
import { Cron } from 'croner';
import { StrataError, toStrataError } from '../agent-core/api/errors.js';

export interface ScheduleClock {
  now(): Date;
  /** Calls fn after ms (a monotonic delay); returns a function that cancels it. */
  setTimer(ms: number, fn: () => void): () => void;
}

export interface ScheduledSource {
  id: string;
  /** A cron expression of 5 fields (minute first) or 6 (second first), or null for no schedule. */
  schedule: string | null;
  /** Start of the last scheduled or manual backup of this source. */
  lastRunAt: Date | null;
  addedAt: Date;
}

export interface SchedulerDeps {
  clock: ScheduleClock;
  /** Read afresh on every evaluation, so edits take effect without telling the scheduler. */
  sources(): Promise<ScheduledSource[]>;
  /** A paused scheduler starts nothing, but nextRunAt still answers. */
  paused(): Promise<boolean> | boolean;
  /** A backup of this source is queued or running. */
  isRunning(sourceId: string): boolean;
  startBackup(sourceId: string, why: 'scheduled' | 'catch-up'): Promise<void>;
  log(line: string): void;
}

export interface SchedulerOptions {
  /** The longest the scheduler sleeps between evaluations; also how late a start may be and still count as 'scheduled'. */
  maxTimerMs?: number;
}

/**
 * Timers run on a monotonic clock that stops while the machine sleeps and ignores clock changes, so
 * the scheduler wakes at least this often to look at the wall clock again.
 */
export const SCHEDULER_MAX_TIMER_MS = 60_000;

/** The real clock; the timer does not keep the process alive by itself. */
export const systemClock: ScheduleClock = {
  now: () => new Date(),
  setTimer: (ms, fn) => {
    const timer = setTimeout(fn, ms);
    timer.unref();
    return () => clearTimeout(timer);
  },
};

const EXAMPLE = 'write five fields (minute hour day-of-month month day-of-week), for example "0 2 * * *" for 02:00 every day';

const FIELD_RANGES: Record<string, string> = {
  second: 'second (0-59)',
  minute: 'minute (0-59)',
  hour: 'hour (0-23)',
  day: 'day of month (1-31)',
  month: 'month (1-12 or JAN-DEC)',
  dayOfWeek: 'day of week (0-7 or SUN-SAT)',
};

type Parsed = { cron: Cron } | { problem: string };

function parse(expr: string): Parsed {
  const shown = JSON.stringify(expr);
  const fields = expr.trim().split(/\s+/).filter((f) => f !== '');
  if (fields.length === 0) return { problem: `The schedule is empty; ${EXAMPLE}.` };
  // croner takes a string with a colon as a single date to fire once; a backup schedule repeats.
  if (expr.includes(':')) return { problem: `The schedule ${shown} is a date, not a repeating schedule; ${EXAMPLE}.` };
  const nickname = fields.length === 1 && fields[0]!.startsWith('@');
  if (!nickname && fields.length !== 5 && fields.length !== 6) {
    return { problem: `The schedule ${shown} has ${fields.length} field${fields.length === 1 ? '' : 's'}; ${EXAMPLE}, or six with a seconds field first.` };
  }
  let cron: Cron;
  try {
    // No callback: croner sets no timer of its own; it only computes occurrences.
    cron = new Cron(expr.trim(), { mode: '5-or-6-parts' });
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    // croner names the field but shows day of month and month counted from 0; give the range instead.
    const field = FIELD_RANGES[/Invalid value for (\w+)/.exec(message)?.[1] ?? ''];
    const detail = field ? `the ${field} is out of range` : message.replace(/^CronPattern:\s*/, '').replace(/\.$/, '').replace(/^\w/, (c) => c.toLowerCase());
    return { problem: `The schedule ${shown} is not a valid cron expression (${detail}); ${EXAMPLE}.` };
  }
  if (cron.nextRun() === null) return { problem: `The schedule ${shown} never comes round (it names a date that does not exist); ${EXAMPLE}.` };
  return { cron };
}

/** Null for a schedule the scheduler accepts, else one sentence saying what is wrong and how to write it. */
export function validateSchedule(expr: string): string | null {
  const parsed = parse(expr);
  return 'problem' in parsed ? parsed.problem : null;
}

/** validateSchedule as a StrataError (InvalidInput), for handlers that refuse bad input. */
export function assertSchedule(expr: string): void {
  const problem = validateSchedule(expr);
  if (problem !== null) throw new StrataError('InvalidInput', problem);
}

export class Scheduler {
  private readonly deps: SchedulerDeps;
  private readonly maxTimerMs: number;
  private readonly parsed = new Map<string, Parsed>();
  /**
   * When this scheduler last started each source. The caller's lastRunAt may be updated only later
   * (when the job runs or is recorded); this keeps one occurrence from starting two backups meanwhile.
   */
  private readonly startedMs = new Map<string, number>();
  /** Per source, a last run found in the future (the clock was set back) and when that was first seen. */
  private readonly setBack = new Map<string, { lastMs: number; seenMs: number }>();
  /** Sources with an invalid schedule already logged, keyed by id and expression. */
  private reportedInvalid = new Set<string>();
  private cancelTimer: (() => void) | null = null;
  private started = false;
  private stopped = false;
  private evaluating: Promise<void> | null = null;
  private again = false;

  constructor(deps: SchedulerDeps, options: SchedulerOptions = {}) {
    this.deps = deps;
    this.maxTimerMs = options.maxTimerMs ?? SCHEDULER_MAX_TIMER_MS;
  }

  /** Evaluates at once (starting catch-ups of what came due while the agent was not running), then on its timer. */
  start(): void {
    if (this.stopped) throw new StrataError('Unsupported', 'The scheduler has been stopped; the agent makes a new one when it starts again.');
    if (this.started) return;
    this.started = true;
    void this.poke();
  }

  /** Cancels the timer; nothing is started afterwards, even by an evaluation already under way. */
  stop(): void {
    this.stopped = true;
    this.cancelTimer?.();
    this.cancelTimer = null;
  }

  /**
   * Evaluates now, e.g. after a backup ends (a source kept waiting by it starts) or schedules change.
   * Resolves when that evaluation has finished; a poke during an evaluation runs one more after it.
   */
  poke(): Promise<void> {
    if (!this.started || this.stopped) return Promise.resolve();
    if (this.evaluating) {
      this.again = true;
      return this.evaluating;
    }
    this.evaluating = this.evaluateUntilSettled();
    return this.evaluating;
  }

  /**
   * When the scheduler will start this source: the first occurrence after its last run, in the past
   * when it is due and waiting (paused, or its previous backup has not ended); null for no schedule,
   * an invalid one, or one that never comes round again.
   */
  nextRunAt(source: ScheduledSource): Date | null {
    const dueMs = this.occurrenceMs(source, this.deps.clock.now().getTime(), false);
    return dueMs === null ? null : new Date(dueMs);
  }

  private async evaluateUntilSettled(): Promise<void> {
    try {
      do {
        this.again = false;
        await this.evaluate();
      } while (this.again && !this.stopped);
    } finally {
      this.evaluating = null;
    }
  }

  private async evaluate(): Promise<void> {
    this.cancelTimer?.();
    this.cancelTimer = null;
    let wakeAtMs = Infinity;
    try {
      const sources = await this.deps.sources();
      const paused = await this.deps.paused();
      if (this.stopped) return;
      const nowMs = this.deps.clock.now().getTime();
      this.forgetAllBut(sources);
      const starts: Promise<void>[] = [];
      for (const source of sources) {
        const dueMs = this.occurrenceMs(source, nowMs, true);
        if (dueMs === null) continue;
        if (dueMs > nowMs) {
          wakeAtMs = Math.min(wakeAtMs, dueMs);
          continue;
        }
        // Due but held: it stays due; resuming, poke() or the next wake-up starts it.
        if (paused || this.deps.isRunning(source.id)) continue;
        // However many occurrences were missed, one start covers them all.
        const why = nowMs - dueMs > this.maxTimerMs ? 'catch-up' : 'scheduled';
        this.startedMs.set(source.id, nowMs);
        starts.push(this.startOne(source.id, why, dueMs));
        const nextMs = this.occurrenceMs(source, nowMs, false);
        if (nextMs !== null) wakeAtMs = Math.min(wakeAtMs, nextMs);
      }
      await Promise.all(starts);
    } catch (err) {
      this.deps.log(`scheduler: could not evaluate the schedules, trying again within ${Math.round(this.maxTimerMs / 1000)} s: ${toStrataError(err, 'Reading the schedules').message}`);
    } finally {
      if (!this.stopped) {
        const delayMs = Math.min(this.maxTimerMs, Math.max(0, wakeAtMs - this.deps.clock.now().getTime()));
        this.cancelTimer = this.deps.clock.setTimer(delayMs, () => {
          this.cancelTimer = null;
          void this.poke();
        });
      }
    }
  }

  /** A start that fails is logged and uses up its occurrence; the next occurrence starts again. */
  private async startOne(sourceId: string, why: 'scheduled' | 'catch-up', dueMs: number): Promise<void> {
    this.deps.log(`scheduler: starting ${why === 'catch-up' ? 'a catch-up' : 'the scheduled'} backup of ${sourceId} (due ${new Date(dueMs).toISOString()})`);
    try {
      await this.deps.startBackup(sourceId, why);
    } catch (err) {
      this.deps.log(`scheduler: could not start the ${why} backup of ${sourceId}: ${toStrataError(err, 'Starting the backup').message}`);
    }
  }

  /** The first occurrence of the source's schedule after its last run (or after it was added). */
  private occurrenceMs(source: ScheduledSource, nowMs: number, evaluating: boolean): number | null {
    if (source.schedule === null) return null;
    const parsed = this.parse(source.schedule);
    if ('problem' in parsed) {
      const key = `${source.id}\n${source.schedule}`;
      if (evaluating && !this.reportedInvalid.has(key)) {
        this.reportedInvalid.add(key);
        this.deps.log(`scheduler: not scheduling ${source.id}: ${parsed.problem}`);
      }
      return null;
    }
    const next = parsed.cron.nextRun(new Date(this.sinceMs(source, nowMs, evaluating)));
    return next === null ? null : next.getTime();
  }

  private sinceMs(source: ScheduledSource, nowMs: number, evaluating: boolean): number {
    const storedMs = (source.lastRunAt ?? source.addedAt).getTime();
    const startedMs = this.startedMs.get(source.id);
    const lastMs = Math.max(storedMs, startedMs ?? -Infinity);
    if (lastMs <= nowMs) {
      if (evaluating) this.setBack.delete(source.id);
      return lastMs;
    }
    // The clock was set back past the last run. Counting from the last run would silence the source
    // until the clock caught up (a day, for a clock set back a day); count from when this was seen,
    // or from a start made since.
    const seen = this.setBack.get(source.id);
    let seenMs = nowMs;
    if (seen?.lastMs === lastMs) seenMs = seen.seenMs;
    else if (evaluating) this.setBack.set(source.id, { lastMs, seenMs: nowMs });
    return startedMs !== undefined && startedMs <= nowMs ? Math.max(seenMs, startedMs) : seenMs;
  }

  private parse(expr: string): Parsed {
    let parsed = this.parsed.get(expr);
    if (!parsed) {
      parsed = parse(expr);
      this.parsed.set(expr, parsed);
    }
    return parsed;
  }

  /** Drops what is remembered about sources that are gone, and invalid schedules since fixed. */
  private forgetAllBut(sources: ScheduledSource[]): void {
    const ids = new Set(sources.map((s) => s.id));
    for (const map of [this.startedMs, this.setBack]) {
      for (const id of map.keys()) if (!ids.has(id)) map.delete(id);
    }
    const current = new Set(sources.map((s) => `${s.id}\n${s.schedule}`));
    this.reportedInvalid = new Set([...this.reportedInvalid].filter((key) => current.has(key)));
    const expressions = new Set(sources.map((s) => s.schedule));
    for (const expr of this.parsed.keys()) if (!expressions.has(expr)) this.parsed.delete(expr);
  }
}
