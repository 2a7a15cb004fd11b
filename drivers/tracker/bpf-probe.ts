// The in-kernel backend: our own eBPF programs (native/src/bpf-tracker.cc) on the same two block
// tracepoints as bpftrace, for the same reasons (bpftrace-probe.ts explains them: block_bio_queue
// never misses a bio, block_rq_complete marks again a write still in flight across a take). What
// changes is where the marks go. bpftrace printed every write as a line of text for us to parse,
// which cost writers 40-60 % of their IOPS; these programs set bits in a kernel bitmap (one per
// 4 KiB block) or, for a write of 64 blocks or more, insert {sector, sectors} into a kernel hash
// map, and this process drains both every 5 s and at every take. They attach as tp_btf programs
// where the kernel publishes BTF (reading struct bio and struct request through the offsets
// kernelOffsets() finds), else as tracepoint programs on perf events (reading the records whose
// layout tracepointLayout() parses); the native file explains both and why the first costs less.
//
// Why nothing is lost between the kernel and the change map. The drain swaps each non-zero bitmap
// word with zero atomically, against the programs' atomic ORs, and empties the hash map with
// lookup-and-delete, under the bucket locks the inserts take; so every mark lands either before
// the drain (returned now) or after it (returned by the next one). A tracepoint program runs
// synchronously where the event happens, so a write that completed before a take began is already
// marked when the take's drain runs: the drain is the barrier.
//
// What can still be lost, and how it becomes a gap instead. A full hash map (more distinct wide
// writes between two drains than maxEntries, e.g. while this thread is blocked) refuses inserts; the
// program counts each refusal and the drain turns any increase into sink.lost(): the epoch has a
// gap, the next backup resyncs. The kernel also skips a program that would run while it is already
// running on that CPU (perf-event programs even while any BPF program runs there: they share one
// per-CPU "BPF active" flag); it counts those skips per program (recursion_misses), and the drain
// reads them. A skipped queue event may be a write we never see: a gap. A skipped completion event
// (tens per second at 80,000 IOPS on perf events, on this kernel even with no other BPF program
// loaded) is handled as carry-over.ts explains: the marks drained in the carryOverMs before the
// take are marked again. The epoch the attach begins is never trusted, but a write in flight since
// before the attach could still be in flight at the first take.
//
// Readiness: the queue program counts reads of exactly the device's first sector. attach() makes
// one O_DIRECT read there and calls the session ready only once that counter moved, which proves
// the programs run, on this disk's numbers, with this kernel's offsets or record layout. There is no child
// process: the session's pid is ours, `exited` settles only when stop() closes the tracker or a
// drain fails (then the supervisor restarts it and records a blind window).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { StrataError } from '../../agent-core/api/errors.js';
import {
  bpfTrackerArmCompletion,
  bpfTrackerClose,
  bpfTrackerDrain,
  bpfTrackerOpen,
  bpfTrackerSupported,
  nativeAvailable,
  type BpfKernelOffsets,
  type BpfTracepointLayout,
  type BpfTrackerHandle,
  type BpfTrackerOptions,
} from '../../native/index.js';
import { Btf, BtfKind } from './btf.js';
import { CARRY_OVER_MS, CarryOver, IN_FLIGHT_MS } from './carry-over.js';
import { sentinelRead, timeout, type EpochAwareSession, type ProbeBackend, type ProbeExit, type ProbeSink } from './probe.js';
import { TRACEFS, ensureTracefs } from './tracefs.js';
import { eventRange, type TrackedDevice } from './tracked-device.js';

/**
 * Distinct wide writes (64 bitmap blocks or more, 256 KiB at 4 KiB blocks) the kernel's hash map
 * holds between two drains: at 1 GB/s of them, over 30 s. Narrower writes set bits in the bitmap,
 * which cannot fill up.
 */
export const BPF_MAX_ENTRIES = 131_072;
/**
 * How often the kernel's marks are moved into the change map. The bitmap coalesces rewrites of a
 * block, so the longer the interval the less work a busy disk costs this process; a take drains at
 * once whatever the interval. 5 s keeps the carry-over below within a few seconds of its window.
 */
export const BPF_DRAIN_INTERVAL_MS = 5000;

/** 'after-takes': the completion program is attached only from a take's barrier until IN_FLIGHT_MS after it; 'always': the whole session. */
export type BpfCompletion = 'after-takes' | 'always';
/**
 * The kernel bitmap's size limit per tracked device. One bit covers 4 KiB up to a 512 GiB device;
 * a larger device gets coarser bits (8 KiB up to 1 TiB, and so on), marking a little more than was
 * written rather than pinning more kernel memory.
 */
