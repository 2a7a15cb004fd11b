// <SnapshotTree>: a source's snapshots as an ARIA tree (roving focus, one or two selected to compare,
// a Restore button per snapshot), virtualised so 1,000 snapshots render as quickly as ten.
import { useLayoutEffect, useMemo, useRef, useState, type KeyboardEvent, type MouseEvent } from 'react';
import type { SnapshotSummary } from '../../../../agent-core/api/snapshot.js';
import { formatBytes, formatDateTime } from '../format.js';
import { buildForest, chainStatus, DEFAULT_CHAIN_LIMIT, flattenForest, nextSelection, TYPE_AHEAD_MS, typeAheadTarget, type ChainStatus, type TreeRow } from './tree-layout.js';

export interface SnapshotTreeProps {
  snapshots: readonly SnapshotSummary[];
  /** Selected snapshot ids: one, or two to compare (in the order they were picked). */
  selected: readonly string[];
  onSelect(ids: string[]): void;
  onRestore(id: string): void;
  /** Snapshots a chain may hold (settings' retention.chainLimit); default 128. */
  chainLimit?: number | undefined;
  /** Accessible name of the tree; default "Snapshots". */
  label?: string | undefined;
  /** Height of the scrolling area in CSS px; default 420. */
  heightPx?: number | undefined;
}

const ROW_PX = 36;
const INDENT_PX = 20;
const OVERSCAN_ROWS = 8;

const MODE_BADGE: Record<SnapshotSummary['mode'], { text: string; className: string }> = {
  full: { text: 'Full', className: 'bg-sky-100 text-sky-800 ring-sky-300' },
  incremental: { text: 'Incremental', className: 'bg-slate-100 text-slate-700 ring-slate-300' },
  resync: { text: 'Resync', className: 'bg-amber-100 text-amber-800 ring-amber-300' },
};

const CHAIN_BADGE: Record<Exclude<ChainStatus, 'ok'>, string> = {
  near: 'bg-amber-50 text-amber-800 ring-amber-300',
  full: 'bg-amber-100 text-amber-900 ring-amber-400',
  over: 'bg-rose-100 text-rose-800 ring-rose-300',
};

function shortId(id: string): string {
  return id.slice(0, 8);
}

/** The row's accessible name: what a sighted user reads along the row, Restore button aside. */
function rowLabel(row: TreeRow, mode: string, time: string, limit: number): string {
  const n = row.node;
  const s = n.snapshot;
  const parts = [`${mode} snapshot ${shortId(n.id)}, ${time}`, `${formatBytes(s.bytesStored)} stored of ${formatBytes(s.sourceBytes)}`];
  if (s.tags.length > 0) parts.push(`tags ${s.tags.join(', ')}`);
  if (n.startsBranch) parts.push('starts a branch');
  if (n.branches.length > 0) parts.push(`${n.children.length} children`);
  if (n.parentMissing) parts.push('parent removed');
  parts.push(`number ${n.chainDepth} in its chain, limit ${limit}`);
  return parts.join('; ');
}

function chainTitle(row: TreeRow, limit: number): string {
  const n = row.node;
  return `Snapshot ${n.chainDepth} of its chain; the longest chain through it has ${n.chainLength} of at most ${limit}`;
}

