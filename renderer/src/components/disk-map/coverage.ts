// How many bytes of a sorted extent list fall inside any byte range, in O(log n): the list is turned
// once into typed arrays of starts and of the bytes covered before each extent (a prefix sum).
import type { Extent } from '../../../../agent-core/api/extents.js';

/** A sorted, non-overlapping extent list prepared for range queries. Build once per map. */
export interface ExtentIndex {
  readonly count: number;
  readonly starts: Float64Array;
  /** before[i]: bytes covered by extents 0..i-1; before[count] is the total, so extent i ends at starts[i] + before[i + 1] - before[i]. */
  readonly before: Float64Array;
  readonly totalBytes: number;
}

/** O(n), two typed arrays; byte offsets stay exact in doubles up to 8 PiB. */
export function buildExtentIndex(extents: readonly Extent[]): ExtentIndex {
  const count = extents.length;
  const starts = new Float64Array(count);
  const before = new Float64Array(count + 1);
  let total = 0;
  for (let i = 0; i < count; i++) {
    const extent = extents[i]!;
    starts[i] = extent[0];
    before[i] = total;
    total += extent[1];
  }
  before[count] = total;
  return { count, starts, before, totalBytes: total };
}

/** Bytes of [0, offset) covered, given k = the last extent starting at or before offset (or -1). */
function coveredUpTo(index: ExtentIndex, k: number, offset: number): number {
  if (k < 0) return 0;
  const start = index.starts[k]!;
  const done = index.before[k]!;
  return done + Math.min(offset - start, index.before[k + 1]! - done);
}

export const EMPTY_INDEX: ExtentIndex = buildExtentIndex([]);

/**
 * fillCellCoverage's fractions straight from a sorted extent list, with no index: for a map's first
 * picture, painted before its index is built. One pass over the list that writes nothing the size of
 * the list: per cell, only the running total and the end of the last extent starting in it (the
 * bytes below a cell boundary are that total less the part of that extent past the boundary).
 * O(extents + cells). Gives the same Float32 values as fillCellCoverage over buildExtentIndex(list);
 * false, and nothing written, when it cannot (an extent starting at or past limitBytes).
 */
export function fillCellCoverageFromList(
  extents: readonly Extent[],
  firstByte: number,
  bytesPerCell: number,
  cells: number,
  limitBytes: number,
  out: Float32Array,
): boolean {
  const count = extents.length;
  if (count > 0 && extents[count - 1]![0] >= limitBytes) return false;
  // Slot c + 1 holds cell c's last extent; slot 0 the last one before the window, slot cells + 1
  // any past it. NaN: no extent starts there.
  const lastSlot = cells + 1;
  const totalAfter = new Float64Array(cells + 2).fill(NaN);
  const endOf = new Float64Array(cells + 2);
  // A multiplication rather than a division per extent. Where 1 / bytesPerCell is inexact, an extent
  // starting exactly on a cell edge may land in the slot below; it adds nothing below that edge
  // (its total less its whole length), so the result is the same.
  const perByte = 1 / bytesPerCell;
  let total = 0;
  // A loop with no rare branches, so that V8 optimises it early and never has to back out.
  for (let i = 0; i < count; i++) {
    const extent = extents[i]!;
    const start = extent[0];
    const length = extent[1];
    total += length;
    const cellSlot = Math.floor((start - firstByte) * perByte) + 1;
    const slot = (cellSlot < 0 ? 0 : cellSlot > lastSlot ? lastSlot : cellSlot) | 0;
    totalAfter[slot] = total;
    endOf[slot] = start + length;
  }
  // Bytes below each clipped cell edge, from the last extent starting below it; cell by cell.
  let lastTotal = 0;
  let lastEnd = 0;
  const below = (slot: number, edge: number) => {
    const t = totalAfter[slot]!;
    if (t === t) {
      lastTotal = t;
      lastEnd = endOf[slot]!;
    }
    return lastTotal - Math.max(0, lastEnd - edge);
  };
  let lowEdge = Math.min(firstByte, limitBytes);
  let coveredLow = below(0, lowEdge);
  for (let c = 0; c < cells; c++) {
    const highEdge = Math.min(firstByte + (c + 1) * bytesPerCell, limitBytes);
    const coveredHigh = below(c + 1, highEdge);
    if (highEdge <= lowEdge) {
      out[c] = 0;
      continue;
    }
    out[c] = (coveredHigh - coveredLow) / (highEdge - lowEdge);
    coveredLow = coveredHigh;
    lowEdge = highEdge;
  }
  return true;
}

