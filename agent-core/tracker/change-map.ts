// The role of a changed-block map: which blocks of one device were written since the map was last
// taken. Trackers feed it; incremental backups read it as sorted runs.
import type { Extent } from '../extents.js';

export const DEFAULT_BLOCK_SIZE_BYTES = 4096;

export interface ChangeMap {
  readonly sizeBytes: number;
  readonly blockSizeBytes: number;
  /** Bytes covered by marked blocks, the device's last partial block counted only up to sizeBytes. */
  readonly markedBytes: number;
  /** Marks every block that [offsetBytes, offsetBytes + lengthBytes) touches; clipped to the device. */
  mark(offsetBytes: number, lengthBytes: number): void;
  isMarked(block: number): boolean;
  /** Marked runs in ascending order, disjoint and maximal (no two touch), clipped to sizeBytes. Read a taken map, not one still being marked. */
  runs(): Iterable<Extent>;
  /** Marks everything the other map holds. */
  merge(other: ChangeMap): void;
  /** An estimate of the bytes this map holds in memory, object headers included. */
  memoryBytes(): number;
  /** Returns the marks so far and leaves this map empty, with no mark lost in between. */
  takeAndReset(): ChangeMap;
}

/** Bytes a plain one-bit-per-block bitmap needs for the device (seed 003: 3,276,800 per 100 GB). */
export function plainBitmapBytes(sizeBytes: number, blockSizeBytes = DEFAULT_BLOCK_SIZE_BYTES): number {
  return Math.ceil(Math.ceil(sizeBytes / blockSizeBytes) / 8);
}
