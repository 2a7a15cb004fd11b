// Map pages: the snapshot's disk map, one page per fixed span of the disk. Each page lists
// contiguous extents (unmapped, zero, or a range inside a chunk). Pages are content-addressed
// blobs, so an unchanged span of the disk costs nothing in the next snapshot.
import { StrataError } from '../api/errors.js';
import { ExtentKind, ID_BYTES, MAP_PAGE_MAGIC, MAP_PAGE_VERSION } from './format.js';

export interface MapExtent {
  readonly startBytes: number;
  readonly lengthBytes: number;
  readonly kind: ExtentKind;
  /** Hex chunk id, for data extents. */
  readonly chunkId?: string;
  readonly offsetInChunkBytes?: number;
}

export function encodeMapPage(pageStartBytes: number, pageLengthBytes: number, extents: readonly MapExtent[]): Buffer {
  const chunkIndex = new Map<string, number>();
  for (const e of extents) if (e.kind === ExtentKind.data && !chunkIndex.has(e.chunkId!)) chunkIndex.set(e.chunkId!, chunkIndex.size);
  let cursor = pageStartBytes;
  let size = 8 + 4 + 8 + 8 + 4 + chunkIndex.size * ID_BYTES + 4;
  for (const e of extents) {
    if (e.startBytes !== cursor) throw new StrataError('Internal', `map page extents are not contiguous at ${cursor}`);
    cursor += e.lengthBytes;
    size += e.kind === ExtentKind.data ? 17 : 9;
  }
  if (cursor !== pageStartBytes + pageLengthBytes) throw new StrataError('Internal', 'map page extents do not cover the page');
  const buf = Buffer.alloc(size);
  let o = 0;
  MAP_PAGE_MAGIC.copy(buf, o);
  o += 8;
  buf.writeUInt32LE(MAP_PAGE_VERSION, o);
  o += 4;
  buf.writeBigUInt64LE(BigInt(pageStartBytes), o);
  o += 8;
  buf.writeBigUInt64LE(BigInt(pageLengthBytes), o);
  o += 8;
  buf.writeUInt32LE(chunkIndex.size, o);
  o += 4;
  for (const id of chunkIndex.keys()) o += Buffer.from(id, 'hex').copy(buf, o);
  buf.writeUInt32LE(extents.length, o);
  o += 4;
  for (const e of extents) {
    buf[o] = e.kind;
    buf.writeBigUInt64LE(BigInt(e.lengthBytes), o + 1);
    o += 9;
    if (e.kind === ExtentKind.data) {
      buf.writeUInt32LE(chunkIndex.get(e.chunkId!)!, o);
      buf.writeUInt32LE(e.offsetInChunkBytes!, o + 4);
      o += 8;
    }
  }
  return buf;
}

export interface DecodedMapPage {
  readonly startBytes: number;
  readonly lengthBytes: number;
  readonly extents: MapExtent[];
}

export function decodeMapPage(buf: Buffer, what: string): DecodedMapPage {
  const bad = (problem: string): StrataError =>
    new StrataError('Corrupt', `${what} ${problem}; the repository is damaged (run \`strata verify --read-data\`).`);
  if (buf.length < 36 || !buf.subarray(0, 8).equals(MAP_PAGE_MAGIC)) throw bad('is not a map page');
  const version = buf.readUInt32LE(8);
  if (version !== MAP_PAGE_VERSION) throw new StrataError('Unsupported', `${what} uses map page format ${version}; upgrade Strata.`);
  const startBytes = Number(buf.readBigUInt64LE(12));
  const lengthBytes = Number(buf.readBigUInt64LE(20));
  const chunkCount = buf.readUInt32LE(28);
  let o = 32;
  if (o + chunkCount * ID_BYTES + 4 > buf.length) throw bad('is truncated');
  const ids: string[] = [];
  for (let i = 0; i < chunkCount; i++, o += ID_BYTES) ids.push(buf.subarray(o, o + ID_BYTES).toString('hex'));
  const count = buf.readUInt32LE(o);
  o += 4;
  const extents: MapExtent[] = [];
  let cursor = startBytes;
  for (let i = 0; i < count; i++) {
    if (o + 9 > buf.length) throw bad('is truncated');
    const kind = buf[o] as ExtentKind;
    const length = Number(buf.readBigUInt64LE(o + 1));
    o += 9;
    if (kind === ExtentKind.data) {
      if (o + 8 > buf.length) throw bad('is truncated');
      const idx = buf.readUInt32LE(o);
      const offsetInChunkBytes = buf.readUInt32LE(o + 4);
      o += 8;
      const chunkId = ids[idx];
      if (chunkId === undefined) throw bad(`references chunk ${idx} of ${ids.length}`);
      extents.push({ startBytes: cursor, lengthBytes: length, kind, chunkId, offsetInChunkBytes });
    } else if (kind === ExtentKind.zero || kind === ExtentKind.unmapped) {
      extents.push({ startBytes: cursor, lengthBytes: length, kind });
    } else {
      throw bad(`has an extent of unknown kind ${kind}`);
    }
    cursor += length;
  }
  if (cursor !== startBytes + lengthBytes || o !== buf.length) throw bad('does not cover its span exactly');
  return { startBytes, lengthBytes, extents };
}

/** The part of an extent starting offsetBytes into it, lengthBytes long. */
export function sliceExtent(e: MapExtent, offsetBytes: number, lengthBytes: number): MapExtent {
  return e.kind === ExtentKind.data
    ? { ...e, startBytes: e.startBytes + offsetBytes, lengthBytes, offsetInChunkBytes: e.offsetInChunkBytes! + offsetBytes }
    : { ...e, startBytes: e.startBytes + offsetBytes, lengthBytes };
}

/** Splits a disk-ordered, contiguous extent list covering [0, sizeBytes) at multiples of pageBytes. */
export function splitIntoPages(extents: readonly MapExtent[], sizeBytes: number, pageBytes: number): DecodedMapPage[] {
  const pages: DecodedMapPage[] = [];
  let current: MapExtent[] = [];
  let pageStart = 0;
  let pageEnd = Math.min(sizeBytes, pageBytes);
  const closePage = (): void => {
    pages.push({ startBytes: pageStart, lengthBytes: pageEnd - pageStart, extents: current });
    current = [];
    pageStart = pageEnd;
    pageEnd = Math.min(sizeBytes, pageStart + pageBytes);
  };
  for (const e of extents) {
    let rest = e;
    while (rest.startBytes + rest.lengthBytes > pageEnd) {
      const head = pageEnd - rest.startBytes;
      if (head > 0) current.push(sliceExtent(rest, 0, head));
      closePage();
      rest = sliceExtent(rest, head, rest.lengthBytes - head);
    }
    if (rest.lengthBytes > 0) current.push(rest);
    if (rest.startBytes + rest.lengthBytes === pageEnd) closePage();
  }
  if (current.length > 0) closePage();
  return pages;
}
