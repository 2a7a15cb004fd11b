import { describe, expect, it } from 'vitest';
import { ExtentKind } from '../repo/format.js';
import { chooseMode, checkSourceSize, subtractRuns, trackedReadExtents, type ParentSnapshot } from './backup.js';

function parent(incrementalsSinceFull: number, sourceBytes = 1000, blockSizeBytes = 4096, trackerEpoch?: string | null): ParentSnapshot {
  return { id: 'a'.repeat(64), manifest: { incrementalsSinceFull, blockSizeBytes, summary: { sourceBytes }, trackerEpoch } } as unknown as ParentSnapshot;
}

const take = (previousEpochKey: string, gapReason: string | null = null) => ({ previousEpochKey, gapReason });

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

describe('backup mode policy with a live tracker', () => {
  it('a take recorded under the parent\'s epoch key, with no gap, makes a tracked incremental', () => {
    expect(chooseMode(parent(0, 1000, 4096, 'k1'), false, 63, 4096, take('k1'))).toEqual({
      mode: 'incremental',
      reason: null,
      incrementalsSinceFull: 1,
      trackedRead: true,
      checkTracker: false,
    });
  });

  it('a different key, a gap or a parent taken without a tracker makes a resync that says why', () => {
    const restarted = chooseMode(parent(0, 1000, 4096, 'k1'), false, 63, 4096, take('k2'));
    expect(restarted).toMatchObject({ mode: 'resync', trackedRead: false, incrementalsSinceFull: 1 });
    expect(restarted.reason).toMatch(/restarted/);
    const gap = chooseMode(parent(0, 1000, 4096, 'k1'), false, 63, 4096, take('k1', 'the bpftrace probe exited (signal SIGKILL)'));
    expect(gap).toMatchObject({ mode: 'resync', trackedRead: false });
    expect(gap.reason).toMatch(/SIGKILL/);
    expect(chooseMode(parent(0, 1000, 4096), false, 63, 4096, take('k1')).reason).toMatch(/not taken under the live tracker/);
    expect(chooseMode(parent(0, 1000, 4096, null), false, 63, 4096, take('k1')).mode).toBe('resync');
  });

  it('the forced full stays one policy and checks the tracker only when it could vouch', () => {
    expect(chooseMode(parent(3, 1000, 4096, 'k1'), false, 3, 4096, take('k1'))).toMatchObject({ mode: 'full', trackedRead: false, checkTracker: true });
    expect(chooseMode(parent(3, 1000, 4096, 'k1'), false, 3, 4096, take('k2'))).toMatchObject({ mode: 'full', checkTracker: false });
    expect(chooseMode(parent(1, 1000, 4096, 'k1'), true, 63, 4096, take('k1'))).toMatchObject({ mode: 'full', checkTracker: true });
    expect(chooseMode(parent(1, 1000, 8192, 'k1'), false, 63, 4096, take('k1'))).toMatchObject({ mode: 'full', checkTracker: false });
    expect(chooseMode(null, false, 63, 4096, take('k1'))).toMatchObject({ mode: 'full', checkTracker: false });
  });
});

describe('trackedReadExtents', () => {
  const K = 4096;
  const data = (startBytes: number, lengthBytes: number) => ({ startBytes, lengthBytes, kind: ExtentKind.data, chunkId: 'c'.repeat(64), offsetInChunkBytes: 0 });
  const zero = (startBytes: number, lengthBytes: number) => ({ startBytes, lengthBytes, kind: ExtentKind.zero });
  const unmapped = (startBytes: number, lengthBytes: number) => ({ startBytes, lengthBytes, kind: ExtentKind.unmapped });

  it('reads the changed blocks and every block the parent holds nothing for, never the rest', () => {
    const parentMap = [data(0, 8 * K), unmapped(8 * K, 4 * K), zero(12 * K, 4 * K)];
    const present = [{ startBytes: 0, lengthBytes: 20 * K }];
    expect(trackedReadExtents(present, [{ startBytes: 4 * K, lengthBytes: 4 * K }], parentMap, 16 * K, K, 20 * K)).toEqual([
      { startBytes: 4 * K, lengthBytes: 8 * K }, // changed, then unmapped in the parent
      { startBytes: 16 * K, lengthBytes: 4 * K }, // beyond the parent's end (the device grew)
    ]);
  });

  it('reads only what is present now, and the parent\'s partial last block', () => {
    const parentMap = [data(0, 8 * K + 512)];
    expect(trackedReadExtents([{ startBytes: 4 * K, lengthBytes: 8 * K }], [], parentMap, 8 * K + 512, K, 12 * K)).toEqual([{ startBytes: 8 * K, lengthBytes: 4 * K }]);
  });
});

describe('subtractRuns', () => {
  it('returns the parts of the first list the second does not cover', () => {
    expect(subtractRuns([[0, 100]], [[10, 10], [50, 60]])).toEqual([[0, 10], [20, 30]]);
    expect(subtractRuns([[0, 10], [20, 10]], [])).toEqual([[0, 10], [20, 10]]);
    expect(subtractRuns([[0, 10]], [[0, 10]])).toEqual([]);
  });
});
