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
// only when it really completes. So the default marks at both: at queue (nothing missed) and at
// completion (a write in flight across a take is marked again in the next epoch). On bio-based
// devices the completion mark is absent; the caller must drain I/O before a take (the engine
// freezes a mounted filesystem).
//
// marks: 'complete' drops the queue marks on request-based disks: half the events, and in theory
// enough, since a completion event is emitted before the writer is woken. One run of the
// take-during-writes test once missed a block in that mode (not reproduced in eight more runs), so
// it stays an option the overhead bench measures, not the default.
//
// block_bio_queue also carries our sentinel reads: it runs in the submitter's context, so the
// sentinel's pid and CPU are the reader's own.
import { existsSync } from 'node:fs';
import { StrataError } from '../../agent-core/api/errors.js';
import { parseBpftraceLine } from './block-event.js';
import { ProbeChild, perCpuSentinels, type ProbeBackend, type ProbeSession, type ProbeSink } from './probe.js';
import { ensureTracefs } from './tracefs.js';
import type { TrackedDevice } from './tracked-device.js';

export const BPFTRACE = '/usr/bin/bpftrace';
/** Perf ring buffer pages per CPU: 4 MiB absorbs bursts of small writes while the reader catches up. */
const PERF_RB_PAGES = 1024;

/** The bpftrace program for one device; every number is ours, nothing from the caller is spliced as text. */
export type BpftraceMarks = 'queue-and-complete' | 'complete';

export function bpftraceScript(device: TrackedDevice, marks: BpftraceMarks): string {
  const dev = device.diskDevT;
  const start = device.startSector;
  const end = device.startSector + device.sizeSectors;
  const inRange = `args->sector < ${end} && args->sector + args->nr_sector > ${start}`;
  const sentinel = `if (args->sector == ${start} && strncmp(args->rwbs, "R", 1) == 0) { printf("S %d\\n", pid); }`;
  const queue =
    marks === 'complete'
      ? [`tracepoint:block:block_bio_queue /args->dev == ${dev} && args->sector == ${start}/ {`, `  ${sentinel}`, '}']
      : [
          `tracepoint:block:block_bio_queue /args->dev == ${dev} && (args->nr_sector == 0 || (${inRange}))/ {`,
          `  ${sentinel}`,
          '  if (strncmp(args->rwbs, "R", 1) != 0) { printf("Q %s %llu %u\\n", args->rwbs, args->sector, args->nr_sector); }',
          '}',
        ];
  return [
    'BEGIN { printf("A\\n"); }',
    ...queue,
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
    private readonly marks: BpftraceMarks = 'queue-and-complete',
  ) {}

  prepare(): void {
    if (!existsSync(BPFTRACE)) {
      throw new StrataError('Unsupported', `bpftrace is not installed (${BPFTRACE}); install the Debian package bpftrace or use the tracefs backend.`);
    }
    // bpftrace resolves tracepoints through tracefs.
    ensureTracefs();
  }

  attach(sink: ProbeSink): ProbeSession {
    const device = this.device;
    // Completion-only marking needs a request-based disk: bio-based drivers emit no completions.
    const marks = this.marks === 'complete' && existsSync(`/sys/block/${device.diskName}/mq`) ? 'complete' : 'queue-and-complete';
    const probe = new ProbeChild(BPFTRACE, ['-B', 'line', '-e', bpftraceScript(device, marks)], device, sink, parseBpftraceLine, {
      ...process.env,
      BPFTRACE_PERF_RB_PAGES: String(this.perfBufferPages),
    });
    const attached = new Promise<void>((resolve) => {
      probe.onAttached = resolve;
    });
    const ready = (async () => {
      await Promise.race([attached, probe.untilExit('attaching')]);
      await perCpuSentinels(probe, device, this.readyTimeoutMs, 'that it sees the device');
    })();
    ready.catch(() => {});
    return {
      pid: probe.pid,
      ready,
      exited: probe.exited,
      barrier: (ms) => perCpuSentinels(probe, device, ms, 'a drain barrier'),
      stop: () => probe.stop(),
    };
  }

  release(): void {}
}
