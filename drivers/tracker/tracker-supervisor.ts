// Runs a block tracker's probe as a supervised child: proves it attached before claiming to track,
// restarts it with backoff when it dies, and turns every blind stretch into a gap of the epoch.
import { randomBytes } from 'node:crypto';
import { StrataError } from '../../agent-core/api/errors.js';
import type { Extent } from '../../agent-core/extents.js';
import { RegionChangeMap } from '../../agent-core/tracker/region-change-map.js';
import { BpfBackend, type BpfAttach, type BpfCompletion } from './bpf-probe.js';
import { BpftraceBackend } from './bpftrace-probe.js';
import type { BlindWindow, EpochTake, LiveTracker, TrackerState, TrackerStatus } from './live-tracker.js';
import { describeExit, isEpochAware, type ProbeBackend, type ProbeBackendName, type ProbeSession, type ProbeSink } from './probe.js';
import { TracefsBackend } from './tracefs-probe.js';
import { resolveTrackedDevice, type TrackedDevice } from './tracked-device.js';

export interface LiveTrackerOptions {
  /** 'auto' tries our own eBPF programs (bpf), then bpftrace, then the tracefs blk tracer. */
  readonly backend?: ProbeBackendName | 'auto';
  readonly blockSizeBytes?: number;
  /** First delay before restarting a dead probe; doubles per failed attempt up to restartMaxMs. */
  readonly restartInitialMs?: number;
  readonly restartMaxMs?: number;
  /** A probe that stayed up this long resets the backoff. */
  readonly stableMs?: number;
  readonly readyTimeoutMs?: number;
  readonly barrierTimeoutMs?: number;
  readonly onStateChange?: (status: TrackerStatus) => void;
  /** bpftrace's perf ring buffer, pages per CPU (default 1024). */
  readonly bpftracePerfPages?: number;
  /** The tracefs ring buffer while tracking, KiB per CPU (default 8192). */
  readonly tracefsBufferKb?: number;
  /** The bpf backend's hash map of wide writes: distinct ranges it holds between two drains (default 131072; more is a gap). */
  readonly bpfMaxEntries?: number;
  /** How often the bpf backend drains its kernel maps, ms (default 5000); takes drain too. */
  readonly bpfDrainIntervalMs?: number;
  /** The eBPF backends' memory of marks before a take, marked again when the kernel skips a completion program (default 30000, carry-over.ts; 0: such a skip is a gap). */
  readonly carryOverMs?: number;
  /** How the bpf backend attaches (bpf-probe.ts): 'btf' (tp_btf), 'tracefs' (perf events), default 'auto': btf when the kernel has BTF. */
  readonly bpfAttach?: BpfAttach | 'auto';
  /** The bpf backend's kernel bitmap limit per device (default 16 MiB: 4 KiB bits up to 512 GiB). */
  readonly bpfBitmapMaxBytes?: number;
  /** When the bpf backend's completion program is attached: 'after-takes' (default: for 30 s after each take's barrier) or 'always'. */
  readonly bpfCompletion?: BpfCompletion;
  /** How long after a take 'after-takes' keeps the completion program attached (default 30000; tests shorten it). */
  readonly bpfCompletionArmedMs?: number;
}

function makeBackend(name: ProbeBackendName, device: TrackedDevice, options: LiveTrackerOptions): ProbeBackend {
  switch (name) {
    case 'bpf':
      return new BpfBackend(
        device,
        options.readyTimeoutMs,
        options.bpfMaxEntries,
        options.bpfDrainIntervalMs,
        options.carryOverMs,
        options.bpfAttach,
        options.bpfBitmapMaxBytes,
        options.bpfCompletion,
        options.bpfCompletionArmedMs,
      );
    case 'bpftrace':
      return new BpftraceBackend(device, options.readyTimeoutMs, options.bpftracePerfPages, options.carryOverMs);
    case 'tracefs':
      return new TracefsBackend(device, options.readyTimeoutMs, options.tracefsBufferKb);
  }
}

/** 128 random bits, hex: lives only in this process's memory (seed 003). */
function newEpochKey(): string {
  return randomBytes(16).toString('hex');
}

