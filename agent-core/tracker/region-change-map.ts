// The live tracker's changed-block map: runs where writes cluster, bitmaps where they scatter, so a
// typical day on 100 GB costs tens of KiB and no pattern costs more than a plain bitmap.
//
// Design. Blocks are numbered from 0 at blockSizeBytes (4 KiB by default) and the device is cut into
// fixed regions of regionBlocks (16384 blocks, 64 MiB at 4 KiB). Marks outside bitmap regions live
// in one sorted list of disjoint, non-touching runs [start, end), stored as (start, end) pairs —
// 32-bit, or 64-bit past 2^32 blocks — in typed-array chunks of up to 256 runs: a mark is a binary
// search over chunks, one within a chunk and a bounded shift, O(log n) plus a constant. Overlapping
// and touching runs are absorbed as they come, so the list is always maximal. A full chunk first
// passes a run to a neighbour with room (as a B*-tree does) and only then splits, and the list is
// repacked when merges have left it a third empty, so chunks stay 70–90 % full. When a region holds
// so many runs that their pairs outweigh a bitmap of the region (about 290 runs against 2 KiB plus
// headers) its runs move into a bitmap leaf, and later marks there set bits; the regions are
// checked in one pass each time the list has grown by an eighth, O(1) per mark amortized. If the
// whole structure would ever hold more than a plain bitmap of the device (every other block
// marked), it becomes exactly that bitmap, for good: memory stays min(runs and leaves, plain bitmap)
// plus headers. Nothing is allocated per block of the device; memoryBytes() counts V8's
// typed-array headers (about 216 bytes each), which is why chunks are large and leaves are few.
//
// takeAndReset. A backup reads the map and must clear it without losing a write that lands between
// the read and the clear. The map is only ever touched from the one JavaScript thread that drains
// the tracker's event feed, and takeAndReset swaps the whole store for an empty one in a single
// synchronous step: no event handler can run between "take" and "reset", so every mark goes either
// into the map handed back or into the fresh one, never neither. That is enough only if the feed
// delivers marks in the order the writes completed and has drained every event up to the epoch
// switch before the backup takes the map: a mark that arrives late, or is buffered across the swap
// or in another thread, would land in the next map, and this backup would miss a write that its
// point in time includes. The backup takes the map before it reads the device, so a write racing
// the read is marked again in the next map.
import { StrataError } from '../api/errors.js';
import type { Extent } from '../extents.js';
import { bitRuns, setBits, testBit } from './block-bitmap.js';
import { DEFAULT_BLOCK_SIZE_BYTES, type ChangeMap } from './change-map.js';
import {
  ChunkedRunList,
  MAP_ENTRY_BYTES,
  OBJECT_OVERHEAD_BYTES,
  SLOT_BYTES,
  TYPED_ARRAY_OVERHEAD_BYTES,
} from './chunked-run-list.js';

export const DEFAULT_REGION_BLOCKS = 16384;
/** How many new runs the list may gain between two looks at whether a region should become a bitmap. */
const CHECK_EVERY_RUNS = 256;

/** Headers any JS bitmap carries beyond its bits: the typed array and the object holding it. */
export const BITMAP_HEADER_BYTES = TYPED_ARRAY_OVERHEAD_BYTES + OBJECT_OVERHEAD_BYTES;

export interface RegionChangeMapOptions {
  readonly blockSizeBytes?: number;
  /** Blocks per region; a multiple of 8. */
  readonly regionBlocks?: number;
}

interface Store {
  runs: ChunkedRunList;
  /** Region index → bitmap of its blocks. */
  regions: Map<number, Uint8Array>;
  /** The keys of regions, ascending. */
  regionOrder: number[];
  /** Set once the map has become a plain bitmap of the whole device. */
  flat: Uint8Array | undefined;
  markedBlocks: number;
  nextCheckAtRuns: number;
}

export class RegionChangeMap implements ChangeMap {
  readonly sizeBytes: number;
  readonly blockSizeBytes: number;
  readonly regionBlocks: number;
  private readonly blockCount: number;
  private readonly wide: boolean;
  private readonly regionLeafBytes: number;
  private readonly densifyAtRuns: number;
  private readonly flatBytes: number;
  private store: Store;

