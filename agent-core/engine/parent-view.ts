// The parent snapshot as the incremental sees it: its extents in disk order and, per block, the
// stored digest to compare against. Walked forward once, window by window.
import { StrataError } from '../api/errors.js';
import { BlobType, ExtentKind, STORED_DIGEST_BYTES } from '../repo/format.js';
import { decodeMapPage, type MapExtent } from '../repo/map-page.js';
import type { Manifest } from '../repo/manifest.js';
import type { Repository } from '../repo/repository.js';

/** Loads every extent of a snapshot, in disk order. */
export async function loadExtents(repo: Repository, manifest: Manifest): Promise<MapExtent[]> {
  const out: MapExtent[] = [];
  for (const [start, length, id] of manifest.pages) {
    const page = decodeMapPage(await repo.readBlob(id, BlobType.map), `Map page ${id}`);
    if (page.startBytes !== start || page.lengthBytes !== length) {
      throw new StrataError('Corrupt', `Map page ${id} covers a different span than its snapshot says; the repository is damaged.`);
    }
    for (const e of page.extents) out.push(e);
  }
  return out;
}

export interface WindowParent {
  /** 16 bytes per block; zeros where the parent had no data (never equal to a real digest). */
  readonly digests: Buffer;
  /** Index into `extents` of the parent data extent holding each block, or -1. */
  readonly extentOf: Int32Array;
}

export class ParentView {
  private cursor = 0;
  private readonly digestCache = new Map<string, Buffer>();

  constructor(
    private readonly repo: Repository,
    readonly extents: readonly MapExtent[],
    private readonly blockSizeBytes: number,
  ) {}

  private async chunkDigests(chunkId: string): Promise<Buffer> {
    let d = this.digestCache.get(chunkId);
    if (!d) {
      d = await this.repo.readBlob(this.repo.digestsBlobId(chunkId), BlobType.digests);
      // Windows move forward, so only recently used chunks come back; keep the cache small.
      if (this.digestCache.size >= 4096) this.digestCache.delete(this.digestCache.keys().next().value!);
      this.digestCache.set(chunkId, d);
    }
    return d;
  }

  /**
   * The parent's view of [startBytes, startBytes + blocks × blockSize); calls must move forward.
   * With `onlyRuns` (window-relative, sorted), digests are loaded only for the extents those runs
   * touch — a tracked incremental compares only the few blocks it reads — and stay zero elsewhere
   * (never equal to a real digest); which extent holds each block is filled in everywhere.
   */
  async window(startBytes: number, blocks: number, onlyRuns?: readonly (readonly [number, number])[]): Promise<WindowParent> {
    const bs = this.blockSizeBytes;
    const digests = Buffer.alloc(blocks * STORED_DIGEST_BYTES);
    const extentOf = new Int32Array(blocks).fill(-1);
    const endBytes = startBytes + blocks * bs;
    while (this.cursor < this.extents.length && this.extents[this.cursor]!.startBytes + this.extents[this.cursor]!.lengthBytes <= startBytes) this.cursor++;
    for (let i = this.cursor; i < this.extents.length; i++) {
      const e = this.extents[i]!;
      if (e.startBytes >= endBytes) break;
      if (e.kind !== ExtentKind.data) continue;
      const from = Math.max(e.startBytes, startBytes);
      const to = Math.min(e.startBytes + e.lengthBytes, endBytes);
      const firstBlock = (from - startBytes) / bs;
      const blockCount = Math.ceil((to - from) / bs);
      extentOf.fill(i, firstBlock, firstBlock + blockCount);
      if (onlyRuns && !onlyRuns.some(([o, l]) => o < to - startBytes && o + l > from - startBytes)) continue;
      const chunk = await this.chunkDigests(e.chunkId!);
      const chunkBlock = (e.offsetInChunkBytes! + (from - e.startBytes)) / bs;
      const src = chunk.subarray(chunkBlock * STORED_DIGEST_BYTES, (chunkBlock + blockCount) * STORED_DIGEST_BYTES);
      if (src.length !== blockCount * STORED_DIGEST_BYTES) {
        throw new StrataError('Corrupt', `The digests of chunk ${e.chunkId} are shorter than its extents need; the repository is damaged.`);
      }
      src.copy(digests, firstBlock * STORED_DIGEST_BYTES);
    }
    return { digests, extentOf };
  }
}
