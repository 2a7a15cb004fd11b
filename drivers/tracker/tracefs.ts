// The kernel's tracefs: where it is mounted, and the few files the trackers read and write.
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { StrataError } from '../../agent-core/api/errors.js';

export const TRACEFS = '/sys/kernel/tracing';

/** Mounts tracefs at its usual place when nothing is mounted there yet (some hosts never mount it). */
export function ensureTracefs(): void {
  if (existsSync(path.join(TRACEFS, 'trace_pipe'))) return;
  const r = spawnSync('mount', ['-t', 'tracefs', 'nodev', TRACEFS], { encoding: 'utf8' });
  if (r.status !== 0 || !existsSync(path.join(TRACEFS, 'trace_pipe'))) {
    throw new StrataError('Unsupported', `tracefs is not mounted at ${TRACEFS} and mounting it failed: ${(r.stderr || r.error?.message || '').trim()}.`);
  }
}

export function readTracefs(file: string): string {
  return readFileSync(path.join(TRACEFS, file), 'utf8').trim();
}

export function writeTracefs(file: string, value: string): void {
  writeFileSync(path.join(TRACEFS, file), value);
}

/** Events the ring buffer overwrote or dropped, summed over CPUs, since tracing was last reset. */
export function ringBufferLosses(): number {
  let total = 0;
  for (const cpu of readdirSync(path.join(TRACEFS, 'per_cpu'))) {
    const stats = readFileSync(path.join(TRACEFS, 'per_cpu', cpu, 'stats'), 'utf8');
    for (const m of stats.matchAll(/^(?:overrun|commit overrun|dropped events):\s*(\d+)/gm)) total += Number(m[1]);
  }
  return total;
}

/** The blk trace directory of a block device (a disk or a partition) in sysfs. */
export function blkTraceDir(name: string): string {
  return `/sys/class/block/${name}/trace`;
}

/** Names of the block devices whose blk tracing is enabled right now. */
export function blkTracedDevices(): string[] {
  const out: string[] = [];
  for (const name of readdirSync('/sys/class/block')) {
    try {
      if (readFileSync(path.join(blkTraceDir(name), 'enable'), 'utf8').trim() === '1') out.push(name);
    } catch {
      // no trace directory (or the device went away): not traced
    }
  }
  return out;
}
