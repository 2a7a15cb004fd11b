// What every filesystem reader hands mapDisk: the used byte ranges of one volume, in disk offsets.
// The shared tail rule lives here: bytes of the volume past the filesystem's end are never free.
import { normalizeExtents, totalBytes, type Extent } from '../../agent-core/extents.js';

export interface UsedMap {
  /** Used byte ranges as absolute offsets on the source, normalized. */
  readonly extents: Extent[];
  /** Bytes of the volume counted as used (the filesystem's used blocks plus any tail past its end). */
  readonly usedBytes: number;
  readonly fsSizeBytes: number;
  readonly warnings: string[];
  /** The volume label, for readers that find it outside the first bytes detect-filesystem reads (NTFS). */
  readonly label?: string | null;
}

/**
 * Turns volume-relative used ranges into a UsedMap: adds the volume's tail past fsSizeBytes, drops
 * anything past the volume's end and shifts to disk offsets.
 */
export function finishUsedMap(relativeUsed: Extent[], startBytes: number, volumeBytes: number, fsSizeBytes: number, warnings: string[]): UsedMap {
  const used = [...relativeUsed];
  if (volumeBytes > fsSizeBytes) used.push({ startBytes: fsSizeBytes, lengthBytes: volumeBytes - fsSizeBytes });
  const extents: Extent[] = [];
  for (const e of normalizeExtents(used)) {
    if (e.startBytes >= volumeBytes) break;
    extents.push({ startBytes: startBytes + e.startBytes, lengthBytes: Math.min(e.lengthBytes, volumeBytes - e.startBytes) });
  }
  return { extents, usedBytes: totalBytes(extents), fsSizeBytes, warnings };
}

/** The bytes of the volume a source actually holds: a partition entry may run past the image's end. */
export function volumeBytesOf(sourceSizeBytes: number, startBytes: number, sizeBytes: number): number {
  return Math.max(0, Math.min(sizeBytes, sourceSizeBytes - startBytes));
}
