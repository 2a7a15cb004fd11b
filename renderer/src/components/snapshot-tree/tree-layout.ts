// Lays a source's snapshots out as the tree the console shows: each chain reads top to bottom at one
// level, and a snapshot with several children (a branch, e.g. after a restore) nests the branches that
// are not its main line one level deeper. Depth, chain lengths and branch marks come from here.
import { DEFAULT_CHAIN_LIMIT } from '../../../../agent-core/api/console-config.js';
import { isAutomatic, type SnapshotSummary } from '../../../../agent-core/api/snapshot.js';

/** Seed 004: a chain holds 128 snapshots at most by default. */
export { DEFAULT_CHAIN_LIMIT };
/** From this share of the limit on, a chain is shown as nearing it. */
export const NEAR_LIMIT_SHARE = 0.9;

/** Snapshots not taken by the scheduler count as manual: retention keeps them until deleted by hand. */
export function isManual(snapshot: SnapshotSummary): boolean {
  return !isAutomatic(snapshot);
}

export interface TreeNode {
  snapshot: SnapshotSummary;
  id: string;
  /** Children in time order. */
  children: TreeNode[];
  /** The child that continues this line (the one whose subtree holds the newest snapshot). */
  main: TreeNode | null;
  /** Other children: each starts a branch nested under this node. */
  branches: TreeNode[];
  /** 1-based position in its chain, counted from the chain's root. */
  chainDepth: number;
  /** Manual snapshots from the root down to here, this one included. */
  manualDepth: number;
  /** Length of the longest chain through this node (its deepest descendant's chainDepth). */
  chainLength: number;
  /** Newest createdAt in this node's subtree (ms since the epoch). */
  newestMs: number;
  /** The parent is named but not in the list (removed by retention, or a broken link). */
  parentMissing: boolean;
  /** This node's parent has it as a nested branch, not as its main line. */
  startsBranch: boolean;
}

export interface SnapshotForest {
  roots: TreeNode[];
  byId: ReadonlyMap<string, TreeNode>;
}

function timeMs(s: SnapshotSummary): number {
  const t = Date.parse(s.createdAt);
  return Number.isNaN(t) ? 0 : t;
}

