// The in-kernel backend: our own eBPF programs (native/src/bpf-tracker.cc) on the same two block
// tracepoints as bpftrace, for the same reasons (bpftrace-probe.ts explains them: block_bio_queue
// never misses a bio, block_rq_complete marks again a write still in flight across a take). What
// changes is where the marks go. bpftrace printed every write as a line of text for us to parse,
// which cost writers 40-60 % of their IOPS; these programs only insert {sector, sectors} into a
// kernel hash map, and this process drains the map every 200 ms and at every take.
//
// Why nothing is lost between the kernel and the change map. The programs insert with BPF_NOEXIST
// and never modify an entry; the drain uses lookup-and-delete, which returns and removes a hash
// bucket's entries under the same bucket lock an insert takes. So every insert lands either before
// the drain visits its bucket (returned now) or after (a new entry, returned by the next drain); an
// insert that found its key already present found it before the visit, so that key is returned.
// A tracepoint program runs synchronously where the event happens, so a write that completed before
// a take began is already in the map when the take's drain runs: the drain is the barrier.
//
// What can still be lost, and how it becomes a gap instead. A full map (more distinct ranges
// between two drains than maxEntries, e.g. while this thread is blocked) refuses inserts; the
// program counts each refusal and the drain turns any increase into sink.lost(): the epoch has a
// gap, the next backup resyncs. The kernel also skips a tracepoint's programs when another BPF
// program is already running on that CPU (perf-event tracepoints share one per-CPU "BPF active"
// flag); it counts those skips per program (recursion_misses), and the drain reads them. A skipped
// queue event may be a write we never see: a gap. A skipped completion event is common under load
// (a completion interrupt landing on a running program: tens per second at 80,000 IOPS, on this
// kernel even with no other BPF program loaded), and matters only for a write that was in flight
// across the take that began the epoch: its queue mark went to the previous epoch. So instead of a
// gap per skip, each take remembers the ranges drained in the carryOverMs before it, and the first
// skipped completion of the epoch that may have happened within carryOverMs after the take re-marks
// all of them in the current epoch (extra marks, never missing ones). What remains unrecorded is a
// write whose completion event was skipped and that was in flight across a take for longer than
// carryOverMs, or since before the tracker attached (the epoch the attach begins is never trusted,
// but such a write could still be in flight at the first take). carryOverMs 0 is the strict mode:
// every skipped completion is a gap.
//
// Readiness: the queue program counts reads of exactly the device's first sector. attach() makes
// one O_DIRECT read there and calls the session ready only once that counter moved, which proves
// the programs run, on this disk's dev_t, with this kernel's record layout. There is no child
// process: the session's pid is ours, `exited` settles only when stop() closes the tracker or a
// drain fails (then the supervisor restarts it and records a blind window).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { StrataError } from '../../agent-core/api/errors.js';
import {
  bpfTrackerClose,
  bpfTrackerDrain,
  bpfTrackerOpen,
  bpfTrackerSupported,
  nativeAvailable,
  type BpfTracepointLayout,
  type BpfTrackerHandle,
} from '../../native/index.js';
import { sentinelRead, timeout, type ProbeBackend, type ProbeExit, type ProbeSession, type ProbeSink } from './probe.js';
import { TRACEFS, ensureTracefs } from './tracefs.js';
import { eventRange, type TrackedDevice } from './tracked-device.js';

/** Distinct ranges the kernel map holds between two drains: ~1.6 s of 80,000 random 4 KiB writes a second. Each drain walks every bucket (0.9 ms at this size, kernel 6.18), hence the 200 ms interval. */
export const BPF_MAX_ENTRIES = 131_072;
export const BPF_DRAIN_INTERVAL_MS = 200;
/**
 * How far before a take the ranges are remembered, to re-mark them if a completion event is skipped:
 * the block layer's default request timeout (30 s; a request still unfinished by then is failed or
 * dispatched again), so a write in flight across a take is covered as long as the device keeps to it.
 * Re-marking costs only extra reads: the last 30 s of writes before a take, when a skip occurs.
 */
export const BPF_CARRY_OVER_MS = 30_000;

/** A session that wants to act right after the supervisor has swapped the change map (at a take). */
export interface EpochAwareSession extends ProbeSession {
  /** Called synchronously right after the swap: whatever the sink receives from now on belongs to the new epoch. */
  afterTake(): void;
  /** Bytes marked again since the last call because a completion event may have been skipped (already in the changes). */
  takeRemarkedBytes(): number;
}

