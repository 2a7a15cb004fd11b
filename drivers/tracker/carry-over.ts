// What the eBPF backends do when the kernel skips one of their completion programs.
//
// The kernel skips a tracepoint program that would run while a BPF program already runs on that
// CPU (perf-event programs share one per-CPU flag with every other such program; tp_btf programs
// have one flag each) and counts the skips per program (recursion_misses). A completion interrupt
// landing on a running program does it: tens of times per second under heavy I/O, more while other
// BPF tools run. A skipped completion mark matters only for a write in flight across the take that
// began the epoch (its queue mark went to the previous epoch), but nothing tells which write it was.
// So a session remembers what it marked in the last `ms` before each take; when a skip is counted
// that may have happened within `ms` after the take, all of it is marked again in the current epoch
// (extra reads, never a missing block). What stays unrecorded: a write in flight across a take for
// longer than `ms` whose completion was skipped. `ms` 0 is the strict mode: the caller turns every
// skipped completion into a gap.

/**
 * How long a write may stay in flight: the block layer's default request timeout (30 s; a request
 * still unfinished by then is failed or dispatched again). The bpf backend keeps its completion
 * program attached for this long after each take.
 */
export const IN_FLIGHT_MS = 30_000;

/**
 * How far before a take the marks are remembered: IN_FLIGHT_MS, so a write in flight across a take is
 * covered as long as the device keeps to the timeout. Re-marking costs only extra reads: the last
 * 30 s of writes before a take, when a skip occurs.
 */
export const CARRY_OVER_MS = IN_FLIGHT_MS;

/** Marks remembered around takes, in batches of the caller's type (drained sector pairs, byte pairs). */
export class CarryOver<T> {
  /** Batches of the last `ms`, oldest first. */
  private recent: Array<{ atMs: number; batch: T }> = [];
  /** The batches that were recent when the current epoch began, until a skip re-marks them (once per epoch). */
  private beforeTake: T[] = [];
  private takeAtMs: number;

  constructor(
    readonly ms: number,
    now = Date.now(),
  ) {
    this.takeAtMs = now;
  }

  /** False in the strict mode, where the caller reports every skipped completion as a gap. */
  get enabled(): boolean {
    return this.ms > 0;
  }

  /** The newest batch, if it began at most `spanMs` ago: callers that mark one range at a time append to it. */
  newest(now: number, spanMs: number): T | undefined {
    const last = this.recent.at(-1);
    return last && last.atMs >= now - spanMs ? last.batch : undefined;
  }

  /** Remembers a batch of marks just handed to the sink, and forgets those older than `ms`. */
  note(batch: T, now: number): void {
    if (!this.enabled) return;
    this.recent.push({ atMs: now, batch });
    if (this.recent[0]!.atMs < now - this.ms) this.recent = this.recent.filter((b) => b.atMs >= now - this.ms);
  }

  /** Right after the supervisor swapped the change map: the epoch that begins now. */
  afterTake(now: number): void {
    this.recent = this.recent.filter((b) => b.atMs >= now - this.ms);
    this.beforeTake = this.recent.map((b) => b.batch);
    this.takeAtMs = now;
  }

  /**
   * Completion runs were skipped at some time after `sinceMs` (the previous check): the batches to
   * mark again in the current epoch. Empty when every such time lies more than `ms` after the take
   * (a write in flight that long is beyond what the carry-over covers), or once this epoch's batches
   * were handed out.
   */
  skipped(sinceMs: number): T[] {
    const out = sinceMs <= this.takeAtMs + this.ms ? this.beforeTake : [];
    this.beforeTake = [];
    return out;
  }
}
