// The fallback backend: the kernel's blk tracer in tracefs (the machinery blktrace uses, without
// blktrace's relay files). The tracer is enabled on the tracked device's disk and one `cat` child
// reads trace_pipe; the ring buffer keeps events while no reader runs, and its overrun counters
// tell us when it dropped some. Writes through any partition reach the disk's queue, so a
// partition's tracker enables the whole disk and keeps the events inside its sector range.
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { StrataError } from '../../agent-core/api/errors.js';
import { parseBlkTraceLine } from './block-event.js';
import { ProbeChild, sentinelRead, timeout, type ProbeBackend, type ProbeSession, type ProbeSink } from './probe.js';
import { TRACEFS, blkTraceDir, blkTracedDevices, ensureTracefs, readTracefs, ringBufferLosses, writeTracefs } from './tracefs.js';
import type { TrackedDevice } from './tracked-device.js';

/** Action categories the tracker needs: writes (discards and write-zeroes are write-direction ops) and flushes. */
const ACT_MASK_TRACKING = 'write,flush,discard';
/** While attaching, reads too: the sentinel read proves the reader sees this disk's events. */
const ACT_MASK_ATTACHING = 'read,write,flush,discard';
/** Per-CPU ring buffer while tracking; the default 1.4 MiB overruns under a few thousand writes a second. */
const TRACKING_BUFFER_KB = 8192;
const LOSS_POLL_MS = 500;

/** trace_pipe has one consumer and current_tracer is global: one tracefs tracker per process. */
const claim: { owner?: TracefsBackend } = {};

export class TracefsBackend implements ProbeBackend {
  readonly name = 'tracefs' as const;
  private prepared = false;
  private savedBufferKb: string | undefined;
  private savedActMask: string | undefined;

  constructor(
    private readonly device: TrackedDevice,
    private readonly readyTimeoutMs = 20_000,
    /** Per-CPU ring buffer while tracking (tests shrink it to provoke overruns). */
    private readonly bufferKb = TRACKING_BUFFER_KB,
  ) {}

  private get diskTrace(): string {
    return blkTraceDir(this.device.diskName);
  }

  prepare(): void {
    if (this.prepared) return;
    ensureTracefs();
    if (claim.owner && claim.owner !== this) {
      throw new StrataError('DeviceBusy', `The tracefs blk tracer already serves ${claim.owner.device.path}; track ${this.device.path} with bpftrace instead.`);
    }
    const tracer = readTracefs('current_tracer');
    const traced = blkTracedDevices();
    if (tracer !== 'nop' && tracer !== 'blk') {
      throw new StrataError('DeviceBusy', `tracefs is in use by the ${tracer} tracer; set ${TRACEFS}/current_tracer back to nop or use bpftrace.`);
    }
    // Our own disk left enabled is a previous agent's that died without cleaning up: take it over.
    const others = traced.filter((name) => name !== this.device.diskName);
    if (others.length > 0) {
      throw new StrataError('DeviceBusy', `blk tracing is already enabled on ${others.join(', ')}; disable it (echo 0 > /sys/block/DEV/trace/enable) or use bpftrace.`);
    }
    claim.owner = this;
    this.prepared = true;
    try {
      // "7 (expanded: 1408)": the size in use is the expanded one.
      const size = readTracefs('buffer_size_kb');
      this.savedBufferKb = (/expanded: (\d+)/.exec(size) ?? /^(\d+)/.exec(size))?.[1];
      this.savedActMask = readFileSync(path.join(this.diskTrace, 'act_mask'), 'utf8').trim();
      writeTracefs('current_tracer', 'blk');
      if (Number(this.savedBufferKb ?? 0) !== this.bufferKb) writeTracefs('buffer_size_kb', String(this.bufferKb));
      writeFileSync(path.join(this.diskTrace, 'act_mask'), ACT_MASK_TRACKING);
      writeFileSync(path.join(this.diskTrace, 'enable'), '1');
    } catch (cause) {
      this.release();
      throw new StrataError('Unsupported', `Could not enable the blk tracer on ${this.device.diskName}: ${(cause as Error).message}.`, { cause });
    }
  }

  attach(sink: ProbeSink): ProbeSession {
    const device = this.device;
    const sentinelPids = new Set<number>();
    const probe = new ProbeChild('cat', [path.join(TRACEFS, 'trace_pipe')], device, sink, (line) => parseBlkTraceLine(line, sentinelPids));
    let lossBaseline = ringBufferLosses();
    const checkLoss = (): void => {
      const now = ringBufferLosses();
      if (now > lossBaseline) sink.lost(`the tracefs ring buffer overran and dropped ${now - lossBaseline} events`);
      lossBaseline = now;
    };
    const poll = setInterval(checkLoss, LOSS_POLL_MS);
    poll.unref();
    void probe.exited.then(() => clearInterval(poll));
    const setMask = (mask: string): void => writeFileSync(path.join(this.diskTrace, 'act_mask'), mask);
    const marker = async (ms: number, what: string): Promise<void> => {
      const text = `strata-barrier-${randomBytes(8).toString('hex')}`;
      const seen = probe.waitMarker(text);
      writeTracefs('trace_marker', text);
      await Promise.race([seen, probe.untilExit(what), timeout(ms, what)]);
      checkLoss();
    };
    const ready = (async () => {
      setMask(ACT_MASK_ATTACHING);
      try {
        const read = sentinelRead(device, 0);
        sentinelPids.add(read.pid);
        await Promise.race([Promise.all([probe.waitSentinel(read.pid), read.done]), probe.untilExit('attaching'), timeout(this.readyTimeoutMs, 'that it sees the device')]);
      } finally {
        setMask(ACT_MASK_TRACKING);
      }
      await marker(this.readyTimeoutMs, 'attaching');
    })();
    ready.catch(() => {});
    return {
      pid: probe.pid,
      ready,
      exited: probe.exited,
      // trace_pipe merges the per-CPU buffers in timestamp order, so our marker comes out after every
      // event the kernel recorded before it was written.
      barrier: (ms) => marker(ms, 'a drain barrier'),
      stop: () => probe.stop(),
    };
  }

  release(): void {
    if (!this.prepared) return;
    this.prepared = false;
    const quietly = (fn: () => void): void => {
      try {
        fn();
      } catch {
        // teardown goes on: each step undoes one piece of state
      }
    };
    quietly(() => writeFileSync(path.join(this.diskTrace, 'enable'), '0'));
    if (this.savedActMask) quietly(() => writeFileSync(path.join(this.diskTrace, 'act_mask'), this.savedActMask!));
    if (blkTracedDevices().length === 0) {
      quietly(() => {
        if (readTracefs('current_tracer') === 'blk') writeTracefs('current_tracer', 'nop');
      });
      if (this.savedBufferKb) quietly(() => writeTracefs('buffer_size_kb', this.savedBufferKb!));
    }
    if (claim.owner === this) claim.owner = undefined;
  }
}
