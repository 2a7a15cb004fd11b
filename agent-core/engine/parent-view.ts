// The parent snapshot as the incremental sees it: its extents in disk order and, per block, the
// stored digest to compare against. Walked forward once, window by window.
import { StrataError } from '../api/errors.js';
import { BlobType, ExtentKind, STORED_DIGEST_BYTES } from '../repo/format.js';
import { decodeMapPage, type MapExtent } from '../repo/map-page.js';
import type { Manifest } from '../repo/manifest.js';
import type { Repository } from '../repo/repository.js';

/** Map pages read at a time: each is a small read of its own, and on a cold cache they wait on the disk. */
const PAGES_IN_FLIGHT = 16;

/** Loads every extent of a snapshot, in disk order (from the repository's memo when it holds them). */
export async function loadExtents(repo: Repository, manifest: Manifest): Promise<readonly MapExtent[]> {
  const kept = repo.memo?.mapOf(manifest.pages);
  if (kept) return kept;
  const out: MapExtent[] = [];
  const pages = manifest.pages;
  for (let first = 0; first < pages.length; first += PAGES_IN_FLIGHT) {
    const batch = pages.slice(first, first + PAGES_IN_FLIGHT);
    const blobs = await Promise.all(batch.map(([, , id]) => repo.readBlob(id, BlobType.map)));
    batch.forEach(([start, length, id], i) => {
      const page = decodeMapPage(blobs[i]!, `Map page ${id}`);
      if (page.startBytes !== start || page.lengthBytes !== length) {
        throw new StrataError('Corrupt', `Map page ${id} covers a different span than its snapshot says; the repository is damaged.`);
      }
      for (const e of page.extents) out.push(e);
    });
  }
  repo.memo?.keepMap(manifest.pages, out);
  return out;
}

/** A digests blob a window needs that no earlier window started to load. */
interface Missing {
  readonly blobId: string;
  readonly settle: { resolve(b: Buffer): void; reject(err: unknown): void };
}

export interface WindowParent {
  /** 16 bytes per block; zeros where the parent had no data (never equal to a real digest). */
  readonly digests: Buffer;
  /** Index into `extents` of the parent data extent holding each block, or -1. */
  readonly extentOf: Int32Array;
}

/**
 * The parent as one window of a backup sees it, kept to what the window reads: per read block (in
 * the order of the window's runs, as their digests come from the pool), which parent data extent
 * holds it and its stored digest. The blocks it does not read are mapped from `extents` directly.
 */
export interface ReadParent {
  /** Index in the view's extents of the first one that ends after the window's start. */
  readonly first: number;
  /** 16 bytes per read block; zeros where the parent had no data or none were asked for (never equal to a real digest). */
  readonly digests: Buffer;
  /** Index in the view's extents of the data extent holding each read block, or -1. */
  readonly dataOf: Int32Array;
}

export class ParentView {
  private cursor = 0;
  /** Loads started or done, so windows in flight that share a chunk read its digests once. */
  private readonly digestCache = new Map<string, Promise<Buffer>>();

  constructor(
    private readonly repo: Repository,
    readonly extents: readonly MapExtent[],
    private readonly blockSizeBytes: number,
  ) {}

  /** The chunk's digests: loaded or being loaded, else queued on `missing` for loadMissing. */
  private chunkDigests(chunkId: string, missing: Missing[]): Promise<Buffer> {
    let d = this.digestCache.get(chunkId);
    if (!d) {
      let settle!: Missing['settle'];
      d = new Promise<Buffer>((resolve, reject) => (settle = { resolve, reject }));
      missing.push({ blobId: this.repo.digestsBlobId(chunkId), settle });
      // Windows move forward, so only recently used chunks come back; keep the cache small.
      if (this.digestCache.size >= 4096) this.digestCache.delete(this.digestCache.keys().next().value!);
      this.digestCache.set(chunkId, d);
    }
    return d;
  }

  /**
   * Copies the stored digests of blockCount blocks of data extent e, from byte `from` of the disk, to
   * block `at` of `digests`, once its chunk's digests blob is loaded (queued on `missing` if needed).
   */
  private copyDigests(e: MapExtent, from: number, blockCount: number, digests: Buffer, at: number, missing: Missing[]): Promise<void> {
    const chunkBlock = (e.offsetInChunkBytes! + (from - e.startBytes)) / this.blockSizeBytes;
    return this.chunkDigests(e.chunkId!, missing).then((chunk) => {
      const src = chunk.subarray(chunkBlock * STORED_DIGEST_BYTES, (chunkBlock + blockCount) * STORED_DIGEST_BYTES);
      if (src.length !== blockCount * STORED_DIGEST_BYTES) {
        throw new StrataError('Corrupt', `The digests of chunk ${e.chunkId} are shorter than its extents need; the repository is damaged.`);
      }
      src.copy(digests, at * STORED_DIGEST_BYTES);
    });
  }

