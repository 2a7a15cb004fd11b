// The kernel skips a tracepoint program that would run while a BPF program already runs on that CPU
// (carry-over.ts). fio's queue-depth-32 random writes on a loop device make it skip completion
// programs hundreds of times a second (block completions run in a softirq that lands on a running
// program). These tests provoke that and read the kernel's own skip counter to decide what the take
// after it must show: the writes from before the previous take marked again, not a silent loss.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Scratch } from '../../test-support/disk.js';
import { bpfProgramInfo, bpfTrackerSupported, nativeAvailable } from '../../native/index.js';
import { BPFTRACE, bpfProgramsOf } from './bpftrace-probe.js';
import { startLiveTracker, type LiveTrackerOptions, type SupervisedTracker } from './tracker-supervisor.js';

const MiB = 1024 * 1024;

function unavailable(backend: 'bpf' | 'bpftrace'): string | undefined {
  if (!nativeAvailable()) return 'the native addon is not built';
  if (backend === 'bpftrace' && !existsSync(BPFTRACE)) return `${BPFTRACE} is missing (Debian package bpftrace)`;
  return bpfTrackerSupported() ?? undefined;
}

interface Variant {
  readonly label: string;
  readonly options: LiveTrackerOptions;
  /** The process holding the programs and the completion program's name. */
  completeProgram(t: SupervisedTracker): { pid: number; name: string };
  /** Whether the load must produce skips. */
  readonly skipsExpected: boolean;
  /**
   * Our own programs are short: fio alone does not make the kernel skip them. Perf-event programs
   * share one per-CPU flag with every other, so another tool's programs on the same tracepoints do.
   */
  readonly hog?: boolean;
}

const VARIANTS: Variant[] = [
  { label: 'bpftrace', options: { backend: 'bpftrace' }, completeProgram: (t) => ({ pid: t.status().probePid!, name: 'block_rq_comple' }), skipsExpected: true },
  { label: 'bpf on perf events', options: { backend: 'bpf', bpfAttach: 'tracefs' }, completeProgram: () => ({ pid: process.pid, name: 'strata_rq_done' }), skipsExpected: true, hog: true },
  // tp_btf programs have a flag each: only a completion landing on the completion program itself is skipped.
  { label: 'bpf on tp_btf', options: { backend: 'bpf', bpfAttach: 'btf' }, completeProgram: () => ({ pid: process.pid, name: 'strata_rq_done' }), skipsExpected: false },
];

/**
 * Another tool's perf-event programs printing every block event (bpftrace): with them loaded, fio's
 * load makes the kernel skip our completion program about 170 times a second (measured; with fio
 * alone, none). Resolves to a stop function once they are attached.
 */
async function startHog(): Promise<() => Promise<void>> {
  const script = ['block_bio_queue', 'block_rq_complete'].map((tp) => `tracepoint:block:${tp} { printf("%llu\\n", args->sector); }`).join(' ');
  const prog = spawn(BPFTRACE, ['-e', script], { stdio: ['ignore', 'pipe', 'ignore'] });
  await new Promise<void>((resolve, reject) => {
    // The events themselves go nowhere; the first line says the probes are attached.
    prog.stdout.once('data', () => {
      prog.stdout.resume();
      resolve();
    });
    prog.on('exit', (code) => reject(new Error(`the other tool's bpftrace exited (${code}) before attaching`)));
  });
  return async () => {
    const exited = new Promise((r) => prog.once('exit', r));
    prog.kill('SIGKILL');
    await exited;
  };
}

for (const v of VARIANTS) {
  const why = unavailable(v.options.backend as 'bpf' | 'bpftrace');
  if (why) console.log(`skipping the skipped-runs test for ${v.label}: ${why}`);
  describe.skipIf(why !== undefined)(`skipped completion runs (${v.label})`, () => {
    let scratch: Scratch;
    let tracker: SupervisedTracker | undefined;
    beforeEach(() => {
      scratch = new Scratch('strata-skips-');
    });
    afterEach(async () => {
      await tracker?.close();
      tracker = undefined;
      scratch.cleanup();
    });

    it('mark again what was written before the previous take, and never open a gap', async () => {
      const dev = scratch.loop(scratch.image('disk.img', 64 * MiB));
      const t = (tracker = await startLiveTracker(dev, v.options));
      // Block 1024 (4 MiB) is written before the first take; fio stays above 16 MiB.
      execFileSync('dd', ['if=/dev/urandom', `of=${dev}`, 'bs=4096', 'seek=1024', 'count=1', 'oflag=direct', 'status=none']);
      const first = await t.takeAndReset();
      expect(first.changes.isMarked(1024)).toBe(true);

      const { pid, name } = v.completeProgram(t);
      const id = bpfProgramsOf(pid).get(name);
      expect(id, `${name} among the programs of process ${pid}`).toBeDefined();
      const before = bpfProgramInfo(id!)!.misses;
      const stopHog = v.hog ? await startHog() : undefined;
      let skips = 0;
      try {
        // Skips come in bursts of load, more on some runs than others: up to 10 s of it, well inside
        // the 30 s after the take in which the completion program is attached and skips are carried.
        for (let burst = 0; burst < 10 && skips === 0; burst++) {
          // bpftrace prints every event and must keep up, or its dropped events are a gap: rate-limited for it.
          const rate = v.options.backend === 'bpftrace' ? ['--rate_iops=20000'] : [];
          execFileSync('fio', ['--name=skips', `--filename=${dev}`, '--rw=randwrite', '--bs=4k', '--direct=1', '--ioengine=libaio', '--iodepth=32',
            ...rate, '--offset=16M', '--size=48M', '--time_based', '--runtime=1', '--output=/dev/null']);
          skips = bpfProgramInfo(id!)!.misses - before;
        }
      } finally {
        await stopHog?.();
      }
      if (v.skipsExpected) expect(skips, 'fio made the kernel skip the completion program').toBeGreaterThan(0);

      const second = await t.takeAndReset();
      expect(second.gapReason).toBeNull();
      expect(second.previousEpochKey).toBe(first.epochKey);
      if (skips > 0) {
        // The write before the first take was within the carry-over window: marked again, and counted.
        expect(second.changes.isMarked(1024)).toBe(true);
        expect(second.remarkedBytes).toBeGreaterThanOrEqual(4096);
      } else {
        expect(second.changes.isMarked(1024)).toBe(false);
        expect(second.remarkedBytes).toBe(0);
      }
      // A third take: the carry-over is spent once per epoch and fio's own writes are no longer news.
      const third = await t.takeAndReset();
      expect(third.changes.isMarked(1024)).toBe(false);
    });
  });
}
