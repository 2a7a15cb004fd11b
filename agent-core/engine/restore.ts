// Restores a snapshot onto a target: data extents are written from their chunks (each chunk is
// checked against its id as it is opened), zero extents become holes or zeroes, unmapped extents
// are left alone, so an image file comes out sparse where the source had unused space.
import { StrataError } from '../api/errors.js';
import type { BlockTarget } from '../block-source.js';
import { BlobType, ExtentKind } from '../repo/format.js';
import type { MapExtent } from '../repo/map-page.js';
import type { Manifest } from '../repo/manifest.js';
import type { Repository } from '../repo/repository.js';
import type { BlockCompute } from './compute.js';
import { loadExtents } from './parent-view.js';
import type { Progress } from './progress.js';

export interface RestoreRequest {
  readonly repo: Repository;
  readonly compute: BlockCompute;
  readonly snapshotId: string;
  readonly manifest: Manifest;
  readonly target: BlockTarget;
  readonly onProgress?: (p: Progress) => void;
  readonly signal?: AbortSignal;
}

const PREFETCH_CHUNKS = 8;
const CACHE_BYTES = 64 << 20;

/** Opened chunks by id, least recently used first; fragmented chains revisit a chunk several times. */
class ChunkCache {
  private readonly map = new Map<string, Promise<Buffer>>();
  private readonly sizes = new Map<string, number>();
  private bytes = 0;

  get(id: string): Promise<Buffer> | undefined {
    const p = this.map.get(id);
    if (p) {
      this.map.delete(id);
      this.map.set(id, p);
    }
    return p;
  }

  set(id: string, p: Promise<Buffer>, sizeBytes: number): void {
    this.map.set(id, p);
    this.sizes.set(id, sizeBytes);
    this.bytes += sizeBytes;
    while (this.bytes > CACHE_BYTES && this.map.size > PREFETCH_CHUNKS * 2) {
      const oldest = this.map.keys().next().value!;
      this.map.delete(oldest);
      this.bytes -= this.sizes.get(oldest) ?? 0;
      this.sizes.delete(oldest);
    }
  }
}

export async function runRestore(req: RestoreRequest): Promise<{ bytesWritten: number; durationMs: number }> {
  const started = performance.now();
  const { repo, compute, target } = req;
  const extents = await loadExtents(repo, req.manifest);
  const dataBytes = extents.reduce((n, e) => n + (e.kind === ExtentKind.data ? e.lengthBytes : 0), 0);
  const cache = new ChunkCache();

  const openChunk = (id: string): Promise<Buffer> => {
    let p = cache.get(id);
    if (!p) {
      const entry = repo.index.get(id);
      if (!entry) {
        return Promise.reject(new StrataError('NotFound', `Chunk ${id} of snapshot ${req.snapshotId.slice(0, 12)} is missing from the repository; run \`strata verify\`.`));
      }
      p = repo.backend
        .load('data', entry.packId, entry.offset, entry.storedLength)
        .then((stored) => compute.open(stored, BlobType.data, id, entry.compression, entry.rawLength));
      p.catch(() => {}); // observed when awaited; avoid an unhandled rejection while prefetched
      cache.set(id, p, entry.rawLength);
    }
    return p;
  };

  const dataExtents: MapExtent[] = extents.filter((e) => e.kind === ExtentKind.data);
  let bytesWritten = 0;
  let next = 0; // next data extent to prefetch
  for (let i = 0; i < extents.length; i++) {
    if (req.signal?.aborted) throw new StrataError('Cancelled', 'The restore was cancelled; the target holds a partial image.');
    const e = extents[i]!;
    if (e.kind === ExtentKind.zero) {
      await target.zero(e.startBytes, e.lengthBytes);
      continue;
    }
    if (e.kind !== ExtentKind.data) continue;
    // Keep a few chunks opening ahead of the writer.
    while (next < dataExtents.length && dataExtents[next]!.startBytes < e.startBytes) next++;
    for (let k = next; k < Math.min(dataExtents.length, next + PREFETCH_CHUNKS); k++) openChunk(dataExtents[k]!.chunkId!);
    const chunk = await openChunk(e.chunkId!);
    const from = e.offsetInChunkBytes!;
    if (from + e.lengthBytes > chunk.length) {
      throw new StrataError('Corrupt', `Snapshot ${req.snapshotId.slice(0, 12)} points past the end of chunk ${e.chunkId}; the repository is damaged.`);
    }
    await target.write(e.startBytes, chunk.subarray(from, from + e.lengthBytes));
    bytesWritten += e.lengthBytes;
    req.onProgress?.({ phase: 'restore', bytesDone: bytesWritten, bytesTotal: dataBytes, elapsedMs: performance.now() - started });
  }
  await target.sync();
  return { bytesWritten, durationMs: Math.round(performance.now() - started) };
}