  constructor(sizeBytes: number, options: RegionChangeMapOptions = {}) {
    const blockSizeBytes = options.blockSizeBytes ?? DEFAULT_BLOCK_SIZE_BYTES;
    const regionBlocks = options.regionBlocks ?? DEFAULT_REGION_BLOCKS;
    if (!Number.isSafeInteger(sizeBytes) || sizeBytes < 0) {
      throw new StrataError('InvalidInput', `A change map needs a device size in whole bytes, not ${sizeBytes}.`);
    }
    if (!Number.isSafeInteger(blockSizeBytes) || blockSizeBytes <= 0) {
      throw new StrataError('InvalidInput', `The tracking block size must be a positive whole number of bytes, not ${blockSizeBytes}.`);
    }
    if (!Number.isSafeInteger(regionBlocks) || regionBlocks <= 0 || regionBlocks % 8 !== 0) {
      throw new StrataError('InvalidInput', `The region size must be a positive multiple of 8 blocks, not ${regionBlocks}.`);
    }
    this.sizeBytes = sizeBytes;
    this.blockSizeBytes = blockSizeBytes;
    this.regionBlocks = regionBlocks;
    this.blockCount = Math.ceil(sizeBytes / blockSizeBytes);
    this.wide = this.blockCount > 0xffffffff;
    this.regionLeafBytes = regionBlocks / 8 + TYPED_ARRAY_OVERHEAD_BYTES + MAP_ENTRY_BYTES + SLOT_BYTES;
    this.densifyAtRuns = Math.ceil(this.regionLeafBytes / (this.wide ? 16 : 8));
    this.flatBytes = Math.ceil(this.blockCount / 8) + BITMAP_HEADER_BYTES;
    this.store = this.emptyStore();
  }

  get markedBytes(): number {
    const { markedBlocks } = this.store;
    const tailBytes = this.blockCount * this.blockSizeBytes - this.sizeBytes;
    const lastMarked = tailBytes > 0 && this.blockCount > 0 && this.isMarked(this.blockCount - 1);
    return markedBlocks * this.blockSizeBytes - (lastMarked ? tailBytes : 0);
  }

  /** What the map is made of right now, for tests and the bench. */
  shape(): { listRuns: number; bitmapRegions: number; flat: boolean } {
    const s = this.store;
    return { listRuns: s.runs.runCount, bitmapRegions: s.regions.size, flat: s.flat !== undefined };
  }

  mark(offsetBytes: number, lengthBytes: number): void {
    if (!Number.isSafeInteger(offsetBytes) || offsetBytes < 0 || !Number.isSafeInteger(lengthBytes) || lengthBytes < 0) {
      throw new StrataError('InvalidInput', `A write must have a whole, non-negative offset and length (got ${offsetBytes}, ${lengthBytes}).`);
    }
    if (lengthBytes === 0) return;
    const first = Math.floor(offsetBytes / this.blockSizeBytes);
    const end = Math.min(this.blockCount, Math.ceil((offsetBytes + lengthBytes) / this.blockSizeBytes));
    if (first < end) this.markBlocks(first, end);
  }

  isMarked(block: number): boolean {
    if (!Number.isSafeInteger(block) || block < 0 || block >= this.blockCount) return false;
    const s = this.store;
    if (s.flat) return testBit(s.flat, block);
    const region = Math.floor(block / this.regionBlocks);
    const leaf = s.regions.get(region);
    if (leaf) return testBit(leaf, block - region * this.regionBlocks);
    return s.runs.has(block);
  }

  *runs(): Generator<Extent> {
    let pending: [number, number] | undefined;
    for (const [start, end] of this.blockRuns()) {
      if (pending && start === pending[1]) {
        pending[1] = end;
        continue;
      }
      if (pending) yield this.toExtent(pending);
      pending = [start, end];
    }
    if (pending) yield this.toExtent(pending);
  }

  merge(other: ChangeMap): void {
    if (other === this) return;
    for (const e of other.runs()) this.mark(e.startBytes, e.lengthBytes);
  }

  memoryBytes(): number {
    const s = this.store;
    if (s.flat) return this.flatBytes;
    return (
      OBJECT_OVERHEAD_BYTES +
      s.runs.memoryBytes() +
      OBJECT_OVERHEAD_BYTES +
      s.regions.size * this.regionLeafBytes
    );
  }

  takeAndReset(): RegionChangeMap {
    const taken = new RegionChangeMap(this.sizeBytes, { blockSizeBytes: this.blockSizeBytes, regionBlocks: this.regionBlocks });
    // One synchronous swap: see the module comment for why no mark can fall between take and reset.
    taken.store = this.store;
    this.store = this.emptyStore();
    return taken;
  }

