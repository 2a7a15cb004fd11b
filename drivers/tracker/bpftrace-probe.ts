// The eBPF backend: bpftrace attached to the block tracepoints of the tracked device's disk.
//
// Which tracepoints. block_bio_queue fires once for every bio as it enters the block layer, after a
// partition's bio has been remapped to the whole disk (it carries the disk's dev_t and absolute
// sector) and before any merge or split: nothing can hide a bio from it, it is the only one of the
// three that bio-based drivers (device mapper, md, brd) emit, and it runs in the writer's own
// context, so its event is out before the writer can learn that its write finished. It is the
// probe that never misses a write. But it fires before the write lands: a take between queue and
// completion would hand the mark to a backup that may still read the old data, and clear it.
// block_rq_complete fires in blk_update_request, which every completion of a request-based (blk-mq)
// device passes through, with the completed part's sector and length: a request merged from many
// bios still covers their sectors, a split bio completes as several requests, a requeued one reports
// only when it really completes. So it marks at both: at queue (nothing missed) and at
// completion (a write in flight across a take is marked again in the next epoch). On bio-based
// devices the completion mark is absent; the caller must drain I/O before a take (the engine
// freezes a mounted filesystem).
//
// Skipped runs. bpftrace's programs are perf-event programs: the kernel skips one that would run
// while any such program already runs on that CPU (a completion interrupt landing on a running
// program: block completions run in a softirq), and counts the skips per program (recursion_misses).
// Under fio's load on one loop device the completion program is skipped hundreds of times a second;
// nothing reaches our stdout for a skipped run. So each barrier
// reads the counters of bpftrace's two programs (found by name through its file descriptors): a
// skipped queue program may be a write never seen, a gap; a skipped completion is carried over as
// the bpf backend does (carry-over.ts).
//
// Marking at completion only would halve the events, and was an option until a CI run lost a block
// in that mode: every skipped completion is then a write never seen. Queue runs are not skipped
// there (their program runs in the submitter's context, not in an interrupt), so both marks stay.
//
// block_bio_queue also carries our sentinel reads: it runs in the submitter's context, so the
// sentinel's pid and CPU are the reader's own.
import { existsSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { StrataError } from '../../agent-core/api/errors.js';
import { bpfProgramInfo } from '../../native/index.js';
import { parseBpftraceLine } from './block-event.js';
import { CARRY_OVER_MS, CarryOver } from './carry-over.js';
import { ProbeChild, perCpuSentinels, type EpochAwareSession, type ProbeBackend, type ProbeSink } from './probe.js';
import { ensureTracefs } from './tracefs.js';
import type { TrackedDevice } from './tracked-device.js';

export const BPFTRACE = '/usr/bin/bpftrace';
/** Perf ring buffer pages per CPU: 4 MiB absorbs bursts of small writes while the reader catches up. */
const PERF_RB_PAGES = 1024;

/** The bpftrace program for one device; every number is ours, nothing from the caller is spliced as text. */
export function bpftraceScript(device: TrackedDevice): string {
  const dev = device.diskDevT;
  const start = device.startSector;
  const end = device.startSector + device.sizeSectors;
  const inRange = `args->sector < ${end} && args->sector + args->nr_sector > ${start}`;
  const sentinel = `if (args->sector == ${start} && strncmp(args->rwbs, "R", 1) == 0) { printf("S %d\\n", pid); }`;
  return [
    'BEGIN { printf("A\\n"); }',
    `tracepoint:block:block_bio_queue /args->dev == ${dev} && (args->nr_sector == 0 || (${inRange}))/ {`,
    `  ${sentinel}`,
    '  if (strncmp(args->rwbs, "R", 1) != 0) { printf("Q %s %llu %u\\n", args->rwbs, args->sector, args->nr_sector); }',
    '}',
    `tracepoint:block:block_rq_complete /args->dev == ${dev} && (args->nr_sector == 0 || (${inRange})) && strncmp(args->rwbs, "R", 1) != 0/ {`,
    '  printf("C %s %llu %u\\n", args->rwbs, args->sector, args->nr_sector);',
    '}',
    '',
  ].join('\n');
}

export class BpftraceBackend implements ProbeBackend {
  readonly name = 'bpftrace' as const;

  constructor(
    private readonly device: TrackedDevice,
    private readonly readyTimeoutMs = 20_000,
    /** Perf ring buffer pages per CPU (tests shrink it to provoke lost events). */
    private readonly perfBufferPages = PERF_RB_PAGES,
    private readonly carryOverMs = CARRY_OVER_MS,
  ) {}

  prepare(): void {
    if (!existsSync(BPFTRACE)) {
      throw new StrataError('Unsupported', `bpftrace is not installed (${BPFTRACE}); install the Debian package bpftrace or use the tracefs backend.`);
    }
    // bpftrace resolves tracepoints through tracefs.
    ensureTracefs();
  }

  attach(sink: ProbeSink): EpochAwareSession {
    const device = this.device;
    const carry = new CarryOver<number[]>(this.carryOverMs);
    let remarkedBytes = 0;
    /** Remembers every mark (byte pairs, one batch per second) for the carry-over. */
    const recording: ProbeSink = {
      change: (range) => {
        sink.change(range);
        if (!carry.enabled) return;
        const now = Date.now();
        let batch = carry.newest(now, 1000);
        if (!batch) carry.note((batch = []), now);
        batch.push(range.offsetBytes, range.lengthBytes);
      },
      flush: () => sink.flush(),
      lost: (reason) => sink.lost(reason),
    };
    const probe = new ProbeChild(BPFTRACE, ['-B', 'line', '-e', bpftraceScript(device)], device, recording, parseBpftraceLine, {
      ...process.env,
      BPFTRACE_PERF_RB_PAGES: String(this.perfBufferPages),
    });
    const attached = new Promise<void>((resolve) => {
      probe.onAttached = resolve;
    });

    let programs: BpftracePrograms | undefined;
    const seen = { queue: 0, complete: 0 };
    let previousCheckAtMs = Date.now();
    /** Reads the kernel's skip counters of bpftrace's programs (after a barrier: every skip before it is counted). */
    const checkSkips = (): void => {
      const checkAtMs = Date.now();
      const queue = bpfProgramInfo(programs!.queueId);
      const complete = bpfProgramInfo(programs!.completeId);
      if (!queue || !complete) throw new StrataError('Internal', `bpftrace's programs for ${device.path} were unloaded.`);
      if (queue.misses > seen.queue) {
        sink.lost(`the kernel skipped bpftrace's queue program ${queue.misses - seen.queue} times (another BPF program was running on that CPU)`);
      }
      if (complete.misses > seen.complete) {
        if (carry.enabled) {
          for (const pairs of carry.skipped(previousCheckAtMs)) {
            for (let i = 0; i + 1 < pairs.length; i += 2) {
              sink.change({ offsetBytes: pairs[i]!, lengthBytes: pairs[i + 1]! });
              remarkedBytes += pairs[i + 1]!;
            }
          }
        } else sink.lost(`the kernel skipped bpftrace's completion program ${complete.misses - seen.complete} times (a completion interrupted a running BPF program)`);
      }
      seen.queue = queue.misses;
      seen.complete = complete.misses;
      previousCheckAtMs = checkAtMs;
    };

    const ready = (async () => {
      await Promise.race([attached, probe.untilExit('attaching')]);
      await perCpuSentinels(probe, device, this.readyTimeoutMs, 'that it sees the device');
      programs = bpftracePrograms(probe.pid);
      // Skips before readiness fall in the epoch the attach begins, which is never trusted.
      checkSkips();
    })();
    ready.catch(() => {});
    return {
      pid: probe.pid,
      ready,
      exited: probe.exited,
      barrier: async (ms) => {
        await perCpuSentinels(probe, device, ms, 'a drain barrier');
        checkSkips();
      },
      stop: () => probe.stop(),
      afterTake: () => carry.afterTake(Date.now()),
      takeRemarkedBytes: () => {
        const n = remarkedBytes;
        remarkedBytes = 0;
        return n;
      },
    };
  }

  release(): void {}
}

interface BpftracePrograms {
  readonly queueId: number;
  readonly completeId: number;
}

/** Finds bpftrace's two block tracepoint programs: bpftrace names a program after its probe (the kernel keeps 15 bytes). */
function bpftracePrograms(pid: number): BpftracePrograms {
  const ids = bpfProgramsOf(pid);
  const queueId = ids.get('block_bio_queue');
  const completeId = ids.get('block_rq_complete'.slice(0, 15));
  if (queueId === undefined || completeId === undefined) {
    throw new StrataError('Unsupported', `Could not find bpftrace's block tracepoint programs (process ${pid}), whose skipped runs must be watched.`);
  }
  return { queueId, completeId };
}

/** The BPF programs a process holds open, by name (as the kernel keeps it) to id; ids from /proc/PID/fdinfo. */
export function bpfProgramsOf(pid: number): Map<string, number> {
  const ids = new Map<string, number>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    let fdinfo: string;
    try {
      if (readlinkSync(`/proc/${pid}/fd/${fd}`) !== 'anon_inode:bpf-prog') continue;
      fdinfo = readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8');
    } catch {
      continue; // closed meanwhile
    }
    const id = Number(/^prog_id:\s*(\d+)$/m.exec(fdinfo)?.[1]);
    const name = Number.isInteger(id) ? bpfProgramInfo(id)?.name : undefined;
    if (name !== undefined) ids.set(name, id);
  }
  return ids;
}
