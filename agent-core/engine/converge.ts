// Iterative convergence (seeds 000 and 002): a mounted filesystem keeps changing while the backup
// reads it, so the first pass copies a disk that is a blur of moments. Each further pass re-reads
// only what the tracker saw written during the previous one, which is less each time; once little
// is left, the filesystems are frozen just long enough to take the tracker's last epoch and copy
// those blocks into memory, then thawed. The result is the disk as it was at that freeze: every
// block written before it was either read after its last write or re-read under the freeze.
//
// Nothing is written to the repository while frozen: the repository (or the catalog, or a log) may
// live on the frozen filesystem, and a write there would wait for the thaw that never comes.
import { StrataError } from '../api/errors.js';
import { ComputedSource, type BlockSource } from '../block-source.js';
import { alignExtents, intersectExtents, normalizeExtents, totalBytes, type Extent } from '../extents.js';
import { ExtentKind } from '../repo/format.js';
import type { MapExtent } from '../repo/map-page.js';
import type { PassPlan, TrackedChanges } from './backup.js';

export interface Convergence {
  /**
   * Ends the tracker's current epoch and returns what was written during it: the first call, the
   * writes since the take the backup started from (made under a freeze before the disk was mapped).
   */
  take(): Promise<TrackedChanges>;
  /** Runs fn with the source's mounted filesystems frozen, and thaws them whatever happens. fn only reads. */
  frozen<T>(fn: () => Promise<T>): Promise<T>;
  /** Re-read passes before the frozen one, however much each still finds (default 4). */
  readonly maxPasses?: number;
  /** A change set this small is copied under the freeze (default 64 MiB); larger ones get another pass first. */
  readonly frozenBudgetBytes?: number;
  /** The most a frozen pass holds in memory before it gives up (default 256 MiB). */
  readonly frozenLimitBytes?: number;
}

export interface Converged {
  readonly extents: MapExtent[];
  /** The key of the epoch that began at the freeze: the snapshot holds the disk as of that take. */
  readonly epochKey: string;
  readonly passes: number;
  readonly rereadBytes: number;
  readonly frozenMs: number;
}

interface Disk {
  readonly source: BlockSource;
  /** Where the source may hold data (a device: all of it). */
  readonly allocated: readonly Extent[];
  readonly size: number;
  readonly bs: number;
  readonly sourceName: string;
  readonly signal?: AbortSignal | undefined;
}

const MiB = 1 << 20;

/** Re-reads what changed after `extents` were read until the disk holds still, the last pass frozen. */
export async function converge(c: Convergence, extents: MapExtent[], scan: (pass: PassPlan) => Promise<MapExtent[]>, disk: Disk): Promise<Converged> {
  const maxPasses = c.maxPasses ?? 4;
  const budget = c.frozenBudgetBytes ?? 64 * MiB;
  const limit = c.frozenLimitBytes ?? 256 * MiB;
  let passes = 0;
  let rereadBytes = 0;
  let gapRetries = 0;
  let current = extents;
  const pass = async (reread: readonly Extent[], from: BlockSource): Promise<void> => {
    if (disk.signal?.aborted) throw new StrataError('Cancelled', 'The backup was cancelled; what was stored so far will be reused by the next run.');
    current = await scan(rereadPass(current, reread, from, disk));
    passes++;
    rereadBytes += totalBytes(reread);
  };
  for (;;) {
    const pending = changedBlocks(await c.take(), disk);
    if (totalBytes(pending) > budget && passes < maxPasses) {
      await pass(pending, disk.source);
      continue;
    }
    const frozenStart = performance.now();
    const frozen = await c.frozen(async () => {
      const last = await c.take();
      if (last.gapReason !== null) return { kind: 'gap', reason: last.gapReason } as const;
      const set = normalizeExtents([...pending, ...changedBlocks(last, disk)]);
      if (totalBytes(set) > limit) return { kind: 'too-much', bytes: totalBytes(set) } as const;
      return { kind: 'captured', epochKey: last.epochKey, set, captured: await CapturedSource.capture(disk.source, set) } as const;
    });
    const frozenMs = performance.now() - frozenStart;
    if (frozen.kind === 'gap') {
      // The tracker cannot say what changed since the last take: read everything again, thawed,
      // and converge from the epoch the frozen take began.
      if (gapRetries++ >= MAX_GAP_RETRIES) {
        throw new StrataError('DeviceBusy', `The change tracker of ${disk.sourceName} kept losing track while the backup converged (${frozen.reason}); run the backup again.`);
      }
      await pass(disk.allocated, disk.source);
      continue;
    }
    if (frozen.kind === 'too-much') {
      throw new StrataError(
        'DeviceBusy',
        `${disk.sourceName} kept changing faster than it could be copied (${Math.ceil(frozen.bytes / MiB)} MiB written during the last of ${passes + 1} passes); run the backup again when it is quieter — what was stored is reused.`,
      );
    }
    await pass(frozen.set, frozen.captured);
    return { extents: current, epochKey: frozen.epochKey, passes, rereadBytes, frozenMs };
  }
}

