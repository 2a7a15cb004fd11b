// A sorted set of disjoint, non-touching block runs [start, end), kept in small typed-array chunks so
// an insert costs a binary search plus a bounded shift, and memory stays a few bytes per run.

/** Runs are stored as (start, end) pairs; 32-bit when every block number fits, 64-bit floats otherwise. */
export type RunArray = Uint32Array | Float64Array;

/**
 * Bytes V8 (Node 20, x64, no pointer compression) holds for a typed array beyond its elements: the
 * JSTypedArray, its JSArrayBuffer and the backing-store record. Measured with process.memoryUsage()
 * over 100 000 small arrays: about 210 bytes each.
 */
export const TYPED_ARRAY_OVERHEAD_BYTES = 216;
/** A slot in a plain JS array; a Map entry costs MAP_ENTRY_BYTES. */
export const SLOT_BYTES = 8;
export const MAP_ENTRY_BYTES = 40;
/** A JS object with a handful of fields, plus its arrays' headers. */
export const OBJECT_OVERHEAD_BYTES = 128;

const MIN_CHUNK_RUNS = 4;

export class ChunkedRunList {
  private readonly chunks: RunArray[] = [];
  private readonly counts: number[] = [];
  private runTotal = 0;
  private capacityTotal = 0;
  constructor(
    private readonly wide: boolean,
    private readonly chunkRuns = 256,
  ) {}

  get runCount(): number {
    return this.runTotal;
  }

  /** Runs the chunks have room for; compact() brings it back near runCount. */
  get capacityRuns(): number {
    return this.capacityTotal;
  }

  get bytesPerRun(): number {
    return this.wide ? 16 : 8;
  }

  memoryBytes(): number {
    return (
      OBJECT_OVERHEAD_BYTES +
      2 * SLOT_BYTES * this.chunks.length +
      this.chunks.length * TYPED_ARRAY_OVERHEAD_BYTES +
      this.capacityTotal * this.bytesPerRun
    );
  }

  /** Adds [start, end) and returns how many blocks were not covered before. */
  insert(start: number, end: number): number {
    if (start >= end) return 0;
    const [ci, ri] = this.firstEndAtLeast(start);
    if (ci === this.chunks.length) {
      if (ci === 0) this.addChunk(0);
      const last = this.chunks.length - 1;
      this.insertAt(last, this.counts[last]!, start, end);
      return end - start;
    }
    const d = this.chunks[ci]!;
    const runStart = d[2 * ri]!;
    if (runStart > end) {
      this.insertAt(ci, ri, start, end);
      return end - start;
    }
    // [start, end) overlaps or touches run ri: widen it and absorb every later run it reaches.
    let covered = d[2 * ri + 1]! - runStart;
    const newStart = Math.min(start, runStart);
    let newEnd = Math.max(end, d[2 * ri + 1]!);
    let absorbed = 0;
    let cj = ci;
    let rj = ri + 1;
    while (cj < this.chunks.length) {
      if (rj >= this.counts[cj]!) {
        cj++;
        rj = 0;
        continue;
      }
      const dj = this.chunks[cj]!;
      if (dj[2 * rj]! > newEnd) break;
      covered += dj[2 * rj + 1]! - dj[2 * rj]!;
      newEnd = Math.max(newEnd, dj[2 * rj + 1]!);
      absorbed++;
      rj++;
    }
    this.deleteRuns(ci, ri + 1, absorbed);
    d[2 * ri] = newStart;
    d[2 * ri + 1] = newEnd;
    return newEnd - newStart - covered;
  }

  has(block: number): boolean {
    const [ci, ri] = this.firstEndAtLeast(block + 1);
    if (ci === this.chunks.length) return false;
    return this.chunks[ci]![2 * ri]! <= block;
  }