export class SupervisedTracker implements LiveTracker {
  private map: RegionChangeMap;
  private key = newEpochKey();
  private gapReasons: string[] = [];
  private windows: BlindWindow[] = [];
  private openWindow: { fromMs: number; reason: string } | undefined;
  private session: ProbeSession | undefined;
  private state: TrackerState = 'blind';
  private restarts = 0;
  private flushes = 0;
  private backoffMs: number;
  private restartTimer: NodeJS.Timeout | undefined;
  private stableTimer: NodeJS.Timeout | undefined;
  private takes: Promise<unknown> = Promise.resolve();
  private trackingWaiters: Array<() => void> = [];
  private readonly onProcessExit = (): void => {
    void this.session?.stop();
    this.backendImpl.release();
  };

  private constructor(
    readonly device: TrackedDevice,
    private readonly backendImpl: ProbeBackend,
    private readonly options: LiveTrackerOptions,
  ) {
    this.map = new RegionChangeMap(device.sizeBytes, { blockSizeBytes: options.blockSizeBytes });
    this.backoffMs = options.restartInitialMs ?? 100;
  }

  /** Starts tracking devicePath; resolves once the probe has provably seen the device. */
  static async start(devicePath: string, options: LiveTrackerOptions = {}): Promise<SupervisedTracker> {
    const device = resolveTrackedDevice(devicePath);
    const choice = options.backend ?? 'auto';
    const names: ProbeBackendName[] = choice === 'auto' ? ['bpf', 'bpftrace', 'tracefs'] : [choice];
    const failures: string[] = [];
    let last: unknown;
    for (const name of names) {
      const backend = makeBackend(name, device, options);
      const tracker = new SupervisedTracker(device, backend, options);
      try {
        await tracker.attachFirst();
        return tracker;
      } catch (err) {
        await tracker.close();
        last = err;
        failures.push(`${name}: ${(err as Error).message}`);
      }
    }
    if (names.length === 1 && last instanceof StrataError) throw last;
    throw new StrataError('Unsupported', `No tracking backend could attach to ${device.path} (${failures.join(' ')}).`, { cause: last });
  }

  get backend(): ProbeBackendName {
    return this.backendImpl.name;
  }

  epochKey(): string {
    return this.key;
  }

  status(): TrackerStatus {
    return {
      state: this.state,
      backend: this.backend,
      restarts: this.restarts,
      probePid: this.session?.pid,
      blindSinceMs: this.openWindow?.fromMs,
    };
  }

