// Reading a source window by window, the way backup and the read-back of a restore both do: fixed
// block-aligned windows in disk order, runs read into a shared buffer, blocks hashed on the pool.
import type { StrataError } from '../api/errors.js';
import type { BlockSource } from '../block-source.js';
import type { Extent } from '../extents.js';
import { STORED_DIGEST_BYTES } from '../repo/format.js';
import type { BlockCompute, HashedWindow } from './compute.js';

/** Span of one window; windows start at its multiples, so they are aligned to any block size that divides it. */
export const WINDOW_BYTES = 4 << 20;
/** Gaps up to this size between runs are read through rather than split into two reads. */
export const READ_GAP_BYTES = 256 << 10;
/** Windows in flight: enough to keep every worker busy across window boundaries. */
export const WINDOWS_IN_FLIGHT = 8;

/** A window-relative byte run: [offset, length]. */
export type Run = [number, number];

/** Walks a sorted extent list forward, giving the part of it inside each window. */
export class RunCursor {
  private next = 0;

  constructor(private readonly list: readonly Extent[]) {}

  /** Window-relative runs of the list inside [startBytes, endBytes); calls must move forward. */
  within(startBytes: number, endBytes: number): Run[] {
    const list = this.list;
    const runs: Run[] = [];
    let i = this.next;
    while (i < list.length && list[i]!.startBytes + list[i]!.lengthBytes <= startBytes) i++;
    this.next = i;
    for (; i < list.length && list[i]!.startBytes < endBytes; i++) {
      const s = Math.max(startBytes, list[i]!.startBytes);
      const e = Math.min(endBytes, list[i]!.startBytes + list[i]!.lengthBytes);
      if (e > s) runs.push([s - startBytes, e - s]);
    }
    return runs;
  }
}

/** A batch of reads for a source's readRunsInto: at most this many runs and (unless one run is larger) this many bytes. */
const BATCH_RUNS = 16;
const BATCH_BYTES = 1 << 20;

export interface WindowReadOptions {
  /** Gaps shorter than this are read through (READ_GAP_BYTES unless given); 0 reads only the runs. */
  readonly gapBytes?: number;
  /**
   * Packs the runs one after another from the start of the buffer instead of at their own offsets,
   * so a window spanning much of the disk but reading little fits one buffer: read block k of the
   * window is then at k × the block size. Runs must be whole blocks (but for the source's last).
   */
  readonly packed?: boolean;
}

/**
 * Reads the runs of the window at startBytes into `window` (at their own offsets, or packed), then
 * hashes them on the pool. Gaps shorter than `gapBytes` are read through: one larger sequential read
 * beats two small ones; the gap bytes are read but never hashed. A tracked incremental reads its
 * runs packed with no gaps, since they are the few blocks a tracker saw written. `onRead` is told
 * the bytes of each read as it completes; `endedEarly` makes the error for a source shorter than a
 * read.
 */
export function readAndHashWindow(
  source: BlockSource,
  compute: BlockCompute,
  window: SharedArrayBuffer,
  startBytes: number,
  runs: readonly Run[],
  onRead: (bytes: number) => void,
  endedEarly: (atBytes: number) => StrataError,
  { gapBytes = READ_GAP_BYTES, packed = false }: WindowReadOptions = {},
): Promise<HashedWindow> {
  const view = Buffer.from(window);
  // Each read as [buffer offset, length, source offset].
  const reads: [number, number, number][] = [];
  let packedBytes = 0;
  if (packed) {
    for (const [o, l] of runs) {
      reads.push([packedBytes, l, startBytes + o]);
      packedBytes += l;
    }
  } else {
    for (const [o, l] of mergeRuns(runs, gapBytes)) reads.push([o, l, startBytes + o]);
  }
  // Where the source can, reads go in batches of up to BATCH_RUNS runs and BATCH_BYTES, one native
  // task each, straight into the window: scattered small runs (a tracked backup's changed blocks)
  // cost more per read than per byte, and a large run alone is still one task. The batches run
  // side by side.
  const batches: [number, number, number][][] = [];
  if (source.readRunsInto) {
    let batch: [number, number, number][] = [];
    let batchBytes = 0;
    for (const r of reads) {
      if (batch.length > 0 && (batch.length === BATCH_RUNS || batchBytes + r[1] > BATCH_BYTES)) {
        batches.push(batch);
        batch = [];
        batchBytes = 0;
      }
      batch.push(r);
      batchBytes += r[1];
    }
    if (batch.length > 0) batches.push(batch);
  }
  const read = Promise.all(
    source.readRunsInto
      ? batches.map(async (batch) => {
          const got = await source.readRunsInto!(view, batch);
          batch.forEach(([, l, from], i) => {
            if (got[i] !== l) throw endedEarly(from + got[i]!);
            onRead(l);
          });
        })
      : reads.map(async ([at, l, from]) => {
          const got = await source.readInto(view, at, l, from);
          if (got !== l) throw endedEarly(from + got);
          onRead(l);
        }),
  );
  return read.then(() => compute.hash(window, packed ? [[0, packedBytes]] : runs));
}

/**
 * Whether block i of a window's 32-byte digests equals stored digest j: the first
 * STORED_DIGEST_BYTES of a digest are what a digests blob keeps (docs/FORMAT.md §5).
 */
export function matchesStoredDigest(digests32: Buffer, i: number, stored: Buffer, j: number): boolean {
  return digests32.compare(stored, j * STORED_DIGEST_BYTES, (j + 1) * STORED_DIGEST_BYTES, i * 32, i * 32 + STORED_DIGEST_BYTES) === 0;
}

/**
 * What a chunk's digests blob holds: the stored part of `count` 32-byte digests from `at`, in
 * memory of its own (a message to the pool would copy a view's whole buffer).
 */
export function storedDigests(digests32: Buffer, at: number, count: number): Buffer {
  const out = Buffer.alloc(count * STORED_DIGEST_BYTES);
  for (let b = 0; b < count; b++) digests32.copy(out, b * STORED_DIGEST_BYTES, (at + b) * 32, (at + b) * 32 + STORED_DIGEST_BYTES);
  return out;
}

/** Joins sorted runs whose gap is at most gapBytes. */
export function mergeRuns(runs: readonly Run[], gapBytes: number): Run[] {
  const out: Run[] = [];
  for (const [o, l] of runs) {
    const last = out[out.length - 1];
    if (last && o - (last[0] + last[1]) <= gapBytes) last[1] = o + l - last[0];
    else out.push([o, l]);
  }
  return out;
}

/** Parts of `a` not covered by `b` (both sorted window-relative runs). */
export function subtractRuns(a: readonly Run[], b: readonly Run[]): Run[] {
  const out: Run[] = [];
  let j = 0;
  for (const [s0, l0] of a) {
    let s = s0;
    const e = s0 + l0;
    while (j < b.length && b[j]![0] + b[j]![1] <= s) j++;
    let k = j;
    while (s < e) {
      const r = b[k];
      if (!r || r[0] >= e) {
        out.push([s, e - s]);
        break;
      }
      if (r[0] > s) out.push([s, r[0] - s]);
      s = Math.max(s, r[0] + r[1]);
      k++;
    }
  }
  return out;
}