  /** Removes coverage of [lo, hi) and returns the removed parts, clipped to [lo, hi). */
  cut(lo: number, hi: number): Array<[number, number]> {
    const [ci, ri] = this.firstEndAtLeast(lo + 1);
    const hit: Array<[number, number]> = [];
    let cj = ci;
    let rj = ri;
    while (cj < this.chunks.length) {
      if (rj >= this.counts[cj]!) {
        cj++;
        rj = 0;
        continue;
      }
      const d = this.chunks[cj]!;
      if (d[2 * rj]! >= hi) break;
      hit.push([d[2 * rj]!, d[2 * rj + 1]!]);
      rj++;
    }
    if (hit.length === 0) return [];
    this.deleteRuns(ci, ri, hit.length);
    const first = hit[0]!;
    const last = hit[hit.length - 1]!;
    if (first[0] < lo) this.insert(first[0], lo);
    if (last[1] > hi) this.insert(hi, last[1]);
    return hit.map(([s, e]) => [Math.max(s, lo), Math.min(e, hi)]);
  }

  /** Regions (spans of regionBlocks) in which at least atLeast runs start, ascending. */
  crowdedRegions(regionBlocks: number, atLeast: number): number[] {
    const crowded: number[] = [];
    let region = -1;
    let count = 0;
    for (let ci = 0; ci < this.chunks.length; ci++) {
      const d = this.chunks[ci]!;
      const n = this.counts[ci]!;
      for (let ri = 0; ri < n; ri++) {
        const r = Math.floor(d[2 * ri]! / regionBlocks);
        if (r !== region) {
          if (count >= atLeast) crowded.push(region);
          region = r;
          count = 0;
        }
        count++;
      }
    }
    if (count >= atLeast) crowded.push(region);
    return crowded;
  }

  /** Repacks every run into chunks 7/8 full, giving back what cut() and deletions left empty. */
  compact(): void {
    const fill = Math.max(1, Math.floor((this.chunkRuns * 7) / 8));
    const all = this.allocate(this.runTotal);
    let n = 0;
    for (let ci = 0; ci < this.chunks.length; ci++) {
      all.set(this.chunks[ci]!.subarray(0, 2 * this.counts[ci]!), 2 * n);
      n += this.counts[ci]!;
    }
    this.chunks.length = 0;
    this.counts.length = 0;
    this.capacityTotal = 0;
    for (let i = 0; i < n; i += fill) {
      const take = Math.min(fill, n - i);
      const chunk = this.allocate(take === fill ? this.chunkRuns : Math.max(MIN_CHUNK_RUNS, take));
      chunk.set(all.subarray(2 * i, 2 * (i + take)));
      this.chunks.push(chunk);
      this.counts.push(take);
      this.capacityTotal += chunk.length / 2;
    }
  }

  *runs(): Generator<[number, number]> {
    for (let ci = 0; ci < this.chunks.length; ci++) {
      const d = this.chunks[ci]!;
      const n = this.counts[ci]!;
      for (let ri = 0; ri < n; ri++) yield [d[2 * ri]!, d[2 * ri + 1]!];
    }
  }

