// Proves a restored target holds its snapshot: reads it back window by window as backup reads a
// source, and compares each block with the digest the snapshot stored for it (zeros for zero extents).
import { StrataError } from '../api/errors.js';
import type { BlockSource } from '../block-source.js';
import { alignExtents, extentEnd, intersectExtents, normalizeExtents, totalBytes, type Extent } from '../extents.js';
import { ExtentKind } from '../repo/format.js';
import type { Manifest } from '../repo/manifest.js';
import type { Repository } from '../repo/repository.js';
import type { BlockCompute, HashedWindow } from './compute.js';
import { loadExtents, ParentView, type WindowParent } from './parent-view.js';
import type { Progress } from './progress.js';
import { matchesStoredDigest, readAndHashWindow, RunCursor, WINDOW_BYTES, WINDOWS_IN_FLIGHT, type Run } from './window-read.js';

export interface VerifyRestoredRequest {
  /** Index loaded; only the snapshot's map pages and digests blobs are read, never its chunks. */
  readonly repo: Repository;
  readonly compute: BlockCompute;
  readonly manifest: Manifest;
  /** The restored target, reopened for reading after it was synced and closed. */
  readonly source: BlockSource;
  readonly onProgress?: (p: Progress) => void;
  readonly signal?: AbortSignal;
}

export interface RestoreVerification {
  /** Blocks of the snapshot's data and zero extents compared with the target (unmapped ones are not). */
  readonly blocksChecked: number;
  /** Bytes read back from the target (holes in zero extents read as zeros by definition and are skipped). */
  readonly bytesRead: number;
  /** Blocks whose content differs from the snapshot. */
  readonly mismatches: number;
  /** Disk offset of the first differing block, or null. */
  readonly firstMismatchBytes: number | null;
  readonly durationMs: number;
}

interface WindowCheck {
  readonly startBytes: number;
  readonly blocks: number;
  readonly readRuns: Run[];
  readonly zeroRuns: Run[];
  readonly checkedBytes: number;
  readonly sab: SharedArrayBuffer | null;
  readonly hashed: Promise<HashedWindow | null>;
  readonly expected: Promise<WindowParent | null>;
}

