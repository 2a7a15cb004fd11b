// The contract between the tracker's supervisor and a probe backend (bpftrace or the tracefs blk
// tracer), and the child-process plumbing both share: line splitting, sentinel reads, exit.
import { spawn, type ChildProcess } from 'node:child_process';
import os from 'node:os';
import { StrataError } from '../../agent-core/api/errors.js';
import type { ProbeLine } from './block-event.js';
import { eventRange, type DeviceRange, type TrackedDevice } from './tracked-device.js';

export type ProbeBackendName = 'bpf' | 'bpftrace' | 'tracefs';

/** Where a probe session delivers what it sees, already translated to the tracked device's bytes. */
export interface ProbeSink {
  change(range: DeviceRange): void;
  flush(): void;
  /** Events were dropped (perf buffer or ring buffer overrun): the map may miss writes. */
  lost(reason: string): void;
}

export interface ProbeExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** One attached probe: one child process, from attach to exit. */
export interface ProbeSession {
  readonly pid: number;
  /** Resolves once the probe has provably seen an I/O on the device (a sentinel read); rejects if the child dies first. */
  readonly ready: Promise<void>;
  /** Settles when the child exits, for whatever reason. */
  readonly exited: Promise<ProbeExit>;
  /** Resolves when every event the kernel emitted for this device before the call has reached the sink. */
  barrier(timeoutMs: number): Promise<void>;
  /** Ends the child (SIGTERM) and waits for it. */
  stop(): Promise<void>;
  /** Backends that hold marks between drains: moves them into the sink now (synchronously); throws once the session has ended. */
  drainNow?(): void;
}

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

export interface ProbeBackend {
  readonly name: ProbeBackendName;
  /** Sets up kernel state the sessions share (tracefs: tracer and per-disk enable); throws if it cannot. */
  prepare(): void;
  attach(sink: ProbeSink): ProbeSession;
  /** Undoes prepare(); safe to call twice and after a failed prepare. */
  release(): void;
}

/**
 * Spawns a probe command and feeds its stdout and stderr, line by line, to a parser. Keeps the
 * sentinel and marker waiters that readiness and barriers use.
 */
export class ProbeChild {
  readonly child: ChildProcess;
  readonly exited: Promise<ProbeExit>;
  private readonly sentinelWaiters = new Map<number, () => void>();
  private readonly markerWaiters = new Map<string, () => void>();
  private exitInfo: ProbeExit | undefined;
  readonly stderrTail: string[] = [];