  /** Reads a window's missing digests blobs together (one open per pack, repository.ts readBlobs). */
  private loadMissing(missing: readonly Missing[]): void {
    if (missing.length === 0) return;
    this.repo.readBlobs(
      missing.map((m) => m.blobId),
      BlobType.digests,
    ).then(
      (blobs) => missing.forEach((m, i) => m.settle.resolve(blobs[i]!)),
      (err: unknown) => missing.forEach((m) => m.settle.reject(err)),
    );
  }

  /**
   * The parent under the runs (window-relative, sorted, disjoint, block-aligned) of the window at
   * startBytes; calls must move forward. Work and memory follow the runs and the extents they
   * touch, not the window's blocks: a tracked incremental's windows read a few blocks each, or
   * none. With `withDigests`, the stored digests of the read blocks are loaded (a window's missing
   * digests blobs together); otherwise only which extent holds each read block.
   */
  async readWindow(startBytes: number, runs: readonly (readonly [number, number])[], withDigests: boolean): Promise<ReadParent> {
    const bs = this.blockSizeBytes;
    const extents = this.extents;
    while (this.cursor < extents.length && extents[this.cursor]!.startBytes + extents[this.cursor]!.lengthBytes <= startBytes) this.cursor++;
    const first = this.cursor;
    let readBlocks = 0;
    for (const [, l] of runs) readBlocks += Math.ceil(l / bs);
    const dataOf = new Int32Array(readBlocks).fill(-1);
    const digests = Buffer.alloc(withDigests ? readBlocks * STORED_DIGEST_BYTES : 0);
    if (readBlocks === 0) return { first, digests, dataOf };
    const copies: Promise<void>[] = [];
    const missing: Missing[] = [];
    let i = first;
    let k = 0;
    for (const [o, l] of runs) {
      const rs = startBytes + o;
      const re = rs + l;
      while (i < extents.length && extents[i]!.startBytes + extents[i]!.lengthBytes <= rs) i++;
      for (let j = i; j < extents.length; j++) {
        const e = extents[j]!;
        if (e.startBytes >= re) break;
        if (e.kind !== ExtentKind.data) continue;
        const from = Math.max(e.startBytes, rs);
        const to = Math.min(e.startBytes + e.lengthBytes, re);
        const firstK = k + Math.floor((from - rs) / bs);
        const blockCount = Math.ceil((to - from) / bs);
        dataOf.fill(j, firstK, firstK + blockCount);
        if (!withDigests) continue;
        copies.push(this.copyDigests(e, from, blockCount, digests, firstK, missing));
      }
      k += Math.ceil(l / bs);
    }
    this.loadMissing(missing);
    await Promise.all(copies);
    return { first, digests, dataOf };
  }

  /**
   * The parent's view of [startBytes, startBytes + blocks × blockSize), every block's stored digest
   * (zero where it holds no data) and extent; calls must move forward. A restore's read-back
   * compares every block with it.
   */
  async window(startBytes: number, blocks: number): Promise<WindowParent> {
    const bs = this.blockSizeBytes;
    const digests = Buffer.alloc(blocks * STORED_DIGEST_BYTES);
    const extentOf = new Int32Array(blocks).fill(-1);
    const endBytes = startBytes + blocks * bs;
    while (this.cursor < this.extents.length && this.extents[this.cursor]!.startBytes + this.extents[this.cursor]!.lengthBytes <= startBytes) this.cursor++;
    // The window's digests blobs are loaded side by side: on a cold cache each is a small read of
    // its own, and one after another they would wait out each other's latency.
    const copies: Promise<void>[] = [];
    const missing: Missing[] = [];
    for (let i = this.cursor; i < this.extents.length; i++) {
      const e = this.extents[i]!;
      if (e.startBytes >= endBytes) break;
      if (e.kind !== ExtentKind.data) continue;
      const from = Math.max(e.startBytes, startBytes);
      const to = Math.min(e.startBytes + e.lengthBytes, endBytes);
      const firstBlock = (from - startBytes) / bs;
      const blockCount = Math.ceil((to - from) / bs);
      extentOf.fill(i, firstBlock, firstBlock + blockCount);
      copies.push(this.copyDigests(e, from, blockCount, digests, firstBlock, missing));
    }
    this.loadMissing(missing);
    await Promise.all(copies);
    return { digests, extentOf };
  }
}
