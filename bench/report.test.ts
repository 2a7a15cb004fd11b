// The bench's ratios from rows, and the two wall-time targets from the median of alternated pairs.
import { describe, expect, it } from 'vitest';
import { computeRatios, type Pair } from './report.mjs';

const FULL_WALL = 'full: Strata / partclone|zstd, wall time';
const INCREMENTAL_WALL = 'incremental: Strata / restic, wall time';
const rows = [
  { tool: 'strata', phase: 'full', wallMs: 3000, storedBytes: 104 },
  { tool: 'partclone', phase: 'full', wallMs: 4000, storedBytes: 100 },
  { tool: 'strata', phase: 'incremental', wallMs: 2000 },
  { tool: 'restic', phase: 'incremental', wallMs: 4000 },
];
const ratio = (label: string, pairs?: { full?: Pair[]; incremental?: Pair[] }) => computeRatios(rows, {}, pairs).find((r) => r.label.startsWith(label))!;

describe('bench ratios', () => {
  it('takes a wall-time ratio from the rows when there is one pair', () => {
    expect(ratio(FULL_WALL)).toMatchObject({ label: FULL_WALL, ratio: 0.75, met: false });
    expect(ratio(FULL_WALL, { full: [{ numMs: 3000, denMs: 4000 }] })).toMatchObject({ label: FULL_WALL, ratio: 0.75 });
    expect(ratio(INCREMENTAL_WALL, { full: [{ numMs: 1, denMs: 4 }, { numMs: 1, denMs: 4 }] })).toMatchObject({ label: INCREMENTAL_WALL, ratio: 0.5, met: true });
  });

  it("takes the median of the pairs' ratios, odd and even counts, and says so", () => {
    const odd = ratio(FULL_WALL, {
      full: [
        { numMs: 3000, denMs: 4000 }, // 0.75
        { numMs: 2500, denMs: 5000 }, // 0.5
        { numMs: 2800, denMs: 7000 }, // 0.4
      ],
    });
    expect(odd.label).toBe(`${FULL_WALL} (median of 3 alternated pairs)`);
    expect(odd.ratio).toBeCloseTo(0.5);
    expect(odd.met).toBe(true);
    const even = ratio(INCREMENTAL_WALL, {
      incremental: [
        { numMs: 3000, denMs: 4000 }, // 0.75
        { numMs: 2500, denMs: 5000 }, // 0.5
      ],
    });
    expect(even.label).toBe(`${INCREMENTAL_WALL} (median of 2 alternated pairs)`);
    expect(even.ratio).toBeCloseTo(0.625);
    expect(even.met).toBe(false);
  });

  it('leaves the other ratios to the rows', () => {
    const pair = { numMs: 1, denMs: 4 };
    const stored = computeRatios(rows, {}, { full: [pair, pair], incremental: [pair, pair] }).find((r) => r.label === 'full: Strata / partclone|zstd, stored bytes')!;
    expect(stored.ratio).toBeCloseTo(1.04);
  });
});
