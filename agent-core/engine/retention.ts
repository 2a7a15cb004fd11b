// Retention (seed 004): a source's chain keeps at most `chainLimit` snapshots. Beyond it the oldest
// automatic (scheduled) snapshots are forgotten first; snapshots a person asked for are kept until
// someone deletes them by hand. Every snapshot is complete on its own (FORMAT.md §8), so forgetting
// one never breaks another.
import { isAutomatic, type SnapshotSummary } from '../api/snapshot.js';

export { AUTOMATIC_TAG, isAutomatic } from '../api/snapshot.js';

/**
 * Ids to forget so that each source keeps at most chainLimit snapshots, oldest automatic first.
 * The newest snapshot of a source is never forgotten (the next incremental compares with it).
 */
export function snapshotsToForget(snapshots: readonly SnapshotSummary[], chainLimit: number): string[] {
  const bySource = new Map<string, SnapshotSummary[]>();
  for (const s of snapshots) bySource.set(s.sourceId, [...(bySource.get(s.sourceId) ?? []), s]);
  const out: string[] = [];
  for (const chain of bySource.values()) {
    // ISO timestamps and hex ids sort by code unit; localeCompare would load the ICU collator (~15 ms
    // on a cold start, inside every backup's job) to get the same order.
    chain.sort((a, b) => byCodeUnit(a.createdAt, b.createdAt) || byCodeUnit(a.id, b.id));
    let excess = chain.length - chainLimit;
    for (const s of chain.slice(0, -1)) {
      if (excess <= 0) break;
      if (!isAutomatic(s)) continue;
      out.push(s.id);
      excess--;
    }
  }
  return out;
}

function byCodeUnit(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
