import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { SnapshotSummary } from '../api/snapshot.js';
import { buildSnapshotTree, chainOf, walkSnapshotTree, type SnapshotTreeNode } from './snapshot-tree.js';

function hexId(name: string): string {
  return createHash('sha256').update(name).digest('hex');
}

function snap(name: string, parent: string | null, minute: number): SnapshotSummary {
  return {
    id: hexId(name),
    sourceId: hexId('disk'),
    sourceName: '/dev/sdb',
    parentId: parent === null ? null : hexId(parent),
    mode: parent === null ? 'full' : 'incremental',
    modeReason: null,
    tracker: 'live',
    createdAt: new Date(Date.UTC(2025, 0, 1, 0, minute)).toISOString(),
    hostname: 'host',
    tags: [],
    sourceBytes: 1,
    validBytes: 1,
    bytesRead: 1,
    bytesNew: 1,
    bytesStored: 1,
    durationMs: 1,
  };
}

/** The tree as nested [name, children] pairs, for readable expectations. */
function shape(nodes: SnapshotTreeNode[], names: Map<string, string>): unknown[] {
  return nodes.map((n) => [names.get(n.snapshot.id), shape(n.children, names)]);
}

function namesOf(...list: string[]): Map<string, string> {
  return new Map(list.map((n) => [hexId(n), n]));
}

describe('buildSnapshotTree', () => {
  it('hangs incrementals under their parents and orders branches by creation time', () => {
    const list = [snap('c', 'a', 3), snap('b', 'a', 2), snap('a', null, 1), snap('d', 'b', 4), snap('e', null, 0)];
    const tree = buildSnapshotTree(list);
    expect(shape(tree, namesOf('a', 'b', 'c', 'd', 'e'))).toEqual([
      ['e', []],
      ['a', [['b', [['d', []]]], ['c', []]]],
    ]);
  });

  it('makes a snapshot whose parent was pruned a root of its own', () => {
    const list = [snap('a', null, 1), snap('orphan', 'pruned', 5), snap('child', 'orphan', 6)];
    const tree = buildSnapshotTree(list);
    expect(shape(tree, namesOf('a', 'orphan', 'child'))).toEqual([
      ['a', []],
      ['orphan', [['child', []]]],
    ]);
    expect(tree[1]?.snapshot.parentId).toBe(hexId('pruned'));
  });

  it('orders snapshots created at the same moment by id', () => {
    const list = [snap('x', null, 1), snap('y', null, 1)];
    const ids = buildSnapshotTree(list).map((n) => n.snapshot.id);
    expect(ids).toEqual([hexId('x'), hexId('y')].sort());
  });

  it('builds and walks a 100,000-deep chain without overflowing the stack', () => {
    const list: SnapshotSummary[] = [];
    for (let i = 0; i < 100_000; i += 1) list.push(snap(`s${i}`, i === 0 ? null : `s${i - 1}`, i));
    const tree = buildSnapshotTree(list.slice().reverse());
    expect(tree).toHaveLength(1);
    let deepest = 0;
    let visited = 0;
    for (const { depth } of walkSnapshotTree(tree)) {
      deepest = Math.max(deepest, depth);
      visited += 1;
    }
    expect(visited).toBe(100_000);
    expect(deepest).toBe(99_999);
    expect(chainOf(list, hexId('s99999'))).toHaveLength(100_000);
  });

  it('keeps every member of a parent cycle from damaged data, rooted at the oldest, and chainOf ends', () => {
    const a = { ...snap('a', 'b', 1) };
    const b = { ...snap('b', 'a', 2) };
    const tree = buildSnapshotTree([b, a]);
    expect(shape(tree, namesOf('a', 'b'))).toEqual([['a', [['b', []]]]]);
    expect(chainOf([a, b], a.id).sort()).toEqual([a.id, b.id].sort());
  });

  it('returns no roots for no snapshots', () => {
    expect(buildSnapshotTree([])).toEqual([]);
  });
});

describe('walkSnapshotTree', () => {
  it('visits parents before children in display order with their depth', () => {
    const list = [snap('a', null, 1), snap('b', 'a', 2), snap('c', 'a', 3), snap('d', 'b', 4)];
    const names = namesOf('a', 'b', 'c', 'd');
    const order = [...walkSnapshotTree(buildSnapshotTree(list))].map(({ node, depth }) => `${names.get(node.snapshot.id)}${depth}`);
    expect(order).toEqual(['a0', 'b1', 'd2', 'c1']);
  });
});

describe('chainOf', () => {
  it('lists ids from the root down to the snapshot', () => {
    const list = [snap('a', null, 1), snap('b', 'a', 2), snap('c', 'b', 3), snap('x', 'a', 4)];
    expect(chainOf(list, hexId('c'))).toEqual([hexId('a'), hexId('b'), hexId('c')]);
  });

  it('starts the chain at an orphan whose parent was pruned', () => {
    const list = [snap('orphan', 'pruned', 1), snap('child', 'orphan', 2)];
    expect(chainOf(list, hexId('child'))).toEqual([hexId('orphan'), hexId('child')]);
  });

  it('is empty for an id that is not in the list', () => {
    expect(chainOf([snap('a', null, 1)], hexId('nope'))).toEqual([]);
  });
});