  constructor(
    command: string,
    args: string[],
    private readonly device: TrackedDevice,
    private readonly sink: ProbeSink,
    private readonly parse: (line: string) => ProbeLine,
    env: NodeJS.ProcessEnv = process.env,
  ) {
    this.child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
    this.exited = new Promise((resolve) => {
      this.child.on('error', () => {
        this.exitInfo ??= { code: null, signal: null };
        resolve(this.exitInfo);
      });
      this.child.on('exit', (code, signal) => {
        this.exitInfo ??= { code, signal };
        resolve(this.exitInfo);
      });
    });
    this.readLines(this.child.stdout!, false);
    this.readLines(this.child.stderr!, true);
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get hasExited(): boolean {
    return this.exitInfo !== undefined;
  }

  /** Hook for backends: the 'attached' line. */
  onAttached: () => void = () => {};

  /** Resolves when the line "sentinel from pid" has been parsed. */
  waitSentinel(pid: number): Promise<void> {
    return new Promise((resolve) => this.sentinelWaiters.set(pid, resolve));
  }

  waitMarker(text: string): Promise<void> {
    return new Promise((resolve) => this.markerWaiters.set(text, resolve));
  }

  async stop(): Promise<void> {
    if (!this.hasExited) this.child.kill('SIGTERM');
    const timer = setTimeout(() => {
      if (!this.hasExited) this.child.kill('SIGKILL');
    }, 3000);
    await this.exited;
    clearTimeout(timer);
  }

  /** Rejects when the child exits first, naming how it ended. */
  untilExit(what: string): Promise<never> {
    return this.exited.then((e) => {
      const tail = this.stderrTail.slice(-3).join(' | ');
      throw new StrataError('Unsupported', `The tracking probe exited (${describeExit(e)}) before ${what}${tail ? `: ${tail}` : ''}.`);
    });
  }

  private readLines(stream: NodeJS.ReadableStream, isStderr: boolean): void {
    let rest = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      const text = rest + chunk;
      const lines = text.split('\n');
      rest = lines.pop()!;
      for (const line of lines) this.handle(line, isStderr);
    });
    stream.on('end', () => {
      if (rest) this.handle(rest, isStderr);
      rest = '';
    });
  }

  private handle(line: string, isStderr: boolean): void {
    const ev = this.parse(line);
    switch (ev.kind) {
      case 'change': {
        if (ev.diskMajor !== undefined && (ev.diskMajor !== this.device.diskMajor || ev.diskMinor !== this.device.diskMinor)) return;
        const range = eventRange(this.device, ev.sector, ev.sectors);
        if (range) this.sink.change(range);
        return;
      }
      case 'flush':
        this.sink.flush();
        return;
      case 'lost':
        this.sink.lost(`the probe dropped ${ev.count} events`);
        return;
      case 'sentinel': {
        const w = this.sentinelWaiters.get(ev.pid);
        this.sentinelWaiters.delete(ev.pid);
        w?.();
        return;
      }
      case 'marker': {
        const w = this.markerWaiters.get(ev.text);
        this.markerWaiters.delete(ev.text);
        w?.();
        return;
      }
      case 'attached':
        this.onAttached();
        return;
      default:
        if (isStderr && line.trim() && !/RLIMIT_MEMLOCK/.test(line)) {
          this.stderrTail.push(line.trim());
          if (this.stderrTail.length > 20) this.stderrTail.shift();
        }
    }
  }
}

/**
 * Reads the device's first 4 KiB with O_DIRECT from a process pinned to one CPU: a harmless I/O the
 * probe must report, tagged by the reader's pid. Resolves to that pid once the read has finished.
 */
export function sentinelRead(device: TrackedDevice, cpu: number): { pid: number; done: Promise<void> } {
  const child = spawn('taskset', ['-c', String(cpu), 'dd', `if=${device.path}`, 'of=/dev/null', 'bs=4096', 'count=1', 'iflag=direct', 'status=none'], {
    stdio: 'ignore',
  });
  const done = new Promise<void>((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new StrataError('Internal', `The sentinel read of ${device.path} failed (dd exited ${code}).`))));
  });
  return { pid: child.pid ?? -1, done };
}

/**
 * A barrier over per-CPU event streams: one sentinel read submitted from every CPU. The kernel
 * emits each CPU's events in order, so once every CPU's sentinel has come out of the probe, every
 * event emitted on any CPU before the barrier started has come out too.
 */
export async function perCpuSentinels(probe: ProbeChild, device: TrackedDevice, timeoutMs: number, what: string): Promise<void> {
  const reads = os.cpus().map((_, cpu) => sentinelRead(device, cpu));
  const seen = Promise.all(reads.map((r) => probe.waitSentinel(r.pid)));
  await Promise.race([Promise.all([seen, ...reads.map((r) => r.done)]), probe.untilExit(what), timeout(timeoutMs, what)]);
}

export function timeout(ms: number, what: string): Promise<never> {
  return new Promise((_, reject) => {
    const t = setTimeout(() => reject(new StrataError('Internal', `The tracking probe did not confirm ${what} within ${ms} ms.`, { retryable: true })), ms);
    t.unref();
  });
}

export function describeExit(e: ProbeExit): string {
  return e.signal ? `signal ${e.signal}` : `exit status ${e.code ?? 'unknown'}`;
}
