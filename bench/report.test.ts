// The bench's ratios from rows: the full wall-time target from the median of alternated pairs.
import { describe, expect, it } from 'vitest';
import { computeRatios } from './report.mjs';

const FULL_WALL = 'full: Strata / partclone|zstd, wall time';
const rows = [
  { tool: 'strata', phase: 'full', wallMs: 3000, storedBytes: 104 },
  { tool: 'partclone', phase: 'full', wallMs: 4000, storedBytes: 100 },
];
const fullWall = (pairs?: { strataMs: number; partcloneMs: number }[]) => computeRatios(rows, {}, pairs).find((r) => r.label.startsWith(FULL_WALL))!;

describe('bench ratios', () => {
  it('takes the full wall-time ratio from the rows when there is one pair', () => {
    expect(fullWall()).toMatchObject({ label: FULL_WALL, ratio: 0.75, met: false });
    expect(fullWall([{ strataMs: 3000, partcloneMs: 4000 }])).toMatchObject({ label: FULL_WALL, ratio: 0.75 });
  });

  it("takes the median of the pairs' ratios, odd and even counts, and says so", () => {
    const odd = fullWall([
      { strataMs: 3000, partcloneMs: 4000 }, // 0.75
      { strataMs: 2500, partcloneMs: 5000 }, // 0.5
      { strataMs: 2800, partcloneMs: 7000 }, // 0.4
    ]);
    expect(odd.label).toBe(`${FULL_WALL} (median of 3 alternated pairs)`);
    expect(odd.ratio).toBeCloseTo(0.5);
    expect(odd.met).toBe(true);
    const even = fullWall([
      { strataMs: 3000, partcloneMs: 4000 }, // 0.75
      { strataMs: 2500, partcloneMs: 5000 }, // 0.5
    ]);
    expect(even.ratio).toBeCloseTo(0.625);
    expect(even.met).toBe(false);
  });

  it('leaves the other ratios to the rows', () => {
    const stored = computeRatios(rows, {}, [
      { strataMs: 1, partcloneMs: 4 },
      { strataMs: 1, partcloneMs: 4 },
    ]).find((r) => r.label === 'full: Strata / partclone|zstd, stored bytes')!;
    expect(stored.ratio).toBeCloseTo(1.04);
  });
});
