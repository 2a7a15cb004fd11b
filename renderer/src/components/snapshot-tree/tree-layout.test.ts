import { describe, expect, it } from 'vitest';
import type { SnapshotSummary } from '../../../../agent-core/api/snapshot.js';
import { buildForest, chainStatus, flattenForest, nextSelection, typeAheadTarget } from './tree-layout.js';

function id(n: number): string {
  return n.toString(16).padStart(64, '0');
}

function snap(n: number, parent: number | null, minute: number, extra: Partial<SnapshotSummary> = {}): SnapshotSummary {
  return {
    id: id(n),
    sourceId: id(999),
    sourceName: '/dev/vdb',
    parentId: parent === null ? null : id(parent),
    mode: parent === null ? 'full' : 'incremental',
    modeReason: null,
    tracker: 'live',
    createdAt: new Date(Date.UTC(2026, 10, 1, 0, minute)).toISOString(),
    hostname: 'host',
    tags: [],
    sourceBytes: 1 << 30,
    validBytes: 1 << 29,
    bytesRead: 1 << 29,
    bytesNew: 1 << 20,
    bytesStored: 1 << 19,
    durationMs: 1000,
    ...extra,
  };
}

const order = (rows: ReturnType<typeof flattenForest>) => rows.map((r) => `${parseInt(r.node.id, 16)}@${r.level}`);

describe('snapshot tree layout', () => {
  it('keeps a chain at one level with depths counted from its root', () => {
    const forest = buildForest([snap(3, 2, 3), snap(1, null, 1), snap(2, 1, 2)]);
    const rows = flattenForest(forest);
    expect(order(rows)).toEqual(['1@1', '2@1', '3@1']);
    expect(rows.map((r) => r.node.chainDepth)).toEqual([1, 2, 3]);
    expect(rows.every((r) => r.node.chainLength === 3)).toBe(true);
    expect(rows.map((r) => r.posInSet)).toEqual([1, 2, 3]);
    expect(rows.every((r) => r.setSize === 3 && !r.expandable)).toBe(true);
  });

  it('nests the older branch under its branch point and continues the newest line', () => {
    // 1 → 2 → 3, then a restore to 2 and a backup: 2 → 4 → 5 is the live line.
    const forest = buildForest([snap(1, null, 1), snap(2, 1, 2), snap(3, 2, 3), snap(4, 2, 4), snap(5, 4, 5)]);
    const two = forest.byId.get(id(2))!;
    expect(two.main?.id).toBe(id(4));
    expect(two.branches.map((b) => b.id)).toEqual([id(3)]);
    expect(forest.byId.get(id(3))!.startsBranch).toBe(true);
    const rows = flattenForest(forest);
    expect(order(rows)).toEqual(['1@1', '2@1', '3@2', '4@1', '5@1']);
    const branchPoint = rows[1]!;
    expect(branchPoint.expandable && branchPoint.expanded).toBe(true);
    expect(rows[2]!.groupParentId).toBe(id(2));
    expect(rows[2]!.setSize).toBe(1);
    expect([rows[3]!.posInSet, rows[3]!.setSize]).toEqual([3, 4]);
    expect(forest.byId.get(id(2))!.chainLength).toBe(4);
  });

  it('hides a collapsed branch point’s nested branches', () => {
    const forest = buildForest([snap(1, null, 1), snap(2, 1, 2), snap(3, 1, 3)]);
    const rows = flattenForest(forest, new Set([id(1)]));
    expect(order(rows)).toEqual(['1@1', '3@1']);
    expect(rows[0]!.expanded).toBe(false);
  });

  it('keeps a snapshot whose parent was removed as a root and marks it', () => {
    const forest = buildForest([snap(5, 4, 5), snap(6, 5, 6), snap(1, null, 1)]);
    expect(forest.roots.map((r) => r.id)).toEqual([id(1), id(5)]);
    expect(forest.byId.get(id(5))!.parentMissing).toBe(true);
    expect(order(flattenForest(forest))).toEqual(['1@1', '5@1', '6@1']);
  });

  it('shows every snapshot of a parent cycle instead of losing it', () => {
    const forest = buildForest([snap(1, 2, 1), snap(2, 1, 2), snap(3, null, 3)]);
    const rows = flattenForest(forest);
    expect(rows.map((r) => r.node.id).sort()).toEqual([id(1), id(2), id(3)]);
  });

  it('counts manual snapshots (those the scheduler did not take) along a chain', () => {
    const forest = buildForest([snap(1, null, 1, { tags: ['before-upgrade'] }), snap(2, 1, 2, { tags: ['scheduled'] }), snap(3, 2, 3, { tags: ['x'] })]);
    expect(forest.byId.get(id(3))!.manualDepth).toBe(2);
    expect(forest.byId.get(id(2))!.manualDepth).toBe(1);
  });

  it('lays out a 1,000-long chain without deep recursion', () => {
    const list = [snap(0, null, 0)];
    for (let i = 1; i < 1000; i++) list.push(snap(i, i - 1, i));
    const rows = flattenForest(buildForest(list));
    expect(rows).toHaveLength(1000);
    expect(rows[999]!.node.chainDepth).toBe(1000);
  });

  it('rates chains against the limit', () => {
    expect(chainStatus(10, 128)).toBe('ok');
    expect(chainStatus(116, 128)).toBe('near');
    expect(chainStatus(128, 128)).toBe('full');
    expect(chainStatus(129, 128)).toBe('over');
  });

  it('selects one, or builds a pair to compare that drops the older pick', () => {
    expect(nextSelection(['a', 'b'], 'c', false)).toEqual(['c']);
    expect(nextSelection(['a'], 'b', true)).toEqual(['a', 'b']);
    expect(nextSelection(['a', 'b'], 'c', true)).toEqual(['b', 'c']);
    expect(nextSelection(['a', 'b'], 'a', true)).toEqual(['b']);
    expect(nextSelection([], 'a', true)).toEqual(['a']);
  });

  it('finds the next row whose name starts with what was typed, cycling on a repeated letter', () => {
    const names = ['Full snapshot a', 'Incremental snapshot b', 'Incremental snapshot c', 'Resync snapshot d', 'Full snapshot e'];
    const labelOf = (row: number) => names[row]!;
    const target = (from: number, typed: string) => typeAheadTarget(labelOf, names.length, from, typed);
    // A first letter looks past the focused row, and wraps.
    expect(target(0, 'i')).toBe(1);
    expect(target(1, 'i')).toBe(2);
    expect(target(2, 'i')).toBe(1);
    expect(target(0, 'f')).toBe(4);
    expect(target(4, 'f')).toBe(0);
    expect(target(-1, 'f')).toBe(0);
    // The same letter again and again cycles through the rows it starts.
    expect(target(1, 'ii')).toBe(2);
    expect(target(2, 'iii')).toBe(1);
    // A longer string matches the focused row too, and any case.
    expect(target(1, 'in')).toBe(1);
    expect(target(0, 'incremental snapshot c')).toBe(2);
    expect(target(3, 'res')).toBe(3);
    expect(target(0, 'RES'.toLowerCase())).toBe(3);
    // No match, no rows, nothing typed.
    expect(target(0, 'x')).toBe(-1);
    expect(target(0, 'fx')).toBe(-1);
    expect(typeAheadTarget(labelOf, 0, -1, 'f')).toBe(-1);
    expect(target(0, '')).toBe(-1);
  });
});