export async function verifyRestored(req: VerifyRestoredRequest): Promise<RestoreVerification> {
  const started = performance.now();
  const { repo, compute, manifest, source } = req;
  const bs = manifest.blockSizeBytes;
  const size = manifest.summary.sourceBytes;
  // A device target may be larger than the snapshot; what lies beyond it is not the snapshot's.
  if (source.sizeBytes < size) {
    throw new StrataError('Corrupt', `The restored target ${source.path} is ${source.sizeBytes} bytes, smaller than the ${size} bytes of its snapshot, so it cannot hold it.`);
  }
  const cancelled = (): StrataError => new StrataError('Cancelled', `Verification of ${source.path} was cancelled; the restore was written in full but is not verified.`);
  if (req.signal?.aborted) throw cancelled();

  const extents = await loadExtents(repo, manifest);
  const asExtent = (e: Extent): Extent => ({ startBytes: e.startBytes, lengthBytes: e.lengthBytes });
  const data = extents.filter((e) => e.kind === ExtentKind.data).map(asExtent);
  const zero = normalizeExtents(extents.filter((e) => e.kind === ExtentKind.zero).map(asExtent));
  // Holes of a sparse target read as zeros by definition; only what the target stores is read.
  const allocated = alignExtents(await source.allocatedExtents(), bs, size);
  const toRead = normalizeExtents([...data, ...intersectExtents(zero, allocated)]);
  const checked = normalizeExtents([...data, ...zero]);
  const bytesTotal = totalBytes(checked);
  // Windows after the last checked extent hold nothing to compare.
  const endBytes = checked.length > 0 ? extentEnd(checked[checked.length - 1]!) : 0;

  const expected = new ParentView(repo, extents, bs);
  const readCursor = new RunCursor(toRead);
  const dataCursor = new RunCursor(data);
  const zeroCursor = new RunCursor(zero);
  const checkedCursor = new RunCursor(checked);
  const free: SharedArrayBuffer[] = [];
  let bytesRead = 0;
  let bytesDone = 0;
  let blocksChecked = 0;
  let mismatches = 0;
  let firstMismatchBytes: number | null = null;

  source.adviseSequential();

  const startWindow = (ws: number): WindowCheck => {
    const we = Math.min(size, ws + WINDOW_BYTES);
    const blocks = Math.ceil((we - ws) / bs);
    const readRuns = readCursor.within(ws, we);
    const zeroRuns = zeroCursor.within(ws, we);
    const checkedBytes = checkedCursor.within(ws, we).reduce((n, [, l]) => n + l, 0);
    const expectedDigests = dataCursor.within(ws, we).length > 0 ? expected.window(ws, blocks) : Promise.resolve(null);
    expectedDigests.catch(() => {}); // observed in finishWindow
    if (readRuns.length === 0) return { startBytes: ws, blocks, readRuns, zeroRuns, checkedBytes, sab: null, hashed: Promise.resolve(null), expected: expectedDigests };
    const sab = free.pop() ?? new SharedArrayBuffer(WINDOW_BYTES);
    const hashed = readAndHashWindow(
      source,
      compute,
      sab,
      ws,
      readRuns,
      (l) => (bytesRead += l),
      (at) => new StrataError('InvalidInput', `The restored target ${source.path} ended early at ${at} bytes; it changed size while it was being verified.`),
    );
    hashed.catch(() => {}); // observed in finishWindow
    return { startBytes: ws, blocks, readRuns, zeroRuns, checkedBytes, sab, hashed, expected: expectedDigests };
  };

  // Runs in disk order, so the first mismatch found is the first on the disk.
  const finishWindow = async (w: WindowCheck): Promise<void> => {
    const hashed = await w.hashed;
    const parent = await w.expected;
    const mismatch = (blk: number): void => {
      mismatches++;
      firstMismatchBytes ??= w.startBytes + blk * bs;
    };
    // Every block of a zero extent is checked: those read must be zero, holes are zero.
    const isZeroBlock = new Uint8Array(w.blocks);
    for (const [o, l] of w.zeroRuns) isZeroBlock.fill(1, o / bs, Math.ceil((o + l) / bs));
    if (hashed) {
      let k = 0;
      for (const [o, l] of w.readRuns) {
        const first = o / bs;
        const n = Math.ceil(l / bs);
        for (let b = 0; b < n; b++, k++) {
          const blk = first + b;
          if (parent && parent.extentOf[blk]! >= 0) {
            if (!matchesStoredDigest(hashed.digests, k, parent.digests, blk)) mismatch(blk);
          } else if (isZeroBlock[blk] && !hashed.zeroMask[k]) mismatch(blk);
        }
      }
    }
    if (parent) for (let b = 0; b < w.blocks; b++) if (parent.extentOf[b]! >= 0) blocksChecked++;
    for (let b = 0; b < w.blocks; b++) blocksChecked += isZeroBlock[b]!;
    if (w.sab) free.push(w.sab);
    bytesDone += w.checkedBytes;
    req.onProgress?.({ phase: 'verify', bytesDone, bytesTotal, elapsedMs: performance.now() - started });
  };

  const inflight: WindowCheck[] = [];
  const drain = async (): Promise<void> => {
    // Reads and hashes still running must not outlive the source the caller is about to close.
    await Promise.allSettled(inflight.flatMap((w) => [w.hashed, w.expected]));
  };
  try {
    for (let ws = 0; ws < endBytes; ws += WINDOW_BYTES) {
      if (req.signal?.aborted) throw cancelled();
      if (inflight.length >= WINDOWS_IN_FLIGHT) await finishWindow(inflight.shift()!);
      inflight.push(startWindow(ws));
    }
    while (inflight.length > 0) {
      if (req.signal?.aborted) throw cancelled();
      await finishWindow(inflight.shift()!);
    }
  } catch (err) {
    await drain();
    throw err;
  }
  return { blocksChecked, bytesRead, mismatches, firstMismatchBytes, durationMs: Math.round(performance.now() - started) };
}
