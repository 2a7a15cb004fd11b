// The disk's volumes as the map shows them: which volumes a byte range touches, the partition strip's
// segments (volumes and the gaps between them) and the sentence the status line reads out.
import type { VolumeInfo } from '../../../../agent-core/api/disk-layout.js';
import { formatByteRange, formatBytes, formatPercent } from '../format.js';

/** Volumes overlapping [startBytes, endBytes), in disk order. */
export function volumesIn(volumes: readonly VolumeInfo[], startBytes: number, endBytes: number): VolumeInfo[] {
  return volumes
    .filter((v) => v.sizeBytes > 0 && v.startBytes < endBytes && v.startBytes + v.sizeBytes > startBytes)
    .sort((a, b) => a.startBytes - b.startBytes);
}

/** `volume 2 (ext4, “root”)`; `volume 0` is a disk without a partition table. */
export function describeVolume(v: VolumeInfo): string {
  const fs = v.filesystem === 'unknown' ? 'unknown filesystem' : v.filesystem;
  return `volume ${v.index} (${fs}${v.label ? `, “${v.label}”` : ''})`;
}

export interface StripSegment {
  startBytes: number;
  sizeBytes: number;
  /** Percent of the disk, for left/width styles. */
  leftPct: number;
  widthPct: number;
  volume: VolumeInfo | null;
}

/** The partition strip: every volume and every gap between them, proportional to the disk. */
export function stripSegments(sizeBytes: number, volumes: readonly VolumeInfo[]): StripSegment[] {
  if (sizeBytes <= 0) return [];
  const sorted = [...volumes].filter((v) => v.sizeBytes > 0).sort((a, b) => a.startBytes - b.startBytes);
  const segments: StripSegment[] = [];
  const push = (start: number, end: number, volume: VolumeInfo | null) => {
    const s = Math.max(0, Math.min(start, sizeBytes));
    const e = Math.max(s, Math.min(end, sizeBytes));
    if (e <= s) return;
    segments.push({ startBytes: s, sizeBytes: e - s, leftPct: (s / sizeBytes) * 100, widthPct: ((e - s) / sizeBytes) * 100, volume });
  };
  let cursor = 0;
  for (const v of sorted) {
    if (v.startBytes > cursor) push(cursor, v.startBytes, null);
    push(Math.max(v.startBytes, cursor), v.startBytes + v.sizeBytes, v);
    cursor = Math.max(cursor, v.startBytes + v.sizeBytes);
  }
  if (cursor < sizeBytes) push(cursor, sizeBytes, null);
  return segments;
}

export interface CellState {
  startBytes: number;
  endBytes: number;
  used: number;
  changed: number | null;
  snapshot: number | null;
}

/** What the status line says about one cell: range, volumes, and how much is used and changed. */
export function describeCell(state: CellState, volumes: readonly VolumeInfo[], changedName = 'changed'): string {
  const touching = volumesIn(volumes, state.startBytes, state.endBytes);
  const where =
    touching.length === 0
      ? 'outside any volume'
      : touching.length <= 3
        ? touching.map(describeVolume).join(', ')
        : `${touching.length} volumes (${touching[0]!.index} to ${touching[touching.length - 1]!.index})`;
  const parts = [`Bytes ${formatByteRange(state.startBytes, state.endBytes)}`, where, `used ${formatPercent(state.used)}`];
  if (state.changed !== null) parts.push(`${changedName} ${formatPercent(state.changed)}`);
  if (state.snapshot !== null) parts.push(`in snapshot ${formatPercent(state.snapshot)}`);
  return parts.join(' · ');
}

export function describeSegment(segment: StripSegment): string {
  const size = formatBytes(segment.sizeBytes);
  return segment.volume ? `${describeVolume(segment.volume)}, ${size}` : `unpartitioned space, ${size}`;
}
