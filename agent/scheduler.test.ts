// The scheduler against a fake clock whose timers and wall clock move only when the test says so:
// on-time starts, catch-up after sleep or power-off, no overlap, pause, clock jumps, bad schedules.
import { describe, expect, it } from 'vitest';
import { StrataError } from '../agent-core/api/errors.js';
import { SCHEDULER_MAX_TIMER_MS, Scheduler, assertSchedule, validateSchedule, type ScheduleClock, type ScheduledSource } from './scheduler.js';

/** Lets every pending promise of the scheduler and the fake dependencies settle. */
const settle = () => new Promise<void>((r) => setImmediate(r));

/** Local time (the scheduler's zone) in January 2026, a month without daylight-saving changes. */
const at = (day: number, hour: number, minute = 0, second = 0) => new Date(2026, 0, day, hour, minute, second);

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/**
 * Timers run on monotonic time; the wall clock is monotonic time plus an offset that jump() moves,
 * as when a machine sleeps (timers stand still, the wall clock does not) or its clock is set.
 */
class FakeClock implements ScheduleClock {
  private monoMs = 0;
  private wallOffsetMs: number;
  private timers: { atMs: number; delayMs: number; fn: () => void }[] = [];

  constructor(start: Date) {
    this.wallOffsetMs = start.getTime();
  }

  now(): Date {
    return new Date(this.wallOffsetMs + this.monoMs);
  }

  setTimer(ms: number, fn: () => void): () => void {
    const timer = { atMs: this.monoMs + ms, delayMs: ms, fn };
    this.timers.push(timer);
    return () => {
      this.timers = this.timers.filter((t) => t !== timer);
    };
  }

  /** Delays of the timers now pending. */
  pending(): number[] {
    return this.timers.map((t) => t.delayMs);
  }

  /** Lets ms of time pass, firing each timer at its moment and letting what it starts settle. */
  async advance(ms: number): Promise<void> {
    const endMs = this.monoMs + ms;
    await settle();
    for (;;) {
      const next = this.timers.filter((t) => t.atMs <= endMs).sort((a, b) => a.atMs - b.atMs)[0];
      if (!next) break;
      this.timers = this.timers.filter((t) => t !== next);
      this.monoMs = next.atMs;
      next.fn();
      await settle();
    }
    this.monoMs = endMs;
    await settle();
  }

  /** Lets the wall clock reach a time, firing timers on the way. */
  async advanceTo(when: Date): Promise<void> {
    await this.advance(when.getTime() - this.now().getTime());
  }

  /** Moves the wall clock without any timer firing. */
  jump(ms: number): void {
    this.wallOffsetMs += ms;
  }
}

interface Start {
  id: string;
  why: 'scheduled' | 'catch-up';
  at: Date;
}

interface Options {
  start: Date;
  sources: ScheduledSource[];
  /** Whether a start sets the source's lastRunAt, as the agent does; the scheduler must not need it at once. */
  recordRuns?: boolean;
}

function setup(options: Options) {
  const clock = new FakeClock(options.start);
  const sources = options.sources;
  const starts: Start[] = [];
  const logs: string[] = [];
  const state = { paused: false, running: new Set<string>(), failNext: false };
  const scheduler = new Scheduler({
    clock,
    sources: async () => structuredClone(sources),
    paused: () => state.paused,
    isRunning: (id) => state.running.has(id),
    startBackup: async (id, why) => {
      const now = clock.now();
      starts.push({ id, why, at: now });
      if (state.failNext) {
        state.failNext = false;
        throw new StrataError('Locked', `The repository is locked by another agent.`);
      }
      if (options.recordRuns ?? true) {
        const source = sources.find((s) => s.id === id);
        if (source) source.lastRunAt = now;
      }
    },
    log: (line) => logs.push(line),
  });
  return { clock, sources, starts, logs, state, scheduler };
}

const source = (id: string, schedule: string | null, addedAt: Date, lastRunAt: Date | null = null): ScheduledSource => ({ id, schedule, addedAt, lastRunAt });

