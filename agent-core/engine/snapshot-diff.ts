// What the console shows of snapshots on the disk map: the regions a snapshot holds, and where two
// snapshots differ. Both come from the map pages alone; no data is read.
import { ExtentKind } from '../repo/format.js';
import type { MapExtent } from '../repo/map-page.js';
import { normalizeExtents, type Extent } from '../extents.js';

/** The regions a snapshot read and kept (data and zeros); unmapped space was not in use. */
export function storedExtents(extents: readonly MapExtent[]): Extent[] {
  return normalizeExtents(extents.filter((e) => e.kind !== ExtentKind.unmapped));
}

function sameContent(a: MapExtent, b: MapExtent, at: number): boolean {
  if (a.kind !== b.kind) return false;
  if (a.kind !== ExtentKind.data) return true;
  return a.chunkId === b.chunkId && a.offsetInChunkBytes! + (at - a.startBytes) === b.offsetInChunkBytes! + (at - b.startBytes);
}

/**
 * Regions where two snapshots' content differs, rounded out to whole blocks. Content is compared by
 * reference: the same chunk at the same offset is the same data. A block rewritten with identical
 * bytes into a new chunk (a slot an incremental stored whole) counts as differing — the diff may
 * show a little more than changed, never less.
 */
export function differingExtents(a: readonly MapExtent[], b: readonly MapExtent[], blockSizeBytes: number): Extent[] {
  const out: Extent[] = [];
  const mark = (start: number, end: number): void => {
    const s = Math.floor(start / blockSizeBytes) * blockSizeBytes;
    const e = Math.ceil(end / blockSizeBytes) * blockSizeBytes;
    const last = out[out.length - 1];
    if (last && s <= last.startBytes + last.lengthBytes) {
      out[out.length - 1] = { startBytes: last.startBytes, lengthBytes: Math.max(last.startBytes + last.lengthBytes, e) - last.startBytes };
    } else out.push({ startBytes: s, lengthBytes: e - s });
  };
  let i = 0;
  let j = 0;
  let cursor = 0;
  while (i < a.length && j < b.length) {
    const x = a[i]!;
    const y = b[j]!;
    const xEnd = x.startBytes + x.lengthBytes;
    const yEnd = y.startBytes + y.lengthBytes;
    const end = Math.min(xEnd, yEnd);
    if (end > cursor && !sameContent(x, y, cursor)) mark(cursor, end);
    cursor = end;
    if (xEnd === end) i++;
    if (yEnd === end) j++;
  }
  // One disk grew: everything past the shorter map differs unless both sides hold nothing there.
  for (const rest of [a.slice(i), b.slice(j)]) {
    for (const e of rest) {
      const start = Math.max(e.startBytes, cursor);
      if (e.kind !== ExtentKind.unmapped && start < e.startBytes + e.lengthBytes) mark(start, e.startBytes + e.lengthBytes);
    }
  }
  return out;
}