  private emptyStore(): Store {
    return {
      runs: new ChunkedRunList(this.wide),
      regions: new Map(),
      regionOrder: [],
      flat: undefined,
      markedBlocks: 0,
      nextCheckAtRuns: CHECK_EVERY_RUNS,
    };
  }

  private markBlocks(start: number, end: number): void {
    const s = this.store;
    if (s.flat) {
      s.markedBlocks += setBits(s.flat, start, end);
      return;
    }
    const R = this.regionBlocks;
    // Walk the bitmap regions the range crosses; the gaps between them go to the run list.
    let i = lowerBound(s.regionOrder, Math.floor(start / R));
    let cursor = start;
    while (cursor < end) {
      const region = s.regionOrder[i];
      if (region !== undefined && region * R < end) {
        const lo = region * R;
        if (cursor < lo) s.markedBlocks += s.runs.insert(cursor, lo);
        const to = Math.min(end, lo + R);
        s.markedBlocks += setBits(s.regions.get(region)!, Math.max(cursor, lo) - lo, to - lo);
        cursor = to;
        i++;
      } else {
        s.markedBlocks += s.runs.insert(cursor, end);
        cursor = end;
      }
    }
    if (s.runs.runCount >= s.nextCheckAtRuns) {
      this.densifyCrowdedRegions();
      s.nextCheckAtRuns = s.runs.runCount + Math.max(CHECK_EVERY_RUNS, Math.floor(s.runs.runCount / 8));
    }
    // Runs merge as gaps fill in, and chunks never shrink on their own. Repacking costs O(n) and
    // needs the list to lose a quarter of its runs (or grow a third in slack) again, so O(1) amortized.
    if (s.runs.capacityRuns > 1.5 * s.runs.runCount + 1024) s.runs.compact();
    if (this.memoryBytes() > this.flatBytes) this.flatten();
  }

  /**
   * Turns every region whose runs would outweigh its bitmap into a bitmap leaf. One pass over the
   * sorted runs, run after the list has grown by an eighth, so it costs O(1) per mark amortized.
   */
  private densifyCrowdedRegions(): void {
    const s = this.store;
    const crowded = s.runs.crowdedRegions(this.regionBlocks, this.densifyAtRuns);
    for (const r of crowded) this.densify(r);
    if (crowded.length > 0) s.runs.compact();
  }

  private densify(region: number): void {
    const s = this.store;
    const lo = region * this.regionBlocks;
    const hi = Math.min(this.blockCount, lo + this.regionBlocks);
    const leaf = new Uint8Array(this.regionBlocks / 8);
    for (const [a, b] of s.runs.cut(lo, hi)) setBits(leaf, a - lo, b - lo);
    s.regions.set(region, leaf);
    s.regionOrder.splice(lowerBound(s.regionOrder, region), 0, region);
  }

  private flatten(): void {
    const s = this.store;
    const flat = new Uint8Array(Math.ceil(this.blockCount / 8));
    for (const [a, b] of s.runs.runs()) setBits(flat, a, b);
    for (const [region, leaf] of s.regions) {
      const firstByte = (region * this.regionBlocks) / 8;
      flat.set(leaf.subarray(0, Math.min(leaf.length, flat.length - firstByte)), firstByte);
    }
    this.store = { ...this.emptyStore(), flat, markedBlocks: s.markedBlocks };
  }

  /** Marked block runs in order, not yet coalesced across region borders. */
  private *blockRuns(): Generator<[number, number]> {
    const s = this.store;
    if (s.flat) {
      yield* bitRuns(s.flat, this.blockCount, 0);
      return;
    }
    const list = s.runs.runs();
    let next = list.next();
    for (const region of s.regionOrder) {
      const lo = region * this.regionBlocks;
      while (!next.done && next.value[0] < lo) {
        yield next.value;
        next = list.next();
      }
      yield* bitRuns(s.regions.get(region)!, Math.min(this.regionBlocks, this.blockCount - lo), lo);
    }
    while (!next.done) {
      yield next.value;
      next = list.next();
    }
  }

  private toExtent([start, end]: [number, number]): Extent {
    const startBytes = start * this.blockSizeBytes;
    return { startBytes, lengthBytes: Math.min(end * this.blockSizeBytes, this.sizeBytes) - startBytes };
  }
}

/** Index of the first element ≥ x in an ascending array. */
function lowerBound(sorted: readonly number[], x: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