describe('validateSchedule', () => {
  it('accepts cron expressions of five fields, six with seconds, and the @ nicknames', () => {
    for (const expr of ['0 2 * * *', '*/15 * * * *', '30 0 2 * * MON-FRI', '0 3 1 * *', '@daily', '@hourly', '0 0 29 2 *']) {
      expect(validateSchedule(expr), expr).toBeNull();
    }
    expect(() => assertSchedule('0 2 * * *')).not.toThrow();
  });

  it('refuses bad expressions with one sentence that says how to write one', () => {
    const cases: [string, RegExp][] = [
      ['', /is empty/],
      ['* * *', /has 3 fields/],
      ['0 0 2 * * * 2026', /has 7 fields/],
      ['61 * * * *', /not a valid cron expression \(the minute \(0-59\) is out of range\)/],
      ['0 2 * * 8', /the day of week \(0-7 or SUN-SAT\) is out of range/],
      ['*/0 * * * *', /not a valid cron expression \(syntax error, illegal stepping: 0\)/],
      ['0 2 * 13 *', /the month \(1-12 or JAN-DEC\) is out of range/],
      ['0 2 32 * *', /the day of month \(1-31\) is out of range/],
      ['every day', /has 2 fields/],
      ['2026-01-10T02:00:00', /is a date, not a repeating schedule/],
      ['0 0 30 2 *', /never comes round/],
    ];
    for (const [expr, problem] of cases) {
      const sentence = validateSchedule(expr);
      expect(sentence, expr).toMatch(problem);
      expect(sentence, expr).toMatch(/^The schedule .*for example "0 2 \* \* \*" for 02:00 every day(, or six with a seconds field first)?\.$/);
    }
  });

  it('assertSchedule throws InvalidInput with that sentence', () => {
    expect(() => assertSchedule('61 * * * *')).toThrow(expect.objectContaining({ code: 'InvalidInput', message: validateSchedule('61 * * * *') }));
  });
});