export const BPF_BITMAP_MAX_BYTES = 16 * 1024 * 1024;

/** log2 of the sectors one bitmap bit covers, for a device of this many sectors: 3 (4 KiB) or more. */
export function bitmapBlockShift(sizeSectors: number, maxBytes = BPF_BITMAP_MAX_BYTES): number {
  let shift = 3;
  while (Math.ceil(Math.ceil(sizeSectors / 2 ** shift) / 64) * 8 > maxBytes) shift++;
  return shift;
}

/** How the programs attach: tp_btf through the kernel's BTF, or tracepoint programs on perf events. */
export type BpfAttach = 'btf' | 'tracefs';

let vmlinuxOffsets: BpfKernelOffsets | undefined;

/**
 * Where the tp_btf programs find their fields in this kernel (from /sys/kernel/btf/vmlinux, read
 * once per process: ~5 MB, ~0.2 s), checking the sizes the programs load.
 */
export function kernelOffsets(btf?: Btf): BpfKernelOffsets {
  if (!btf && vmlinuxOffsets) return vmlinuxOffsets;
  const b = btf ?? Btf.readVmlinux();
  const field = (struct: string, member: string, size: number): number => {
    const m = b.member(struct, member);
    if (m.sizeBytes !== size) {
      throw new StrataError('Unsupported', `This kernel's ${struct}.${member} is ${m.sizeBytes} bytes, not the ${size} the bpf tracker reads.`);
    }
    return m.offsetBytes;
  };
  // REQ_OP_BITS is a #define, but the first request flag bit is numbered right after it.
  const opBits = b.enumValue('__REQ_FAILFAST_DEV') ?? 8;
  const offsets: BpfKernelOffsets = {
    queueId: b.find(BtfKind.Typedef, 'btf_trace_block_bio_queue'),
    completeId: b.find(BtfKind.Typedef, 'btf_trace_block_rq_complete'),
    opMask: 2 ** opBits - 1,
    bioBdev: field('bio', 'bi_bdev', 8),
    bioOpf: field('bio', 'bi_opf', 4),
    bioSector: field('bio', 'bi_iter.bi_sector', 8),
    bioSize: field('bio', 'bi_iter.bi_size', 4),
    bdevDisk: field('block_device', 'bd_disk', 8),
    diskMajor: field('gendisk', 'major', 4),
    diskFirstMinor: field('gendisk', 'first_minor', 4),
    rqQueue: field('request', 'q', 8),
    rqSector: field('request', '__sector', 8),
    rqCmdFlags: field('request', 'cmd_flags', 4),
    queueDisk: field('request_queue', 'disk', 8),
  };
  if (!btf) vmlinuxOffsets = offsets;
  return offsets;
}
type BlockTracepoint = 'block_bio_queue' | 'block_rq_complete';

/** Reads a block tracepoint's event id and field offsets from tracefs, checking the sizes the programs load. */
export function tracepointLayout(event: BlockTracepoint, tracefs = TRACEFS): BpfTracepointLayout {
  const file = path.join(tracefs, 'events', 'block', event, 'format');
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (cause) {
    throw new StrataError('Unsupported', `The kernel offers no ${event} tracepoint (${file}: ${(cause as Error).message}).`, { cause });
  }
  return parseTracepointFormat(event, text);
}

/** The parser behind tracepointLayout, on the text of a format file. */
export function parseTracepointFormat(event: string, text: string): BpfTracepointLayout {
  const id = /^ID:\s*(\d+)/m.exec(text);
  const fields = new Map<string, { offset: number; size: number }>();
  for (const m of text.matchAll(/field:([^;]*);\s*offset:(\d+);\s*size:(\d+);/g)) {
    const name = /(\w+)(?:\[\d*\])?\s*$/.exec(m[1]!)?.[1];
    if (name) fields.set(name, { offset: Number(m[2]), size: Number(m[3]) });
  }
  const field = (name: string, sizes: number[]): number => {
    const f = fields.get(name);
    if (!f || !sizes.includes(f.size) || f.offset % Math.min(f.size, 8) !== 0) {
      throw new StrataError('Unsupported', `The ${event} tracepoint's ${name} field is not what the bpf tracker expects (${f ? `offset ${f.offset}, size ${f.size}` : 'missing'}).`);
    }
    return f.offset;
  };
  if (!id) throw new StrataError('Unsupported', `The ${event} tracepoint's format has no ID line.`);
  const rwbs = fields.get('rwbs');
  if (!rwbs || rwbs.size < 1) throw new StrataError('Unsupported', `The ${event} tracepoint has no rwbs field.`);
  return {
    id: Number(id[1]),
    devOffset: field('dev', [4]),
    sectorOffset: field('sector', [8]),
    nrSectorOffset: field('nr_sector', [4]),
    rwbsOffset: rwbs.offset,
  };
}