function byTime(a: TreeNode, b: TreeNode): number {
  return timeMs(a.snapshot) - timeMs(b.snapshot) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

/** Builds the forest in O(n log n), without recursion, so 1,000-long chains are fine. */
export function buildForest(snapshots: readonly SnapshotSummary[]): SnapshotForest {
  const byId = new Map<string, TreeNode>();
  for (const snapshot of snapshots) {
    if (byId.has(snapshot.id)) continue;
    byId.set(snapshot.id, {
      snapshot,
      id: snapshot.id,
      children: [],
      main: null,
      branches: [],
      chainDepth: 0,
      manualDepth: 0,
      chainLength: 0,
      newestMs: timeMs(snapshot),
      parentMissing: false,
      startsBranch: false,
    });
  }
  const roots: TreeNode[] = [];
  for (const node of byId.values()) {
    const parentId = node.snapshot.parentId;
    const parent = parentId === null || parentId === node.id ? undefined : byId.get(parentId);
    if (parent) parent.children.push(node);
    else {
      node.parentMissing = parentId !== null;
      roots.push(node);
    }
  }
  // Breadth-first from the roots; whatever stays unreached sits on a parent cycle (corrupt data):
  // its oldest node becomes a root so that nothing disappears from the view.
  const order: TreeNode[] = [];
  const seen = new Set<TreeNode>();
  const walk = (root: TreeNode) => {
    root.chainDepth = 1;
    root.manualDepth = isManual(root.snapshot) ? 1 : 0;
    seen.add(root);
    const queue = [root];
    for (let head = 0; head < queue.length; head++) {
      const node = queue[head]!;
      order.push(node);
      node.children.sort(byTime);
      for (const child of node.children) {
        if (seen.has(child)) continue;
        seen.add(child);
        child.chainDepth = node.chainDepth + 1;
        child.manualDepth = node.manualDepth + (isManual(child.snapshot) ? 1 : 0);
        queue.push(child);
      }
    }
  };
  roots.sort(byTime);
  for (const root of roots) walk(root);
  if (seen.size < byId.size) {
    const stranded = [...byId.values()].filter((n) => !seen.has(n)).sort(byTime);
    for (const node of stranded) {
      if (seen.has(node)) continue;
      // Cut the cycle at this node: its parent no longer lists it.
      for (const other of byId.values()) other.children = other.children.filter((c) => c !== node);
      node.parentMissing = true;
      roots.push(node);
      walk(node);
    }
    roots.sort(byTime);
  }
  // Leaves first: newest time and longest chain flow up; then each node picks its main line.
  for (let i = order.length - 1; i >= 0; i--) {
    const node = order[i]!;
    node.chainLength = Math.max(node.chainLength, node.chainDepth);
    let main: TreeNode | null = null;
    for (const child of node.children) {
      if (child.chainDepth !== node.chainDepth + 1) continue;
      node.newestMs = Math.max(node.newestMs, child.newestMs);
      node.chainLength = Math.max(node.chainLength, child.chainLength);
      if (!main || child.newestMs > main.newestMs || (child.newestMs === main.newestMs && child.id > main.id)) main = child;
    }
    node.main = main;
    node.branches = node.children.filter((c) => c !== main && c.chainDepth === node.chainDepth + 1);
    for (const b of node.branches) b.startsBranch = true;
  }
  return { roots, byId };
}

/** One visible row of the tree, in display order. */
export interface TreeRow {
  node: TreeNode;
  /** aria-level: 1 + how many branches deep the row is nested. */
  level: number;
  /** The row whose nested group holds this one (its branch point), null at the top level. */
  groupParentId: string | null;
  /** aria-posinset / aria-setsize among the rows sharing groupParentId. */
  posInSet: number;
  setSize: number;
  /** True when the row has nested branches (aria-expanded applies). */
  expandable: boolean;
  expanded: boolean;
}

/**
 * The rows to show: each line in time order, a branch point's nested branches right after it when
 * it is expanded (branch points are expanded unless listed in `collapsed`).
 */
export function flattenForest(forest: SnapshotForest, collapsed: ReadonlySet<string> = new Set()): TreeRow[] {
  const rows: TreeRow[] = [];
  const groups = new Map<string | null, TreeRow[]>();
  // An explicit stack of lines still to emit keeps deep nesting off the call stack.
  type Pending = { start: TreeNode; level: number; groupParentId: string | null };
  const emitLine = (first: Pending) => {
    const stack: Array<{ node: TreeNode | null; level: number; groupParentId: string | null }> = [{ node: first.start, level: first.level, groupParentId: first.groupParentId }];
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      const node = top.node;
      if (!node) {
        stack.pop();
        continue;
      }
      const expandable = node.branches.length > 0;
      const expanded = expandable && !collapsed.has(node.id);
      const row: TreeRow = { node, level: top.level, groupParentId: top.groupParentId, posInSet: 0, setSize: 0, expandable, expanded };
      rows.push(row);
      let group = groups.get(top.groupParentId);
      if (!group) groups.set(top.groupParentId, (group = []));
      group.push(row);
      // Continue this line after the nested branches: advance it, then push the branches on top.
      top.node = node.main;
      if (expanded) {
        for (let i = node.branches.length - 1; i >= 0; i--) stack.push({ node: node.branches[i]!, level: top.level + 1, groupParentId: node.id });
      }
    }
  };
  for (const root of forest.roots) emitLine({ start: root, level: 1, groupParentId: null });
  for (const group of groups.values()) {
    group.forEach((row, i) => {
      row.posInSet = i + 1;
      row.setSize = group.length;
    });
  }
  return rows;
}

export type ChainStatus = 'ok' | 'near' | 'full' | 'over';

/** How a chain of `length` stands against the limit. */
export function chainStatus(length: number, limit: number): ChainStatus {
  if (length > limit) return 'over';
  if (length === limit) return 'full';
  if (length >= Math.ceil(limit * NEAR_LIMIT_SHARE)) return 'near';
  return 'ok';
}

/** A click or key picks one snapshot; with Ctrl/Cmd/Shift it adds to (or drops from) a pair to compare. */
export function nextSelection(selected: readonly string[], id: string, compare: boolean): string[] {
  if (!compare) return [id];
  if (selected.includes(id)) return selected.filter((s) => s !== id);
  return [...selected.slice(-1), id];
}

/** Characters typed within this many ms of each other make one type-ahead string. */
export const TYPE_AHEAD_MS = 500;

/**
 * WAI-ARIA tree type-ahead: the row to move focus to when `typed` (lower case, the characters typed
 * so far) has been typed on row `from` (-1: none) of `count` visible rows named by `labelOf`; -1 when
 * no row's name starts with it. A first character, or one character typed again and again ("ii"),
 * looks from the row after `from` on, so repeating a letter cycles through the rows it starts; a
 * longer string looks from `from` itself, so typing on through the focused row's name stays there.
 * The search wraps around.
 */
export function typeAheadTarget(labelOf: (row: number) => string, count: number, from: number, typed: string): number {
  if (count <= 0 || typed === '') return -1;
  const chars = [...typed];
  const repeated = chars.every((ch) => ch === chars[0]);
  const needle = repeated ? chars[0]! : typed;
  const start = Math.max(-1, Math.min(from, count - 1)) + (repeated ? 1 : 0);
  for (let n = 0; n < count; n++) {
    const row = (((start + n) % count) + count) % count;
    if (labelOf(row).toLowerCase().startsWith(needle)) return row;
  }
  return -1;
}