describe('Scheduler', () => {
  it('starts a backup at the scheduled minute, not before', async () => {
    const { clock, starts, scheduler } = setup({ start: at(10, 1), sources: [source('a', '30 2 * * *', at(10, 1))] });
    scheduler.start();
    await clock.advanceTo(at(10, 2, 29, 59));
    expect(starts).toEqual([]);
    await clock.advance(SECOND);
    expect(starts).toEqual([{ id: 'a', why: 'scheduled', at: at(10, 2, 30) }]);
    scheduler.stop();
  });

  it('does not start twice for one occurrence, even before lastRunAt is updated', async () => {
    const { clock, starts, scheduler } = setup({ start: at(10, 1), sources: [source('a', '30 2 * * *', at(10, 1))], recordRuns: false });
    scheduler.start();
    await clock.advanceTo(at(10, 2, 30));
    await scheduler.poke();
    await scheduler.poke();
    await clock.advanceTo(at(11, 2, 29));
    expect(starts).toHaveLength(1);
    await clock.advanceTo(at(11, 2, 31));
    expect(starts.map((s) => [s.why, s.at])).toEqual([
      ['scheduled', at(10, 2, 30)],
      ['scheduled', at(11, 2, 30)],
    ]);
    scheduler.stop();
  });

  it('counts a manual backup after the last occurrence as that occurrence run', async () => {
    const { clock, starts, scheduler } = setup({ start: at(10, 3), sources: [source('a', '0 2 * * *', at(1, 0), at(10, 2, 10))] });
    scheduler.start();
    await clock.advanceTo(at(11, 1, 59));
    expect(starts).toEqual([]);
    await clock.advanceTo(at(11, 2));
    expect(starts).toEqual([{ id: 'a', why: 'scheduled', at: at(11, 2) }]);
    scheduler.stop();
  });

  it('after three days off, start() runs one catch-up, not one per missed occurrence', async () => {
    const { clock, starts, scheduler } = setup({ start: at(13, 9, 20), sources: [source('a', '0 * * * *', at(1, 0), at(10, 9))] });
    expect(scheduler.nextRunAt(source('a', '0 * * * *', at(1, 0), at(10, 9)))).toEqual(at(10, 10));
    scheduler.start();
    await clock.advance(0);
    expect(starts).toEqual([{ id: 'a', why: 'catch-up', at: at(13, 9, 20) }]);
    await clock.advanceTo(at(13, 10, 0, 30));
    expect(starts.map((s) => [s.why, s.at])).toEqual([
      ['catch-up', at(13, 9, 20)],
      ['scheduled', at(13, 10)],
    ]);
    scheduler.stop();
  });

  it('after three days asleep, wakes within the cap and runs one catch-up', async () => {
    const { clock, starts, scheduler } = setup({ start: at(10, 9, 30), sources: [source('a', '0 * * * *', at(1, 0), at(10, 9))] });
    scheduler.start();
    await clock.advance(0);
    expect(starts).toEqual([]);
    clock.jump(3 * DAY); // suspended: the wall clock moved, the timer did not
    await clock.advance(SCHEDULER_MAX_TIMER_MS);
    expect(starts).toEqual([{ id: 'a', why: 'catch-up', at: new Date(at(13, 9, 30).getTime() + SCHEDULER_MAX_TIMER_MS) }]);
    await clock.advance(10 * MINUTE);
    expect(starts).toHaveLength(1);
    scheduler.stop();
  });

  it('notices a clock set forward within the cap', async () => {
    const { clock, starts, scheduler } = setup({ start: at(10, 10), sources: [source('a', '0 2 * * *', at(1, 0), at(10, 2))] });
    scheduler.start();
    await clock.advance(0);
    expect(clock.pending().every((ms) => ms <= SCHEDULER_MAX_TIMER_MS)).toBe(true);
    clock.jump(DAY);
    await clock.advance(SCHEDULER_MAX_TIMER_MS - 1);
    expect(starts).toEqual([]);
    await clock.advance(1);
    expect(starts).toEqual([{ id: 'a', why: 'catch-up', at: new Date(at(11, 10).getTime() + SCHEDULER_MAX_TIMER_MS) }]);
    scheduler.stop();
  });

  for (const recordRuns of [true, false]) {
    it(`is not silenced by a clock set back past the last run (lastRunAt ${recordRuns ? '' : 'not '}updated)`, async () => {
      const { clock, starts, scheduler } = setup({ start: at(10, 2, 30), sources: [source('a', '0 * * * *', at(1, 0), at(10, 2))], recordRuns });
      scheduler.start();
      clock.jump(-DAY); // now 9 Jan 02:30, the last run "tomorrow"
      await clock.advanceTo(at(9, 3, 0, 30));
      expect(starts).toEqual([{ id: 'a', why: 'scheduled', at: at(9, 3) }]);
      await clock.advanceTo(at(9, 4, 0, 30));
      expect(starts.map((s) => s.at)).toEqual([at(9, 3), at(9, 4)]);
      scheduler.stop();
    });
  }

  it('never overlaps a source: waits while it is running and starts after poke()', async () => {
    const { clock, starts, state, scheduler } = setup({ start: at(10, 1), sources: [source('a', '0 2 * * *', at(1, 0), at(9, 2))] });
    state.running.add('a'); // a manual backup from 01:00
    scheduler.start();
    await clock.advanceTo(at(10, 2, 45));
    expect(starts).toEqual([]);
    expect(scheduler.nextRunAt(source('a', '0 2 * * *', at(1, 0), at(9, 2)))).toEqual(at(10, 2)); // due and waiting
    state.running.delete('a');
    await scheduler.poke();
    expect(starts).toEqual([{ id: 'a', why: 'catch-up', at: at(10, 2, 45) }]);
    await clock.advanceTo(at(11, 1));
    expect(starts).toHaveLength(1);
    scheduler.stop();
  });

  it('a source held up for less than the cap still counts as scheduled', async () => {
    const { clock, starts, state, scheduler } = setup({ start: at(10, 1), sources: [source('a', '0 2 * * *', at(1, 0), at(9, 2))] });
    state.running.add('a');
    scheduler.start();
    await clock.advanceTo(at(10, 2, 0, 20));
    state.running.delete('a');
    await scheduler.poke();
    expect(starts).toEqual([{ id: 'a', why: 'scheduled', at: at(10, 2, 0, 20) }]);
    scheduler.stop();
  });

  it('a paused scheduler starts nothing but reports nextRunAt, and catches up on resume', async () => {
    const { clock, starts, state, scheduler } = setup({ start: at(10, 1), sources: [source('a', '0 2 * * *', at(1, 0), at(9, 2))] });
    state.paused = true;
    scheduler.start();
    await clock.advanceTo(at(10, 5));
    expect(starts).toEqual([]);
    expect(scheduler.nextRunAt(source('a', '0 2 * * *', at(1, 0), at(9, 2)))).toEqual(at(10, 2));
    state.paused = false;
    await clock.advance(SCHEDULER_MAX_TIMER_MS);
    expect(starts).toEqual([{ id: 'a', why: 'catch-up', at: new Date(at(10, 5).getTime() + SCHEDULER_MAX_TIMER_MS) }]);
    await clock.advanceTo(at(11, 2));
    expect(starts.map((s) => s.why)).toEqual(['catch-up', 'scheduled']);
    scheduler.stop();
  });

  it('skips a source whose stored schedule is invalid, logs it once, and runs the others', async () => {
    const { clock, starts, logs, scheduler } = setup({
      start: at(10, 1),
      sources: [source('bad', '61 2 * * *', at(1, 0)), source('good', '0 2 * * *', at(1, 0), at(9, 2))],
    });
    scheduler.start();
    await clock.advanceTo(at(11, 3));
    expect(starts.map((s) => s.id)).toEqual(['good', 'good']);
    const complaints = logs.filter((l) => l.includes('bad'));
    expect(complaints).toEqual([`scheduler: not scheduling bad: ${validateSchedule('61 2 * * *')}`]);
    expect(scheduler.nextRunAt(source('bad', '61 2 * * *', at(1, 0)))).toBeNull();
    scheduler.stop();
  });

  it('a schedule fixed after it was invalid is picked up on the next evaluation', async () => {
    const { clock, sources, starts, scheduler } = setup({ start: at(10, 1), sources: [source('a', 'daily at two', at(10, 0))] });
    scheduler.start();
    await clock.advanceTo(at(10, 3));
    expect(starts).toEqual([]);
    sources[0]!.schedule = '0 4 * * *';
    await scheduler.poke();
    await clock.advanceTo(at(10, 4, 1));
    expect(starts).toEqual([{ id: 'a', why: 'scheduled', at: at(10, 4) }]);
    scheduler.stop();
  });

  it('starts nothing after stop(), even from an evaluation already under way', async () => {
    const { clock, starts, scheduler } = setup({ start: at(10, 1), sources: [source('a', '0 2 * * *', at(1, 0), at(9, 2))] });
    scheduler.start();
    await clock.advance(0);
    scheduler.stop();
    expect(clock.pending()).toEqual([]);
    await clock.advanceTo(at(12, 3));
    expect(starts).toEqual([]);

    const late = setup({ start: at(10, 3), sources: [source('a', '0 2 * * *', at(1, 0), at(9, 2))] });
    late.scheduler.start(); // its first evaluation is waiting for sources()
    late.scheduler.stop();
    await late.clock.advance(DAY);
    expect(late.starts).toEqual([]);
    expect(() => late.scheduler.start()).toThrow(expect.objectContaining({ code: 'Unsupported' }));
  });

  it('logs a startBackup that throws and still starts the next occurrence', async () => {
    const { clock, starts, logs, state, scheduler } = setup({ start: at(10, 1), sources: [source('a', '0 2 * * *', at(1, 0), at(9, 2))] });
    state.failNext = true;
    scheduler.start();
    await clock.advanceTo(at(10, 2, 30));
    expect(starts).toHaveLength(1);
    expect(logs).toContain('scheduler: could not start the scheduled backup of a: The repository is locked by another agent.');
    await clock.advanceTo(at(11, 2, 30));
    expect(starts.map((s) => s.at)).toEqual([at(10, 2), at(11, 2)]);
    scheduler.stop();
  });

  it('keeps going when reading the sources fails', async () => {
    const clock = new FakeClock(at(10, 1));
    const logs: string[] = [];
    const starts: string[] = [];
    let failures = 1;
    const scheduler = new Scheduler({
      clock,
      sources: async () => {
        if (failures-- > 0) throw new StrataError('Corrupt', 'The catalog is damaged.');
        return [source('a', '0 2 * * *', at(1, 0), at(9, 2))];
      },
      paused: () => false,
      isRunning: () => false,
      startBackup: async (id) => void starts.push(id),
      log: (line) => logs.push(line),
    });
    scheduler.start();
    await clock.advance(0);
    expect(logs).toEqual(['scheduler: could not evaluate the schedules, trying again within 60 s: The catalog is damaged.']);
    await clock.advanceTo(at(10, 2, 0, 1));
    expect(starts).toEqual(['a']);
    scheduler.stop();
  });

  it('runs several sources on their own schedules and sleeps no longer than the cap', async () => {
    const { clock, starts, scheduler } = setup({
      start: at(10, 0),
      sources: [
        source('hourly', '0 * * * *', at(10, 0)),
        source('quarter', '*/15 * * * *', at(10, 0)),
        source('daily', '30 1 * * *', at(10, 0)),
        source('seconds', '*/20 * 0 * * *', at(10, 0)),
        source('none', null, at(1, 0)),
      ],
    });
    scheduler.start();
    await clock.advanceTo(at(10, 0, 1));
    expect(starts.map((s) => [s.id, s.at])).toEqual([
      ['seconds', at(10, 0, 0, 20)],
      ['seconds', at(10, 0, 0, 40)],
      ['seconds', at(10, 0, 1, 0)],
    ]);
    starts.length = 0;
    await clock.advanceTo(at(10, 1, 45));
    expect(starts.filter((s) => s.id !== 'seconds').map((s) => [s.id, s.why, s.at])).toEqual([
      ['quarter', 'scheduled', at(10, 0, 15)],
      ['quarter', 'scheduled', at(10, 0, 30)],
      ['quarter', 'scheduled', at(10, 0, 45)],
      ['hourly', 'scheduled', at(10, 1)],
      ['quarter', 'scheduled', at(10, 1)],
      ['quarter', 'scheduled', at(10, 1, 15)],
      ['quarter', 'scheduled', at(10, 1, 30)],
      ['daily', 'scheduled', at(10, 1, 30)],
      ['quarter', 'scheduled', at(10, 1, 45)],
    ]);
    expect(starts.filter((s) => s.id === 'seconds')).toHaveLength(2 + 58 * 3); // 00:01:20 and :40, then minutes 2 to 59
    expect(clock.pending()).toHaveLength(1);
    expect(clock.pending()[0]).toBeLessThanOrEqual(SCHEDULER_MAX_TIMER_MS);
    expect(scheduler.nextRunAt(source('none', null, at(1, 0)))).toBeNull();
    scheduler.stop();
  });
});
