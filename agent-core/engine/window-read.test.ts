import { describe, expect, it } from 'vitest';
import { STORED_DIGEST_BYTES } from '../repo/format.js';
import { matchesStoredDigest, mergeRuns, RunCursor } from './window-read.js';

describe('RunCursor', () => {
  it('gives each window the window-relative parts of the extents inside it, moving forward', () => {
    const cursor = new RunCursor([
      { startBytes: 10, lengthBytes: 20 },
      { startBytes: 90, lengthBytes: 30 },
      { startBytes: 300, lengthBytes: 10 },
    ]);
    expect(cursor.within(0, 100)).toEqual([[10, 20], [90, 10]]);
    expect(cursor.within(100, 200)).toEqual([[0, 20]]);
    expect(cursor.within(200, 300)).toEqual([]);
    expect(cursor.within(300, 400)).toEqual([[0, 10]]);
    expect(cursor.within(400, 500)).toEqual([]);
  });
});

describe('mergeRuns', () => {
  it('joins runs whose gap is at most the limit', () => {
    expect(mergeRuns([[0, 10], [15, 5], [40, 10]], 5)).toEqual([[0, 20], [40, 10]]);
  });
});

describe('matchesStoredDigest', () => {
  it('compares the stored prefix of a 32-byte digest, block by block', () => {
    const digests32 = Buffer.alloc(64);
    digests32.fill(7, 32, 64);
    const stored = Buffer.alloc(2 * STORED_DIGEST_BYTES);
    stored.fill(7, 0, STORED_DIGEST_BYTES);
    expect(matchesStoredDigest(digests32, 1, stored, 0)).toBe(true);
    expect(matchesStoredDigest(digests32, 0, stored, 0)).toBe(false);
    expect(matchesStoredDigest(digests32, 0, stored, 1)).toBe(true);
    digests32[32 + STORED_DIGEST_BYTES] = 1; // beyond the stored prefix: not compared
    expect(matchesStoredDigest(digests32, 1, stored, 0)).toBe(true);
  });
});