export class BpfBackend implements ProbeBackend {
  readonly name = 'bpf' as const;
  private layouts: { queue: BpfTracepointLayout; complete: BpfTracepointLayout } | undefined;
  private offsets: BpfKernelOffsets | undefined;

  constructor(
    private readonly device: TrackedDevice,
    private readonly readyTimeoutMs = 20_000,
    /** Capacity of the kernel map (tests shrink it to provoke overflows). */
    private readonly maxEntries = BPF_MAX_ENTRIES,
    private readonly drainIntervalMs = BPF_DRAIN_INTERVAL_MS,
    /** 0: strict, every skipped completion event is a gap (see the top of this file). */
    private readonly carryOverMs = CARRY_OVER_MS,
    /** Where the programs attach; by default tp_btf when the kernel publishes BTF, else perf events. */
    private readonly attachment: BpfAttach | 'auto' = 'auto',
    private readonly bitmapMaxBytes = BPF_BITMAP_MAX_BYTES,
    /** When the completion program is attached: from each take's barrier for armedMs (default), or always. */
    private readonly completion: BpfCompletion = 'after-takes',
    private readonly armedMs = IN_FLIGHT_MS,
  ) {}

  /** The attachment prepare() chose. */
  get attachedBy(): BpfAttach | undefined {
    return this.offsets ? 'btf' : this.layouts ? 'tracefs' : undefined;
  }

  prepare(): void {
    if (!nativeAvailable()) {
      throw new StrataError('Unsupported', 'The bpf tracker needs the native addon; run `npm run build:native`.');
    }
    const why = bpfTrackerSupported();
    if (why !== null) throw new StrataError('Unsupported', `This process cannot use eBPF: ${why}.`);
    if (this.attachment !== 'tracefs' && !this.layouts) {
      try {
        this.offsets ??= kernelOffsets();
        return;
      } catch (err) {
        if (this.attachment === 'btf') throw err;
      }
    }
    // The event ids and record layouts come from tracefs.
    ensureTracefs();
    this.layouts ??= { queue: tracepointLayout('block_bio_queue'), complete: tracepointLayout('block_rq_complete') };
  }