/** How often a frozen take with a gap sends the convergence back to a full re-read. */
const MAX_GAP_RETRIES = 2;

/**
 * The blocks a take says were written, aligned outward to whole blocks and limited to what the
 * source holds. Not limited to the valid map: a block allocated during the copy is outside the map
 * read before it. A take with a gap does not know: then every block is re-read.
 */
export function changedBlocks(take: TrackedChanges, disk: Pick<Disk, 'allocated' | 'size' | 'bs'>): Extent[] {
  if (take.gapReason !== null) return [...disk.allocated];
  return intersectExtents(alignExtents(take.changes, disk.bs, disk.size), disk.allocated);
}

/** A pass that re-reads `reread` and keeps every other block as the previous pass mapped it. */
export function rereadPass(previous: readonly MapExtent[], reread: readonly Extent[], source: BlockSource, disk: Pick<Disk, 'allocated'>): PassPlan {
  const mapped = previous.filter((e) => e.kind !== ExtentKind.unmapped).map((e) => ({ startBytes: e.startBytes, lengthBytes: e.lengthBytes }));
  const valid = normalizeExtents([...mapped, ...reread]);
  return {
    source,
    valid,
    present: intersectExtents(valid, disk.allocated),
    toRead: reread,
    keepUnread: true,
    base: previous,
    compare: false,
    marked: null,
    parentZeros: null,
    readGapBytes: 0,
    packed: true,
    reportProgress: false,
  };
}

/** Pieces a capture reads at a time: large sequential reads, bounded buffers. */
const CAPTURE_PIECE_BYTES = 4 * MiB;

/**
 * A source that serves only the ranges it copied from another one, from memory: the frozen pass
 * reads the device under the freeze and hands this to the pipeline after the thaw.
 */
export class CapturedSource extends ComputedSource {
  readonly kind: BlockSource['kind'];
  readonly sizeBytes: number;
  readonly logicalSectorSize: number;
  readonly physicalSectorSize: number;
  readonly path: string;

  private constructor(
    from: BlockSource,
    /** Sorted, disjoint: [startBytes, data]. */
    private readonly pieces: readonly (readonly [number, Buffer])[],
  ) {
    super();
    this.kind = from.kind;
    this.sizeBytes = from.sizeBytes;
    this.logicalSectorSize = from.logicalSectorSize;
    this.physicalSectorSize = from.physicalSectorSize;
    this.path = from.path;
  }

  static async capture(from: BlockSource, ranges: readonly Extent[]): Promise<CapturedSource> {
    const pieces: [number, Buffer][] = [];
    for (const r of ranges) {
      const end = Math.min(from.sizeBytes, r.startBytes + r.lengthBytes);
      for (let at = r.startBytes; at < end; at += CAPTURE_PIECE_BYTES) {
        const length = Math.min(CAPTURE_PIECE_BYTES, end - at);
        const buf = Buffer.allocUnsafe(length);
        const got = await from.readInto(buf, 0, length, at);
        if (got !== length) throw new StrataError('InvalidInput', `${from.path} ended early at ${at + got} bytes; it changed size during the backup.`);
        pieces.push([at, buf]);
      }
    }
    return new CapturedSource(from, pieces);
  }

  get capturedBytes(): number {
    return this.pieces.reduce((n, [, b]) => n + b.length, 0);
  }

  async read(offsetBytes: number, lengthBytes: number): Promise<Buffer> {
    const out = Buffer.alloc(Math.max(0, Math.min(lengthBytes, this.sizeBytes - offsetBytes)));
    await this.readInto(out, 0, out.length, offsetBytes);
    return out;
  }

  override async readInto(target: Uint8Array, targetOffset: number, lengthBytes: number, offsetBytes: number): Promise<number> {
    const end = Math.min(this.sizeBytes, offsetBytes + lengthBytes);
    let at = offsetBytes;
    for (const [start, data] of this.pieces) {
      if (at >= end) break;
      if (start + data.length <= at) continue;
      if (start > at) break;
      const n = Math.min(end, start + data.length) - at;
      target.set(data.subarray(at - start, at - start + n), targetOffset + (at - offsetBytes));
      at += n;
    }
    if (at < end) {
      throw new StrataError('Internal', `The frozen copy of ${this.path} does not hold bytes ${at}–${end}; the backup read outside what it captured.`);
    }
    return end - offsetBytes;
  }

  override async allocatedExtents(): Promise<Extent[]> {
    return this.pieces.map(([startBytes, data]) => ({ startBytes, lengthBytes: data.length }));
  }

}