export function isEpochAware(s: ProbeSession): s is EpochAwareSession {
  return typeof (s as Partial<EpochAwareSession>).afterTake === 'function';
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

  constructor(
    private readonly device: TrackedDevice,
    private readonly readyTimeoutMs = 20_000,
    /** Capacity of the kernel map (tests shrink it to provoke overflows). */
    private readonly maxEntries = BPF_MAX_ENTRIES,
    private readonly drainIntervalMs = BPF_DRAIN_INTERVAL_MS,
    /** 0: strict, every skipped completion event is a gap (see the top of this file). */
    private readonly carryOverMs = BPF_CARRY_OVER_MS,
  ) {}

  prepare(): void {
    if (!nativeAvailable()) {
      throw new StrataError('Unsupported', 'The bpf tracker needs the native addon; run `npm run build:native`.');
    }
    const why = bpfTrackerSupported();
    if (why !== null) throw new StrataError('Unsupported', `This process cannot use eBPF: ${why}.`);
    // The event ids and record layouts come from tracefs.
    ensureTracefs();
    this.layouts ??= { queue: tracepointLayout('block_bio_queue'), complete: tracepointLayout('block_rq_complete') };
  }

  attach(sink: ProbeSink): EpochAwareSession {
    const device = this.device;
    const layouts = this.layouts;
    if (!layouts) throw new StrataError('Internal', 'BpfBackend.attach() was called before prepare().');
    let handle: BpfTrackerHandle | undefined;
    try {
      handle = bpfTrackerOpen({
        devT: device.diskDevT,
        startSector: device.startSector,
        endSector: device.startSector + device.sizeSectors,
        maxEntries: this.maxEntries,
        ...layouts,
      });
    } catch (cause) {
      throw new StrataError('Unsupported', `Could not attach the bpf tracker to ${device.diskName}: ${(cause as Error).message}`, { cause });
    }

    const seen = { overflows: 0, flushes: 0, sentinels: 0, queueMisses: 0, completeMisses: 0 };
    const carryOverMs = this.carryOverMs;
    /** Drained batches of the last carryOverMs, oldest first. */
    let recent: Array<{ atMs: number; sectors: Float64Array }> = [];
    /** The batches that were recent when the current epoch began, until a skipped completion re-marks them (once per epoch). */
    let beforeTake: Float64Array[] = [];
    /** When the current epoch began (the last take, or the attach), and when the previous drain started. */
    let takeAtMs = Date.now();
    let previousDrainAtMs = takeAtMs;
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
    const end = (e: ProbeExit): void => {
      if (exitInfo) return;
      exitInfo = e;
      clearInterval(timer);
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
      if (carryOverMs > 0) {
        const now = Date.now();
        if (d.sectors.length > 0) recent.push({ atMs: now, sectors: d.sectors });
        if (recent.length > 0 && recent[0]!.atMs < now - carryOverMs) recent = recent.filter((b) => b.atMs >= now - carryOverMs);
      }
      for (let n = d.flushes - seen.flushes; n > 0; n--) sink.flush();
      if (d.overflows > seen.overflows) {
        sink.lost(`the kernel map of marks was full: ${d.overflows - seen.overflows} writes could not be recorded`);
      }
      if (d.queueMisses > seen.queueMisses) {
        sink.lost(`the kernel skipped the queue program ${d.queueMisses - seen.queueMisses} times (another BPF program was running on that CPU)`);
      }
      if (d.completeMisses > seen.completeMisses) {
        // Only a write in flight across the last take needs its completion mark, but nothing tells which write was skipped.
        if (carryOverMs > 0) {
          // The skips happened after the previous drain started. If that was more than carryOverMs after the
          // take, a skipped write in flight across the take had been in flight longer than carryOverMs:
          // beyond what the carry-over covers anyway, so marking the history again would add nothing.
          if (previousDrainAtMs <= takeAtMs + carryOverMs) for (const b of beforeTake) mark(b, true);
          beforeTake = [];
        } else sink.lost(`the kernel skipped the completion program ${d.completeMisses - seen.completeMisses} times (a completion interrupted a running BPF program)`);
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
        beforeTake = recent.map((b) => b.sectors);
        takeAtMs = Date.now();
      },
      takeRemarkedBytes: () => {
        const n = remarkedBytes;
        remarkedBytes = 0;
        return n;
      },
    };
  }

  release(): void {}
}

function untilStop(what: string): StrataError {
  return new StrataError('Unsupported', `The bpf tracker was stopped before ${what}.`);
}
