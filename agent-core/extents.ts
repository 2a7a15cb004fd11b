// Byte ranges as sorted, non-overlapping runs: the one representation for anything that scales with
// disk size (valid maps, holes, changed regions). Never per-block arrays.

export interface Extent {
  readonly startBytes: number;
  readonly lengthBytes: number;
}

export function extentEnd(e: Extent): number {
  return e.startBytes + e.lengthBytes;
}

/** Sorts, drops empty runs and merges overlapping or touching runs. */
export function normalizeExtents(extents: Iterable<Extent>): Extent[] {
  const sorted = [...extents].filter((e) => e.lengthBytes > 0).sort((a, b) => a.startBytes - b.startBytes);
  const out: Extent[] = [];
  for (const e of sorted) {
    const last = out[out.length - 1];
    if (last && e.startBytes <= extentEnd(last)) {
      const end = Math.max(extentEnd(last), extentEnd(e));
      out[out.length - 1] = { startBytes: last.startBytes, lengthBytes: end - last.startBytes };
    } else {
      out.push({ startBytes: e.startBytes, lengthBytes: e.lengthBytes });
    }
  }
  return out;
}

/** Total bytes covered by normalized extents. */
export function totalBytes(extents: readonly Extent[]): number {
  let sum = 0;
  for (const e of extents) sum += e.lengthBytes;
  return sum;
}

/** Intersection of two normalized extent lists. */
export function intersectExtents(a: readonly Extent[], b: readonly Extent[]): Extent[] {
  const out: Extent[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const x = a[i]!;
    const y = b[j]!;
    const start = Math.max(x.startBytes, y.startBytes);
    const end = Math.min(extentEnd(x), extentEnd(y));
    if (start < end) out.push({ startBytes: start, lengthBytes: end - start });
    if (extentEnd(x) < extentEnd(y)) i++;
    else j++;
  }
  return out;
}

/** The parts of [0, sizeBytes) not covered by normalized extents. */
export function complementExtents(extents: readonly Extent[], sizeBytes: number): Extent[] {
  const out: Extent[] = [];
  let cursor = 0;
  for (const e of extents) {
    if (e.startBytes > cursor) out.push({ startBytes: cursor, lengthBytes: Math.min(e.startBytes, sizeBytes) - cursor });
    cursor = Math.max(cursor, extentEnd(e));
    if (cursor >= sizeBytes) break;
  }
  if (cursor < sizeBytes) out.push({ startBytes: cursor, lengthBytes: sizeBytes - cursor });
  return out.filter((e) => e.lengthBytes > 0);
}

/** Widens every extent outward to multiples of alignBytes, clamped to [0, limitBytes), and merges. */
export function alignExtents(extents: readonly Extent[], alignBytes: number, limitBytes: number): Extent[] {
  return normalizeExtents(
    extents.map((e) => {
      const start = Math.floor(e.startBytes / alignBytes) * alignBytes;
      const end = Math.min(limitBytes, Math.ceil(extentEnd(e) / alignBytes) * alignBytes);
      return { startBytes: start, lengthBytes: end - start };
    }),
  );
}

/**
 * Collects runs of set bits from a bitmap into extents. Bit i (LSB-first within each byte, as ext4
 * and NTFS store them) stands for unit firstUnit + i, each unitBytes long, offset by baseBytes.
 */
export function bitmapToExtents(
  bitmap: Uint8Array,
  bitCount: number,
  unitBytes: number,
  baseBytes: number,
  firstUnit = 0,
): Extent[] {
  const out: Extent[] = [];
  let runStart = -1;
  for (let i = 0; i < bitCount; i++) {
    const byte = bitmap[i >> 3]!;
    if ((i & 7) === 0 && i + 8 <= bitCount && (byte === 0 || byte === 0xff)) {
      // Whole-byte fast path: most bitmap bytes are all-free or all-used.
      if (byte === 0xff) {
        if (runStart < 0) runStart = i;
      } else if (runStart >= 0) {
        out.push({ startBytes: baseBytes + (firstUnit + runStart) * unitBytes, lengthBytes: (i - runStart) * unitBytes });
        runStart = -1;
      }
      i += 7;
      continue;
    }
    const set = (byte >> (i & 7)) & 1;
    if (set && runStart < 0) runStart = i;
    else if (!set && runStart >= 0) {
      out.push({ startBytes: baseBytes + (firstUnit + runStart) * unitBytes, lengthBytes: (i - runStart) * unitBytes });
      runStart = -1;
    }
  }
  if (runStart >= 0) {
    out.push({ startBytes: baseBytes + (firstUnit + runStart) * unitBytes, lengthBytes: (bitCount - runStart) * unitBytes });
  }
  return out;
}
