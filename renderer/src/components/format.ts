// Human-readable sizes, byte ranges and times for the console's views. Sizes are binary (KiB, MiB,
// GiB, TiB) because disks, blocks and extents are powers of two; times are the viewer's local time.

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'] as const;

/** `1536` → `1.5 KiB`, `2199023255552` → `2 TiB`; three significant digits at most. */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes)) return '—';
  const sign = bytes < 0 ? '-' : '';
  let value = Math.abs(bytes);
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  if (unit === 0) return `${sign}${value} B`;
  // Three significant digits, trailing zeros dropped: 1.50 → 1.5, 100.0 → 100.
  const digits = value >= 100 ? 0 : value >= 10 ? 1 : 2;
  const text = value.toFixed(digits).replace(/\.?0+$/, '');
  return `${sign}${text} ${UNITS[unit]}`;
}

/**
 * A byte offset as people read them in partition tools: grouped decimal digits (`1,048,576`).
 * Grouped by hand rather than with toLocaleString: the first ICU number format in a page costs tens
 * of milliseconds, and the disk map's first status line would pay it before its first paint.
 */
export function formatOffset(bytes: number): string {
  const n = Math.round(bytes);
  if (!Number.isFinite(n)) return '—';
  const digits = String(Math.abs(n));
  // Exponent notation (≥ 1e21) has no digits to group.
  if (digits.length <= 3 || !/^\d+$/.test(digits)) return n < 0 ? `-${digits}` : digits;
  let out = digits.slice(0, ((digits.length - 1) % 3) + 1);
  for (let i = out.length; i < digits.length; i += 3) out += `,${digits.slice(i, i + 3)}`;
  return n < 0 ? `-${out}` : out;
}

/** `[start, end)` as `start – end (size)`, end exclusive. */
export function formatByteRange(startBytes: number, endBytes: number): string {
  return `${formatOffset(startBytes)} – ${formatOffset(endBytes)} (${formatBytes(endBytes - startBytes)})`;
}

/** A fraction 0..1 as a percentage that never rounds a non-zero share to 0 % or a partial one to 100 %. */
export function formatPercent(fraction: number): string {
  if (!(fraction > 0)) return '0 %';
  if (fraction >= 1) return '100 %';
  const pct = fraction * 100;
  if (pct < 0.1) return '< 0.1 %';
  if (pct > 99.9) return '> 99.9 %';
  return `${pct < 10 ? pct.toFixed(1).replace(/\.0$/, '') : Math.round(pct)} %`;
}

function pad2(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

/** An ISO time as `2026-11-23 10:19` in local time; the input unchanged when it does not parse. */
export function formatDateTime(iso: string): string {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return `${date.getFullYear()}-${pad2(date.getMonth() + 1)}-${pad2(date.getDate())} ${pad2(date.getHours())}:${pad2(date.getMinutes())}`;
}

/** A duration in ms as `850 ms`, `12.4 s`, `3 min 5 s`, `2 h 4 min`. */
export function formatDuration(durationMs: number): string {
  if (!Number.isFinite(durationMs) || durationMs < 0) return '—';
  if (durationMs < 1000) return `${Math.round(durationMs)} ms`;
  const seconds = durationMs / 1000;
  if (seconds < 60) return `${seconds.toFixed(1).replace(/\.0$/, '')} s`;
  const totalSeconds = Math.round(seconds);
  const minutes = Math.floor(totalSeconds / 60);
  if (minutes < 60) return `${minutes} min ${totalSeconds % 60} s`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}
