import { describe, expect, it } from 'vitest';
import type { SnapshotSummary } from '../api/snapshot.js';
import { snapshotsToForget } from './retention.js';

let n = 0;
function snap(source: string, tags: string[], minute: number): SnapshotSummary {
  n++;
  const hex = (v: number) => v.toString(16).padStart(64, '0');
  return {
    id: hex(n),
    sourceId: source.repeat(64).slice(0, 64),
    sourceName: `/img/${source}`,
    parentId: null,
    mode: 'incremental',
    modeReason: null,
    tracker: 'none',
    createdAt: new Date(Date.UTC(2026, 0, 1, 0, minute)).toISOString(),
    hostname: 'h',
    tags,
    sourceBytes: 1,
    validBytes: 1,
    bytesRead: 1,
    bytesNew: 1,
    bytesStored: 1,
    durationMs: 1,
  };
}

describe('snapshotsToForget', () => {
  it('forgets nothing while a chain is within its limit', () => {
    const chain = [snap('a', ['scheduled'], 1), snap('a', ['scheduled'], 2)];
    expect(snapshotsToForget(chain, 2)).toEqual([]);
  });

  it('forgets the oldest automatic snapshots first and keeps manual ones', () => {
    const manual = snap('a', [], 1);
    const old = snap('a', ['scheduled'], 2);
    const mid = snap('a', ['scheduled', 'x'], 3);
    const recent = snap('a', ['scheduled'], 4);
    const newest = snap('a', [], 5);
    expect(snapshotsToForget([newest, recent, mid, old, manual], 3)).toEqual([old.id, mid.id]);
  });

  it('keeps a chain of manual snapshots over its limit, and never the newest snapshot', () => {
    const chain = [snap('a', [], 1), snap('a', [], 2), snap('a', [], 3)];
    expect(snapshotsToForget(chain, 2)).toEqual([]);
    const automatic = [snap('b', ['scheduled'], 1), snap('b', ['scheduled'], 2)];
    expect(snapshotsToForget(automatic, 2)).toEqual([]);
    expect(snapshotsToForget(automatic, 1)).toEqual([automatic[0]!.id]);
  });

  it('counts each source on its own', () => {
    const a = [snap('a', ['scheduled'], 1), snap('a', ['scheduled'], 2), snap('a', ['scheduled'], 3)];
    const b = [snap('b', ['scheduled'], 1), snap('b', ['scheduled'], 2)];
    expect(snapshotsToForget([...a, ...b], 2)).toEqual([a[0]!.id]);
  });
});