export function SnapshotTree(props: SnapshotTreeProps) {
  const { snapshots, selected, onSelect, onRestore } = props;
  const limit = props.chainLimit ?? DEFAULT_CHAIN_LIMIT;
  const heightPx = props.heightPx ?? 420;
  const [collapsed, setCollapsed] = useState<ReadonlySet<string>>(() => new Set());
  const [scrollTop, setScrollTop] = useState(0);
  const [activeId, setActiveId] = useState<string | null>(null);
  const treeRef = useRef<HTMLDivElement>(null);
  const focusPending = useRef(false);
  // Type-ahead: the characters typed so far and when the last one came.
  const typed = useRef({ text: '', at: 0 });

  const forest = useMemo(() => buildForest(snapshots), [snapshots]);
  const rows = useMemo(() => flattenForest(forest, collapsed), [forest, collapsed]);
  const rowIndex = useMemo(() => new Map(rows.map((r, i) => [r.node.id, i])), [rows]);

  // The roving tab stop: the focused row, else the first selected, else the newest snapshot's row.
  const active = useMemo(() => {
    const candidates = [activeId, ...selected];
    for (const id of candidates) if (id !== null && rowIndex.has(id)) return rowIndex.get(id)!;
    let newest = -1;
    rows.forEach((r, i) => {
      if (newest < 0 || Date.parse(r.node.snapshot.createdAt) >= Date.parse(rows[newest]!.node.snapshot.createdAt)) newest = i;
    });
    return newest;
  }, [activeId, selected, rowIndex, rows]);

  const chainsAtRisk = useMemo(() => {
    const tips = [...forest.byId.values()].filter((n) => n.children.length === 0);
    return {
      near: tips.filter((n) => chainStatus(n.chainDepth, limit) !== 'ok').length,
      manualFull: tips.filter((n) => n.manualDepth >= limit).length,
    };
  }, [forest, limit]);
  const branchPoints = useMemo(() => [...forest.byId.values()].filter((n) => n.branches.length > 0).length, [forest]);

  // Scroll the first time there is something to show, so the newest (or selected) snapshot is in view.
  const initialScrollDone = useRef(false);
  useLayoutEffect(() => {
    const tree = treeRef.current;
    if (initialScrollDone.current || !tree || active < 0) return;
    initialScrollDone.current = true;
    const top = Math.max(0, active * ROW_PX - heightPx / 2);
    tree.scrollTop = top;
    setScrollTop(tree.scrollTop);
  }, [active, heightPx]);

  useLayoutEffect(() => {
    if (!focusPending.current || active < 0) return;
    focusPending.current = false;
    const el = treeRef.current?.querySelector<HTMLElement>(`[data-row="${active}"]`);
    el?.focus({ preventScroll: true });
  });

  const moveTo = (index: number) => {
    if (rows.length === 0) return;
    const i = Math.min(rows.length - 1, Math.max(0, index));
    const tree = treeRef.current;
    if (tree) {
      const top = i * ROW_PX;
      if (top < tree.scrollTop) tree.scrollTop = top;
      else if (top + ROW_PX > tree.scrollTop + tree.clientHeight) tree.scrollTop = top + ROW_PX - tree.clientHeight;
      setScrollTop(tree.scrollTop);
    }
    focusPending.current = true;
    setActiveId(rows[i]!.node.id);
  };

  const toggle = (id: string, expand: boolean) => {
    setCollapsed((old) => {
      const next = new Set(old);
      if (expand) next.delete(id);
      else next.add(id);
      return next;
    });
  };

  const select = (id: string, compare: boolean) => onSelect(nextSelection(selected, id, compare));

  /** The row's accessible name, as type-ahead matches it. */
  const labelOf = (index: number) => {
    const row = rows[index]!;
    return rowLabel(row, MODE_BADGE[row.node.snapshot.mode].text, formatDateTime(row.node.snapshot.createdAt), limit);
  };

  /**
   * Type-ahead (WAI-ARIA tree): a printable character moves focus to the next visible row whose name
   * starts with the characters typed within TYPE_AHEAD_MS of each other; a letter typed again cycles.
   * Space selects unless it continues a search. True when the key was taken.
   */
  const typeAhead = (e: KeyboardEvent<HTMLDivElement>): boolean => {
    const now = performance.now();
    const search = typed.current;
    if (now - search.at > TYPE_AHEAD_MS) search.text = '';
    const printable = [...e.key].length === 1 && !e.ctrlKey && !e.metaKey && !e.altKey;
    if (!printable || (e.key === ' ' && (search.text === '' || e.shiftKey))) {
      search.text = '';
      return false;
    }
    search.text += e.key.toLowerCase();
    search.at = now;
    const target = typeAheadTarget(labelOf, rows.length, active, search.text);
    if (target >= 0 && target !== active) moveTo(target);
    return true;
  };

  const onKeyDown = (e: KeyboardEvent<HTMLDivElement>) => {
    if (active < 0 || (e.target as HTMLElement).tagName === 'BUTTON') return;
    if (typeAhead(e)) {
      e.preventDefault();
      return;
    }
    const row = rows[active]!;
    let handled = true;
    switch (e.key) {
      case 'ArrowDown':
        moveTo(active + 1);
        break;
      case 'ArrowUp':
        moveTo(active - 1);
        break;
      case 'Home':
        moveTo(0);
        break;
      case 'End':
        moveTo(rows.length - 1);
        break;
      case 'PageDown':
        moveTo(active + Math.max(1, Math.floor(heightPx / ROW_PX) - 1));
        break;
      case 'PageUp':
        moveTo(active - Math.max(1, Math.floor(heightPx / ROW_PX) - 1));
        break;
      case 'ArrowRight':
        if (row.expandable && !row.expanded) toggle(row.node.id, true);
        else if (row.expanded) moveTo(active + 1);
        break;
      case 'ArrowLeft':
        if (row.expanded) toggle(row.node.id, false);
        else if (row.groupParentId !== null) moveTo(rowIndex.get(row.groupParentId) ?? active);
        break;
      case 'Enter':
      case ' ':
        select(row.node.id, e.shiftKey || e.ctrlKey || e.metaKey);
        break;
      default:
        handled = false;
    }
    if (handled) e.preventDefault();
  };

  const onRowClick = (e: MouseEvent<HTMLDivElement>, index: number) => {
    const id = rows[index]!.node.id;
    setActiveId(id);
    select(id, e.ctrlKey || e.metaKey || e.shiftKey);
  };

  // The window of rows to render, plus the active row so the tab stop always exists.
  const first = Math.max(0, Math.floor(scrollTop / ROW_PX) - OVERSCAN_ROWS);
  const last = Math.min(rows.length, Math.ceil((scrollTop + heightPx) / ROW_PX) + OVERSCAN_ROWS);
  const indices: number[] = [];
  for (let i = first; i < last; i++) indices.push(i);
  if (active >= 0 && (active < first || active >= last)) indices.push(active);

  const selectedSet = new Set(selected);
  const comparing = selected.length === 2;

  return (
    <div className="flex flex-col gap-2 text-sm text-slate-700">
      <div className="flex flex-wrap items-baseline gap-x-3 text-xs text-slate-500">
        <span>
          {snapshots.length} snapshot{snapshots.length === 1 ? '' : 's'}
          {forest.roots.length > 1 ? ` in ${forest.roots.length} trees` : ''}
          {branchPoints > 0 ? ` · ${branchPoints} branch point${branchPoints === 1 ? '' : 's'}` : ''}
        </span>
        <span>chain limit {limit}</span>
        <span className="ml-auto">{comparing ? 'Comparing A and B' : 'Ctrl, Cmd or Shift + click (Shift+Space) picks a second to compare'}</span>
      </div>
      {chainsAtRisk.near > 0 && (
        <p role="note" className="rounded border border-amber-300 bg-amber-50 px-2 py-1 text-xs text-amber-900">
          {chainsAtRisk.near === 1 ? 'A chain is' : `${chainsAtRisk.near} chains are`} near or at the limit of {limit} snapshots. Beyond it the oldest automatic
          snapshots are removed first; snapshots taken by hand stay until you delete them.
          {chainsAtRisk.manualFull > 0 ? ' A chain is full of manual snapshots: delete some to make room.' : ''}
        </p>
      )}
      <div
        ref={treeRef}
        role="tree"
        aria-label={props.label ?? 'Snapshots'}
        aria-multiselectable="true"
        className="relative overflow-auto rounded border border-slate-200 bg-white"
        style={{ height: heightPx }}
        onScroll={(e) => setScrollTop(e.currentTarget.scrollTop)}
        onKeyDown={onKeyDown}
      >
        {rows.length === 0 && <p className="p-3 text-slate-500">No snapshots yet.</p>}
        <div className="relative" style={{ height: rows.length * ROW_PX }}>
          {indices.map((i) => {
            const row = rows[i]!;
            const n = row.node;
            const s = n.snapshot;
            const isSelected = selectedSet.has(n.id);
            const mark = comparing && isSelected ? (selected[0] === n.id ? 'A' : 'B') : null;
            const isTip = n.children.length === 0;
            const status = isTip ? chainStatus(n.chainDepth, limit) : 'ok';
            const badge = MODE_BADGE[s.mode];
            const time = formatDateTime(s.createdAt);
            return (
              <div
                key={n.id}
                data-row={i}
                role="treeitem"
                aria-level={row.level}
                aria-posinset={row.posInSet}
                aria-setsize={row.setSize}
                aria-expanded={row.expandable ? row.expanded : undefined}
                aria-selected={isSelected}
                aria-label={rowLabel(row, badge.text, time, limit)}
                tabIndex={i === active ? 0 : -1}
                className={
                  'absolute inset-x-0 flex select-none items-center gap-2 border-b border-slate-100 pr-2 outline-none ' +
                  'focus-visible:z-10 focus-visible:ring-2 focus-visible:ring-sky-600 focus-visible:ring-inset ' +
                  (isSelected ? 'bg-sky-50 hover:bg-sky-100' : 'hover:bg-slate-50')
                }
                style={{ top: i * ROW_PX, height: ROW_PX, paddingLeft: 8 + (row.level - 1) * INDENT_PX }}
                onClick={(e) => onRowClick(e, i)}
                onFocus={(e) => {
                  if (e.target === e.currentTarget && i !== active) setActiveId(n.id);
                }}
              >
                <span
                  aria-hidden="true"
                  className={'w-4 shrink-0 select-none text-center text-slate-400 ' + (row.expandable ? 'cursor-pointer hover:text-slate-700' : '')}
                  onClick={(e) => {
                    if (!row.expandable) return;
                    e.stopPropagation();
                    toggle(n.id, !row.expanded);
                  }}
                >
                  {row.expandable ? (row.expanded ? '▾' : '▸') : n.startsBranch ? '↳' : '•'}
                </span>
                {mark && (
                  <span aria-hidden="true" className="grid size-5 shrink-0 place-items-center rounded-full bg-sky-600 text-[11px] font-semibold text-white">
                    {mark}
                  </span>
                )}
                <span className={`shrink-0 rounded px-1.5 py-0.5 text-[11px] font-medium ring-1 ring-inset ${badge.className}`} title={s.modeReason ?? undefined}>
                  {badge.text}
                </span>
                <time dateTime={s.createdAt} className="shrink-0 tabular-nums text-slate-800">
                  {time}
                </time>
                <span className="shrink-0 font-mono text-xs text-slate-400" title={n.id}>
                  {shortId(n.id)}
                </span>
                <span className="min-w-0 shrink truncate text-xs text-slate-500" title={`${s.bytesStored} bytes stored of ${s.sourceBytes} bytes on the source`}>
                  {formatBytes(s.bytesStored)} stored · {formatBytes(s.sourceBytes)} source
                </span>
                {n.startsBranch && <span className="shrink-0 text-[11px] text-slate-500">branch</span>}
                {n.branches.length > 0 && <span className="shrink-0 text-[11px] text-slate-500">{n.children.length} children</span>}
                {n.parentMissing && <span className="shrink-0 text-[11px] text-slate-500" title="Its parent snapshot is no longer in the list">parent removed</span>}
                <span className="flex min-w-0 shrink gap-1 overflow-hidden">
                  {s.tags.map((tag) => (
                    <span key={tag} className="truncate rounded bg-slate-100 px-1.5 py-0.5 text-[11px] text-slate-600">
                      {tag}
                    </span>
                  ))}
                </span>
                <span className="ml-auto flex shrink-0 items-center gap-2">
                  {status !== 'ok' ? (
                    <span className={`rounded px-1.5 py-0.5 text-[11px] tabular-nums ring-1 ring-inset ${CHAIN_BADGE[status]}`} title={chainTitle(row, limit)}>
                      chain {n.chainDepth}/{limit}
                    </span>
                  ) : (
                    <span className="text-[11px] tabular-nums text-slate-400" title={chainTitle(row, limit)}>
                      #{n.chainDepth}
                    </span>
                  )}
                  <button
                    type="button"
                    tabIndex={i === active ? 0 : -1}
                    aria-label={`Restore snapshot ${shortId(n.id)} from ${time}`}
                    className="rounded border border-slate-300 bg-white px-2 py-0.5 text-xs text-slate-700 hover:border-sky-600 hover:text-sky-700 focus-visible:outline-2 focus-visible:outline-sky-600"
                    onClick={(e) => {
                      e.stopPropagation();
                      onRestore(n.id);
                    }}
                  >
                    Restore
                  </button>
                </span>
              </div>
            );
          })}
        </div>
      </div>
    </div>
  );
}