/** An extent list or an index built from one earlier (a store may build it once per map). */
export type ExtentSource = readonly Extent[] | ExtentIndex;

export function isExtentIndex(source: ExtentSource): source is ExtentIndex {
  return !Array.isArray(source);
}

export function toExtentIndex(source: ExtentSource): ExtentIndex {
  return isExtentIndex(source) ? source : buildExtentIndex(source);
}

/** Index of the last extent starting at or before `offset`, searching from `from`; -1 when none. */
export function lastStartingAtOrBefore(index: ExtentIndex, offset: number, from = 0): number {
  const { starts, count } = index;
  let lo = from;
  let hi = count - 1;
  if (lo > hi || starts[lo]! > offset) return lo - 1;
  // Invariant: starts[lo] <= offset; the answer is in [lo, hi].
  while (lo < hi) {
    const mid = (lo + hi + 1) >>> 1;
    if (starts[mid]! <= offset) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** Bytes covered below `offset`, i.e. inside [0, offset). */
export function coveredBelow(index: ExtentIndex, offset: number): number {
  return coveredUpTo(index, lastStartingAtOrBefore(index, offset), offset);
}

/** Bytes covered inside [startBytes, endBytes). */
export function coveredBytes(index: ExtentIndex, startBytes: number, endBytes: number): number {
  if (endBytes <= startBytes) return 0;
  return coveredBelow(index, endBytes) - coveredBelow(index, startBytes);
}

/** Does any extent touch [startBytes, endBytes)? */
export function intersects(index: ExtentIndex, startBytes: number, endBytes: number): boolean {
  return coveredBytes(index, startBytes, endBytes) > 0;
}

/**
 * Like lastStartingAtOrBefore, for an offset at or after starts[from]: gallops forward from `from`
 * first, so a step to the next cell boundary costs O(log distance) rather than O(log n).
 */
export function gallopTo(index: ExtentIndex, offset: number, from: number): number {
  const { starts, count } = index;
  if (from < 0) return lastStartingAtOrBefore(index, offset);
  let lo = from;
  let step = 1;
  while (lo + step < count && starts[lo + step]! <= offset) {
    lo += step;
    step *= 2;
  }
  // starts[lo] <= offset; the answer is in [lo, min(lo + step, count) - 1].
  let hi = Math.min(lo + step, count) - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >>> 1;
    if (starts[mid]! <= offset) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/**
 * Fraction covered of each of `cells` consecutive cells of `bytesPerCell` starting at `firstByte`,
 * cells clipped at `limitBytes` (a cell wholly past it gets 0). One search per cell boundary, each
 * galloping on from the previous one, so a frame costs O(cells · log extents) at worst and about
 * O(cells) when cells are small.
 */
export function fillCellCoverage(
  index: ExtentIndex,
  firstByte: number,
  bytesPerCell: number,
  cells: number,
  limitBytes: number,
  out: Float32Array,
): void {
  // gallopTo and coveredUpTo written out in one flat loop: on a page's first paint this runs before
  // V8 has optimised anything, and thousands of small calls cost far more there than the searches.
  const { starts, before, count } = index;
  let k = lastStartingAtOrBefore(index, firstByte);
  let lowEdge = Math.min(firstByte, limitBytes);
  let coveredLow = k < 0 ? 0 : before[k]! + Math.min(lowEdge - starts[k]!, before[k + 1]! - before[k]!);
  for (let c = 0; c < cells; c++) {
    const highEdge = Math.min(firstByte + (c + 1) * bytesPerCell, limitBytes);
    if (highEdge <= lowEdge) {
      out[c] = 0;
      continue;
    }
    // k := the last extent starting at or before highEdge (-1: none), galloping on from k.
    let lo = k < 0 ? 0 : k;
    if (lo < count && starts[lo]! <= highEdge) {
      let step = 1;
      while (lo + step < count && starts[lo + step]! <= highEdge) {
        lo += step;
        step *= 2;
      }
      let hi = Math.min(lo + step, count) - 1;
      while (lo < hi) {
        const mid = (lo + hi + 1) >>> 1;
        if (starts[mid]! <= highEdge) lo = mid;
        else hi = mid - 1;
      }
      k = lo;
    } else k = -1;
    const coveredHigh = k < 0 ? 0 : before[k]! + Math.min(highEdge - starts[k]!, before[k + 1]! - before[k]!);
    out[c] = (coveredHigh - coveredLow) / (highEdge - lowEdge);
    coveredLow = coveredHigh;
    lowEdge = highEdge;
  }
}