  /** Resolves when the tracker is (again) tracking; rejects after timeoutMs or if it closes. */
  waitUntilTracking(timeoutMs: number): Promise<void> {
    if (this.state === 'tracking') return Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new StrataError('Internal', `The tracker of ${this.device.path} did not re-attach within ${timeoutMs} ms.`, { retryable: true })), timeoutMs);
      this.trackingWaiters.push(() => {
        clearTimeout(t);
        if (this.state === 'tracking') resolve();
        else reject(new StrataError('Cancelled', `The tracker of ${this.device.path} was closed.`));
      });
    });
  }

  peekChanges(): Extent[] {
    // The bpf backend holds marks in the kernel between its drains (5 s apart): fetch them first, so
    // a peek shows what was written until now. Its drain is synchronous; a failing one ends the
    // session, which the supervisor handles as any probe exit.
    const s = this.session;
    if (s?.drainNow && this.state === 'tracking') {
      try {
        s.drainNow();
      } catch {
        // the session ended: the map shows what was drained before, and a blind window follows
      }
    }
    // Synchronous: no event is applied while the runs are copied.
    return [...this.map.runs()];
  }

  takeAndReset(): Promise<EpochTake> {
    const next = this.takes.then(() => this.takeOnce());
    this.takes = next.catch(() => {});
    return next;
  }

  async close(): Promise<void> {
    if (this.state === 'closed') return;
    this.setState('closed');
    clearTimeout(this.restartTimer);
    clearTimeout(this.stableTimer);
    process.off('exit', this.onProcessExit);
    const s = this.session;
    this.session = undefined;
    try {
      await s?.stop();
    } finally {
      this.backendImpl.release();
    }
  }

  private async takeOnce(): Promise<EpochTake> {
    if (this.state === 'closed') throw new StrataError('InvalidInput', `The tracker of ${this.device.path} is closed; start a new one.`);
    const s = this.session;
    let drainFailure: string | undefined;
    if (s && this.state === 'tracking') {
      try {
        await s.barrier(this.options.barrierTimeoutMs ?? 10_000);
      } catch (err) {
        drainFailure = `the probe could not confirm it had delivered every event (${(err as Error).message})`;
      }
    }
    // From here to the return nothing awaits: no event can be applied between the take and the reset.
    if (drainFailure) this.gapReasons.push(drainFailure);
    const changes = this.map.takeAndReset();
    // Still synchronous: a backend that re-marks in-flight writes in the new epoch does it now.
    const epochAware = s && s === this.session && isEpochAware(s) ? s : null;
    const remarkedBytes = epochAware ? epochAware.takeRemarkedBytes() : 0;
    epochAware?.afterTake();
    const previousEpochKey = this.key;
    const open = this.openWindow;
    const blindWindows = open ? [...this.windows, { fromMs: open.fromMs, toMs: undefined, reason: open.reason }] : this.windows;
    const gapReason = this.gapReasons.length > 0 ? this.gapReasons.join('; ') : null;
    const flushes = this.flushes;
    this.key = newEpochKey();
    this.windows = [];
    this.flushes = 0;
    // Still blind: the epoch that starts now already misses writes.
    this.gapReasons = open ? [`the probe has been down since ${new Date(open.fromMs).toISOString()} (${open.reason})`] : [];
    return { epochKey: this.key, previousEpochKey, changes, gapReason, blindWindows, flushes, remarkedBytes };
  }

  private sink(): ProbeSink {
    return {
      change: (r) => this.map.mark(r.offsetBytes, r.lengthBytes),
      flush: () => {
        this.flushes++;
      },
      lost: (reason) => {
        if (this.state === 'closed') return;
        const now = Date.now();
        this.windows.push({ fromMs: now, toMs: now, reason });
        this.gap(reason);
      },
    };
  }

  private gap(reason: string): void {
    this.gapReasons.push(reason);
    this.key = newEpochKey();
  }

  private async attachFirst(): Promise<void> {
    this.backendImpl.prepare();
    process.on('exit', this.onProcessExit);
    await this.attach();
    // The first epoch starts at the first proven attach.
    this.key = newEpochKey();
  }

  /** One attach: resolves with the session tracking, or throws after stopping it. */
  private async attach(): Promise<void> {
    const session = this.backendImpl.attach(this.sink());
    this.session = session;
    try {
      await session.ready;
    } catch (err) {
      if (this.session === session) this.session = undefined;
      await session.stop();
      throw err;
    }
    if (this.state === 'closed') {
      await session.stop();
      return;
    }
    void session.exited.then((e) => {
      if (this.session === session && this.state !== 'closed') this.onCrash(`the ${this.backend} probe exited (${describeExit(e)})`);
    });
    this.setState('tracking');
    clearTimeout(this.stableTimer);
    this.stableTimer = setTimeout(() => {
      this.backoffMs = this.options.restartInitialMs ?? 100;
    }, this.options.stableMs ?? 10_000);
    this.stableTimer.unref();
  }

  private onCrash(reason: string): void {
    this.session = undefined;
    clearTimeout(this.stableTimer);
    this.openWindow = { fromMs: Date.now(), reason };
    this.gap(reason);
    this.setState('blind');
    this.scheduleRestart();
  }

  private scheduleRestart(): void {
    if (this.state === 'closed') return;
    const delay = this.backoffMs;
    this.backoffMs = Math.min(this.backoffMs * 2, this.options.restartMaxMs ?? 5000);
    this.restartTimer = setTimeout(() => void this.restart(), delay);
  }

  private async restart(): Promise<void> {
    if (this.state === 'closed') return;
    try {
      this.backendImpl.prepare();
      await this.attach();
    } catch {
      this.scheduleRestart();
      return;
    }
    if (this.state !== 'tracking') return;
    const open = this.openWindow;
    if (open) {
      this.windows.push({ fromMs: open.fromMs, toMs: Date.now(), reason: open.reason });
      this.openWindow = undefined;
    }
    this.restarts++;
    // A new key per attach: whatever the previous key vouched for ended with the crash.
    this.key = newEpochKey();
    this.notify();
  }

  private setState(state: TrackerState): void {
    this.state = state;
    // A re-attach reports 'tracking' only once restart() has closed the blind window.
    if (state === 'tracking' && this.openWindow !== undefined) return;
    this.notify();
  }

  private notify(): void {
    if (this.state !== 'blind') {
      const waiters = this.trackingWaiters;
      this.trackingWaiters = [];
      for (const w of waiters) w();
    }
    this.options.onStateChange?.(this.status());
  }
}

/** Starts a supervised live tracker on a block device (see live-tracker.ts for the contract). */
export function startLiveTracker(devicePath: string, options: LiveTrackerOptions = {}): Promise<SupervisedTracker> {
  return SupervisedTracker.start(devicePath, options);
}