  attach(sink: ProbeSink): EpochAwareSession {
    const device = this.device;
    const { layouts, offsets } = this;
    if (!layouts && !offsets) throw new StrataError('Internal', 'BpfBackend.attach() was called before prepare().');
    const common = {
      diskMajor: device.diskMajor,
      diskMinor: device.diskMinor,
      startSector: device.startSector,
      endSector: device.startSector + device.sizeSectors,
      blockShift: bitmapBlockShift(device.sizeSectors, this.bitmapMaxBytes),
      maxEntries: this.maxEntries,
    };
    const options: BpfTrackerOptions = offsets ? { ...common, btf: offsets } : { ...common, devT: device.diskDevT, ...layouts! };
    let handle: BpfTrackerHandle | undefined;
    try {
      handle = bpfTrackerOpen(options);
    } catch (cause) {
      throw new StrataError('Unsupported', `Could not attach the bpf tracker to ${device.diskName}: ${(cause as Error).message}`, { cause });
    }

    const seen = { overflows: 0, flushes: 0, sentinels: 0, queueMisses: 0, completeMisses: 0 };
    /** Drained sector pairs around takes, marked again when a completion run is skipped. */
    const carry = new CarryOver<Float64Array>(this.carryOverMs);
    /** When the previous drain started. */
    let previousDrainAtMs = Date.now();
    let remarkedBytes = 0;
    const mark = (s: Float64Array, again = false): void => {
      for (let i = 0; i + 1 < s.length; i += 2) {
        const range = eventRange(device, s[i]!, s[i + 1]!);
        if (!range) continue;
        sink.change(range);
        if (again) remarkedBytes += range.lengthBytes;
      }
    };
    let resolveExit!: (e: ProbeExit) => void;
    const exited = new Promise<ProbeExit>((resolve) => (resolveExit = resolve));
    let exitInfo: ProbeExit | undefined;
    // The first tick comes after drain is defined below.
    const timer = setInterval(() => {
      try {
        drain();
      } catch {
        // end() already closed the session; the supervisor sees `exited` settle
      }
    }, this.drainIntervalMs);
    timer.unref();
    // The completion program: attached from a take's barrier (before its drain, so every write in
    // flight across the take completes with it attached) until armedMs (IN_FLIGHT_MS) after the take; detached
    // otherwise, when only the queue program costs writers anything. Not before the first take: the
    // epoch the attach begins is never trusted anyway.
    const afterTakes = this.completion === 'after-takes';
    let disarmTimer: NodeJS.Timeout | undefined;
    const armCompletion = (armed: boolean): void => {
      if (handle) bpfTrackerArmCompletion(handle, armed);
    };
    if (afterTakes) armCompletion(false);
    const end = (e: ProbeExit): void => {
      if (exitInfo) return;
      exitInfo = e;
      clearInterval(timer);
      clearTimeout(disarmTimer);
      if (handle) bpfTrackerClose(handle);
      handle = undefined;
      resolveExit(e);
    };

    /** Moves everything the kernel holds into the sink; throws once the tracker is closed or broken. */
    const drain = (): void => {
      if (!handle) throw new StrataError('Internal', `The bpf tracker of ${device.path} is closed.`);
      const drainAtMs = Date.now();
      let d;
      try {
        d = bpfTrackerDrain(handle);
      } catch (cause) {
        // A drain that fails cannot vouch for anything: end the session, so the supervisor opens a blind window and restarts.
        end({ code: null, signal: null });
        throw new StrataError('Internal', `Draining the bpf tracker of ${device.path} failed: ${(cause as Error).message}`, { cause });
      }
      mark(d.sectors);
      if (d.sectors.length > 0) carry.note(d.sectors, Date.now());
      for (let n = d.flushes - seen.flushes; n > 0; n--) sink.flush();
      if (d.overflows > seen.overflows) {
        sink.lost(`the kernel map of marks was full: ${d.overflows - seen.overflows} writes could not be recorded`);
      }
      if (d.queueMisses > seen.queueMisses) {
        sink.lost(`the kernel skipped the queue program ${d.queueMisses - seen.queueMisses} times (another BPF program was running on that CPU)`);
      }
      if (d.completeMisses > seen.completeMisses) {
        // The skips happened after the previous drain started (carry-over.ts: what is marked again).
        if (carry.enabled) for (const b of carry.skipped(previousDrainAtMs)) mark(b, true);
        else sink.lost(`the kernel skipped the completion program ${d.completeMisses - seen.completeMisses} times (a completion interrupted a running BPF program)`);
      }
      seen.overflows = d.overflows;
      seen.flushes = d.flushes;
      seen.sentinels = d.sentinels;
      seen.queueMisses = d.queueMisses;
      seen.completeMisses = d.completeMisses;
      previousDrainAtMs = drainAtMs;
    };

    const ready = (async () => {
      const before = seen.sentinels;
      const read = sentinelRead(device, 0);
      const what = 'that it sees the device';
      await Promise.race([read.done, timeout(this.readyTimeoutMs, what), exited.then(() => Promise.reject(untilStop(what)))]);
      // The read's bio went through block_bio_queue in dd's context before dd could exit.
      drain();
      if (seen.sentinels <= before) {
        throw new StrataError('Unsupported', `The bpf tracker's programs did not see a read of ${device.path}: the tracepoints do not report this device.`);
      }
    })();
    ready.catch(() => {});

    return {
      pid: process.pid,
      ready,
      exited,
      barrier: () => {
        try {
          if (afterTakes) {
            clearTimeout(disarmTimer);
            armCompletion(true);
          }
          drain();
          return Promise.resolve();
        } catch (err) {
          return Promise.reject(err as Error);
        }
      },
      stop: () => {
        end({ code: 0, signal: null });
        return Promise.resolve();
      },
      afterTake: () => {
        carry.afterTake(Date.now());
        if (!afterTakes) return;
        clearTimeout(disarmTimer);
        disarmTimer = setTimeout(() => {
          try {
            armCompletion(false);
          } catch {
            // closed meanwhile; a failing detach leaves it attached, which only costs writers
          }
        }, this.armedMs);
        disarmTimer.unref();
      },
      takeRemarkedBytes: () => {
        const n = remarkedBytes;
        remarkedBytes = 0;
        return n;
      },
      drainNow: () => drain(),
    };
  }

  release(): void {}
}

function untilStop(what: string): StrataError {
  return new StrataError('Unsupported', `The bpf tracker was stopped before ${what}.`);
}
