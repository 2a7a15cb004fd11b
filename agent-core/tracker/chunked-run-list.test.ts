import { describe, expect, it } from 'vitest';
import { ChunkedRunList } from './chunked-run-list.js';

function rng(seed: number): (n: number) => number {
  let state = seed >>> 0;
  return (n) => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return Math.floor((state / 4294967296) * n);
  };
}

function referenceRuns(set: Set<number>, limit: number): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (let b = 0; b < limit; b++) {
    if (!set.has(b)) continue;
    const last = out[out.length - 1];
    if (last && last[1] === b) last[1] = b + 1;
    else out.push([b, b + 1]);
  }
  return out;
}

describe('ChunkedRunList', () => {
  for (const wide of [false, true]) {
    it(`matches a set of blocks through inserts, cuts, spills, splits and compaction (${wide ? '64' : '32'}-bit)`, () => {
      const list = new ChunkedRunList(wide, 4);
      const set = new Set<number>();
      const random = rng(wide ? 11 : 5);
      const limit = 3000;
      let added = 0;
      let expectedAdded = 0;
      for (let step = 0; step < 4000; step++) {
        const kind = random(10);
        if (kind < 8) {
          const start = random(limit);
          const end = Math.min(limit, start + 1 + (kind === 0 ? random(200) : random(3)));
          const before = set.size;
          for (let b = start; b < end; b++) set.add(b);
          expectedAdded += set.size - before;
          added += list.insert(start, end);
        } else if (kind === 8) {
          const lo = random(limit);
          const hi = Math.min(limit, lo + 1 + random(60));
          const removed = list.cut(lo, hi);
          for (const [a, b] of removed) {
            expect(a).toBeGreaterThanOrEqual(lo);
            expect(b).toBeLessThanOrEqual(hi);
          }
          for (let b = lo; b < hi; b++) set.delete(b);
          expectedAdded = set.size;
          added = set.size;
        } else {
          list.compact();
        }
        if (step % 200 === 0 || step === 3999) {
          expect(added).toBe(expectedAdded);
          const runs = [...list.runs()];
          expect(runs).toEqual(referenceRuns(set, limit));
          expect(list.runCount).toBe(runs.length);
          expect(list.capacityRuns).toBeGreaterThanOrEqual(list.runCount);
          for (let b = 0; b < limit; b += 7) expect(list.has(b)).toBe(set.has(b));
        }
      }
    });
  }
});