  /** Position of the first run whose end is ≥ x; (chunks.length, 0) when there is none. */
  private firstEndAtLeast(x: number): [number, number] {
    let lo = 0;
    let hi = this.chunks.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const d = this.chunks[mid]!;
      if (d[2 * this.counts[mid]! - 1]! >= x) hi = mid;
      else lo = mid + 1;
    }
    if (lo === this.chunks.length) return [lo, 0];
    const d = this.chunks[lo]!;
    let a = 0;
    let b = this.counts[lo]! - 1;
    while (a < b) {
      const mid = (a + b) >>> 1;
      if (d[2 * mid + 1]! >= x) b = mid;
      else a = mid + 1;
    }
    return [lo, a];
  }

  private allocate(runs: number): RunArray {
    return this.wide ? new Float64Array(2 * runs) : new Uint32Array(2 * runs);
  }

  private addChunk(at: number): void {
    this.chunks.splice(at, 0, this.allocate(MIN_CHUNK_RUNS));
    this.counts.splice(at, 0, 0);
    this.capacityTotal += MIN_CHUNK_RUNS;
  }

  private insertAt(ci: number, ri: number, start: number, end: number): void {
    let d = this.chunks[ci]!;
    const capacity = d.length / 2;
    if (this.counts[ci]! === capacity) {
      if (capacity < this.chunkRuns) {
        const grown = this.allocate(Math.min(this.chunkRuns, capacity * 2));
        grown.set(d);
        this.chunks[ci] = grown;
        this.capacityTotal += grown.length / 2 - capacity;
        d = grown;
      } else if (this.spill(ci, ri, start, end)) {
        return;
      } else {
        // Split in halves: the upper half moves to a new chunk sized for it, which grows on demand.
        const half = capacity >>> 1;
        const upper = this.allocate(capacity - half + 1);
        upper.set(d.subarray(2 * half, 2 * capacity));
        this.chunks.splice(ci + 1, 0, upper);
        this.counts.splice(ci + 1, 0, capacity - half);
        this.counts[ci] = half;
        this.capacityTotal += upper.length / 2;
        if (ri > half) {
          this.insertAt(ci + 1, ri - half, start, end);
          return;
        }
      }
    }
    const n = this.counts[ci]!;
    d.copyWithin(2 * ri + 2, 2 * ri, 2 * n);
    d[2 * ri] = start;
    d[2 * ri + 1] = end;
    this.counts[ci] = n + 1;
    this.runTotal++;
  }

  /**
   * Before splitting a full chunk, moves one run into a neighbour with room, as a B*-tree does: it
   * keeps chunks about 85 % full instead of the 70 % that splitting alone leaves.
   */
  private spill(ci: number, ri: number, start: number, end: number): boolean {
    const d = this.chunks[ci]!;
    const n = this.counts[ci]!;
    const next = this.chunks[ci + 1];
    if (next && this.counts[ci + 1]! < next.length / 2) {
      const m = this.counts[ci + 1]!;
      next.copyWithin(2, 0, 2 * m);
      if (ri === n) {
        next[0] = start;
        next[1] = end;
      } else {
        next[0] = d[2 * n - 2]!;
        next[1] = d[2 * n - 1]!;
        d.copyWithin(2 * ri + 2, 2 * ri, 2 * n - 2);
        d[2 * ri] = start;
        d[2 * ri + 1] = end;
      }
      this.counts[ci + 1] = m + 1;
      this.runTotal++;
      return true;
    }
    const prev = this.chunks[ci - 1];
    if (prev && this.counts[ci - 1]! < prev.length / 2) {
      const m = this.counts[ci - 1]!;
      if (ri === 0) {
        prev[2 * m] = start;
        prev[2 * m + 1] = end;
      } else {
        prev[2 * m] = d[0]!;
        prev[2 * m + 1] = d[1]!;
        d.copyWithin(0, 2, 2 * ri);
        d[2 * ri - 2] = start;
        d[2 * ri - 1] = end;
      }
      this.counts[ci - 1] = m + 1;
      this.runTotal++;
      return true;
    }
    return false;
  }

  /** Deletes n consecutive runs starting at (ci, ri), dropping chunks that become empty. */
  private deleteRuns(ci: number, ri: number, n: number): void {
    this.runTotal -= n;
    while (n > 0 && ci < this.chunks.length) {
      const count = this.counts[ci]!;
      const take = Math.min(n, count - ri);
      if (take > 0) {
        const d = this.chunks[ci]!;
        d.copyWithin(2 * ri, 2 * (ri + take), 2 * count);
        this.counts[ci] = count - take;
        n -= take;
      }
      if (this.counts[ci] === 0) {
        this.capacityTotal -= this.chunks[ci]!.length / 2;
        this.chunks.splice(ci, 1);
        this.counts.splice(ci, 1);
      } else {
        ci++;
      }
      ri = 0;
    }
  }
}
