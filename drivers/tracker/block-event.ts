// The block-layer events a tracker reads, parsed from either backend's text stream (bpftrace's
// printf lines or the tracefs blk tracer's trace_pipe), and what each means for the change map.

/** A line of a probe's output, reduced to what the tracker acts on. */
export type ProbeLine =
  /** A write, discard or write-zeroes at an absolute sector of the whole disk (phase Q: queued, C: completed). */
  | { kind: 'change'; phase: 'Q' | 'C'; rwbs: string; sector: number; sectors: number; diskMajor?: number; diskMinor?: number }
  /** A cache flush (no sectors): noted, changes nothing. */
  | { kind: 'flush'; rwbs: string }
  /** A read we asked for to prove the probe sees this device (readiness and drain barriers), by submitter pid. */
  | { kind: 'sentinel'; pid: number }
  /** A tracefs trace_marker string we wrote (drain barrier). */
  | { kind: 'marker'; text: string }
  /** The probe is attached (bpftrace's BEGIN ran). */
  | { kind: 'attached' }
  /** The kernel or bpftrace dropped events: the map may miss writes. */
  | { kind: 'lost'; count: number }
  | { kind: 'ignored' };

/**
 * What an rwbs string (blk_fill_rwbs: an optional F for a preflush, then the op letter W, D, R, F or
 * N, then modifiers) says about the data. Anything but a read or an empty flush may change blocks:
 * 'N' with sectors is REQ_OP_WRITE_ZEROES (or an op the kernel has no letter for), so it counts.
 */
export function classifyRwbs(rwbs: string, sectors: number): 'read' | 'change' | 'flush' {
  const op = rwbs.startsWith('F') && rwbs.length > 1 ? rwbs[1] : rwbs[0];
  if (op === 'R') return 'read';
  if (sectors > 0) return 'change';
  return 'flush';
}

// bpftrace lines, as printed by the script in bpftrace-probe.ts:
//   A                       the BEGIN probe ran: every probe is attached
//   Q|C <rwbs> <sector> <sectors>
//   S <pid>                 a sentinel read submitted by pid
//   Lost <n> events         bpftrace's own notice of perf-buffer overflow
const BPF_CHANGE = /^([QC]) (\S+) (\d+) (\d+)$/;
const BPF_SENTINEL = /^S (\d+)$/;
const LOST = /^Lost (\d+) events/;

export function parseBpftraceLine(line: string): ProbeLine {
  if (line === 'A') return { kind: 'attached' };
  const c = BPF_CHANGE.exec(line);
  if (c) return fromRwbs(c[1] as 'Q' | 'C', c[2]!, Number(c[3]), Number(c[4]));
  const s = BPF_SENTINEL.exec(line);
  if (s) return { kind: 'sentinel', pid: Number(s[1]) };
  const l = LOST.exec(line);
  if (l) return { kind: 'lost', count: Number(l[1]) };
  return { kind: 'ignored' };
}

// trace_pipe lines of the blk tracer, e.g.
//   "              dd-19414   [000] d..1. 11916.620464:   7,0    Q  WS 80 + 8 [dd]"
//   "           <...>-20340   [001] ...1. 12005.305902: tracing_mark_write: hello"
// The task name may hold spaces and dashes; the pid is the number before the CPU bracket.
const BLK_LINE = /^\s*.*?-(\d+)\s+\[\d+\]\s+\S+\s+[\d.]+:\s+(\d+),(\d+)\s+(\S+)\s+(\S+)\s+(\d+) \+ (\d+)/;
const BLK_FLUSH = /^\s*.*?-(\d+)\s+\[\d+\]\s+\S+\s+[\d.]+:\s+(\d+),(\d+)\s+([QC])\s+(F\S*)\s+\[/;
const MARKER = /tracing_mark_write: (.*)$/;

export function parseBlkTraceLine(line: string, sentinelPids: ReadonlySet<number>): ProbeLine {
  const m = BLK_LINE.exec(line);
  if (m) {
    const action = m[4]!;
    if (action !== 'Q' && action !== 'C') return { kind: 'ignored' };
    const rwbs = m[5]!;
    const sectors = Number(m[7]);
    if (classifyRwbs(rwbs, sectors) === 'read') {
      const pid = Number(m[1]);
      return action === 'Q' && sentinelPids.has(pid) ? { kind: 'sentinel', pid } : { kind: 'ignored' };
    }
    const parsed = fromRwbs(action, rwbs, Number(m[6]), sectors);
    return parsed.kind === 'change' ? { ...parsed, diskMajor: Number(m[2]), diskMinor: Number(m[3]) } : parsed;
  }
  const f = BLK_FLUSH.exec(line);
  if (f) return { kind: 'flush', rwbs: f[5]! };
  const k = MARKER.exec(line);
  if (k) return { kind: 'marker', text: k[1]!.trim() };
  return { kind: 'ignored' };
}

function fromRwbs(phase: 'Q' | 'C', rwbs: string, sector: number, sectors: number): ProbeLine {
  switch (classifyRwbs(rwbs, sectors)) {
    case 'change':
      return { kind: 'change', phase, rwbs, sector, sectors };
    case 'flush':
      return { kind: 'flush', rwbs };
    default:
      return { kind: 'ignored' };
  }
}
