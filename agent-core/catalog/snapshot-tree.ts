// The snapshot tree as the console draws it: each incremental hangs under its parent. Pure, and
// iterative throughout, so a chain of a hundred thousand incrementals cannot overflow the stack.
import type { SnapshotSummary } from '../api/snapshot.js';

export interface SnapshotTreeNode {
  snapshot: SnapshotSummary;
  /** Oldest first. */
  children: SnapshotTreeNode[];
}

/**
 * Roots are snapshots without a parent or whose parent is not in the list (pruned, or not yet in
 * the catalog). Roots and children are ordered by createdAt, then id. A repeated id keeps its first
 * summary. A parent cycle cannot come from a repository, whose ids hash their parents; if damaged
 * data holds one anyway, its oldest member becomes a root rather than the cycle vanishing.
 */
export function buildSnapshotTree(snapshots: readonly SnapshotSummary[]): SnapshotTreeNode[] {
  const nodes = new Map<string, SnapshotTreeNode>();
  for (const snapshot of snapshots) {
    if (!nodes.has(snapshot.id)) nodes.set(snapshot.id, { snapshot, children: [] });
  }

  const roots: SnapshotTreeNode[] = [];
  for (const node of nodes.values()) {
    const parent = parentOf(node, nodes);
    if (parent) parent.children.push(node);
    else roots.push(node);
  }

  const reached = new Set<SnapshotTreeNode>();
  for (const root of roots) markSubtree(root, reached);
  if (reached.size < nodes.size) {
    const stranded = [...nodes.values()].filter((n) => !reached.has(n)).sort(byCreation);
    for (const node of stranded) {
      if (reached.has(node)) continue;
      const parent = parentOf(node, nodes);
      if (parent) parent.children.splice(parent.children.indexOf(node), 1);
      roots.push(node);
      markSubtree(node, reached);
    }
  }

  roots.sort(byCreation);
  for (const node of nodes.values()) node.children.sort(byCreation);
  return roots;
}

/** Ids from the root of id's chain down to id itself; empty if id is not in the list. */
export function chainOf(snapshots: readonly SnapshotSummary[], id: string): string[] {
  const byId = new Map<string, SnapshotSummary>();
  for (const s of snapshots) if (!byId.has(s.id)) byId.set(s.id, s);
  const chain: string[] = [];
  const seen = new Set<string>();
  let current = byId.get(id);
  while (current && !seen.has(current.id)) {
    seen.add(current.id);
    chain.push(current.id);
    current = current.parentId === null ? undefined : byId.get(current.parentId);
  }
  return chain.reverse();
}

/** Visits the tree depth-first, parents before children, in display order, without recursion. */
export function* walkSnapshotTree(roots: readonly SnapshotTreeNode[]): Generator<{ node: SnapshotTreeNode; depth: number }> {
  const stack: { node: SnapshotTreeNode; depth: number }[] = [];
  for (let i = roots.length - 1; i >= 0; i -= 1) stack.push({ node: roots[i]!, depth: 0 });
  while (stack.length > 0) {
    const entry = stack.pop()!;
    yield entry;
    const { children } = entry.node;
    for (let i = children.length - 1; i >= 0; i -= 1) stack.push({ node: children[i]!, depth: entry.depth + 1 });
  }
}

function parentOf(node: SnapshotTreeNode, nodes: Map<string, SnapshotTreeNode>): SnapshotTreeNode | undefined {
  const { parentId } = node.snapshot;
  return parentId === null ? undefined : nodes.get(parentId);
}

function markSubtree(root: SnapshotTreeNode, reached: Set<SnapshotTreeNode>): void {
  const stack = [root];
  while (stack.length > 0) {
    const node = stack.pop()!;
    if (reached.has(node)) continue;
    reached.add(node);
    for (const child of node.children) stack.push(child);
  }
}

function byCreation(a: SnapshotTreeNode, b: SnapshotTreeNode): number {
  const x = a.snapshot;
  const y = b.snapshot;
  if (x.createdAt !== y.createdAt) return x.createdAt < y.createdAt ? -1 : 1;
  return x.id < y.id ? -1 : x.id > y.id ? 1 : 0;
}
