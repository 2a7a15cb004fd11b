// How the CLI shows numbers and progress: a bar on a terminal, JSON lines for programs, nothing
// when stderr is not a terminal and JSON was not asked for.
import { rateAndEta, type Progress } from '../agent-core/engine/progress.js';

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${u === 0 ? v : v.toFixed(1)} ${units[u]}`;
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}

export class ProgressPrinter {
  private lastAt = 0;
  private completedPhase: Progress['phase'] | null = null;
  private shown = false;
  private readonly tty = process.stderr.isTTY === true;

  constructor(private readonly json: boolean) {}

  update(p: Progress): void {
    const now = Date.now();
    const complete = p.bytesDone >= p.bytesTotal;
    // At most one line per 250 ms, and the 100 % line once per phase (a backup reports again for
    // every window after its last byte: empty stretches of the disk).
    if (complete ? this.completedPhase === p.phase : now - this.lastAt < 250) return;
    if (complete) this.completedPhase = p.phase;
    this.lastAt = now;
    const { rateBytesPerSec, etaMs } = rateAndEta(p);
    if (this.json) {
      process.stdout.write(JSON.stringify({ type: 'progress', phase: p.phase, bytesDone: p.bytesDone, bytesTotal: p.bytesTotal, rateBytesPerSec, etaMs }) + '\n');
      return;
    }
    if (!this.tty) return;
    const share = p.bytesTotal > 0 ? Math.min(1, p.bytesDone / p.bytesTotal) : 1;
    const width = 30;
    const filled = Math.round(share * width);
    const unit = p.phase === 'verify' ? '' : '/s';
    const rate = p.phase === 'verify' ? '' : ` ${formatBytes(rateBytesPerSec)}${unit}`;
    process.stderr.write(
      `\r${p.phase} [${'#'.repeat(filled)}${' '.repeat(width - filled)}] ${String(Math.round(share * 100)).padStart(3)}%${rate}${etaMs !== null ? ` ETA ${formatDuration(etaMs)}` : ''}   `,
    );
    this.shown = true;
  }

  done(): void {
    if (this.shown) process.stderr.write('\n');
    this.shown = false;
  }
}
