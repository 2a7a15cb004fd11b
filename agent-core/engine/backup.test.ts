import { describe, expect, it } from 'vitest';
import { chooseMode, checkSourceSize, subtractRuns, type ParentSnapshot } from './backup.js';

function parent(incrementalsSinceFull: number, sourceBytes = 1000, blockSizeBytes = 4096): ParentSnapshot {
  return { id: 'a'.repeat(64), manifest: { incrementalsSinceFull, blockSizeBytes, summary: { sourceBytes } } } as unknown as ParentSnapshot;
}

describe('backup mode policy', () => {
  it('the first backup of a source is full', () => {
    expect(chooseMode(null, false, 63, 4096)).toMatchObject({ mode: 'full', incrementalsSinceFull: 0 });
  });

  it('counts incrementals and forces a full read after fullEvery of them', () => {
    expect(chooseMode(parent(0), false, 3, 4096)).toMatchObject({ mode: 'incremental', incrementalsSinceFull: 1 });
    expect(chooseMode(parent(2), false, 3, 4096)).toMatchObject({ mode: 'incremental', incrementalsSinceFull: 3 });
    const forced = chooseMode(parent(3), false, 3, 4096);
    expect(forced.mode).toBe('full');
    expect(forced.reason).toMatch(/after 3 incrementals/);
  });

  it('a requested full or a changed block size makes a full', () => {
    expect(chooseMode(parent(1), true, 63, 4096).mode).toBe('full');
    expect(chooseMode(parent(1, 1000, 8192), false, 63, 4096).mode).toBe('full');
  });

  it('refuses a source that shrank, unless full', () => {
    expect(() => checkSourceSize('/img', 999, parent(0, 1000), false)).toThrow(/--full/);
    expect(() => checkSourceSize('/img', 999, parent(0, 1000), true)).not.toThrow();
    expect(() => checkSourceSize('/img', 1001, parent(0, 1000), false)).not.toThrow();
  });
});

describe('subtractRuns', () => {
  it('returns the parts of the first list the second does not cover', () => {
    expect(subtractRuns([[0, 100]], [[10, 10], [50, 60]])).toEqual([[0, 10], [20, 30]]);
    expect(subtractRuns([[0, 10], [20, 10]], [])).toEqual([[0, 10], [20, 10]]);
    expect(subtractRuns([[0, 10]], [[0, 10]])).toEqual([]);
  });
});
