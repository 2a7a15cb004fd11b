// One backup of one source into a repository: read the valid blocks, hash them, compare with the
// parent snapshot's digests, store only new chunks, and write a manifest that is complete on its
// own. Reads run in disk order; hashing, compression and sealing run on the compute pool.
import { StrataError } from '../api/errors.js';
import type { BackupMode, SnapshotSummary } from '../api/snapshot.js';
import type { BlockSource } from '../block-source.js';
import { alignExtents, intersectExtents, totalBytes, type Extent } from '../extents.js';
import { BlobType, DEFAULTS, ExtentKind, STORED_DIGEST_BYTES } from '../repo/format.js';
import { encodeMapPage, splitIntoPages, type MapExtent } from '../repo/map-page.js';
import type { Manifest } from '../repo/manifest.js';
import type { Repository } from '../repo/repository.js';
import type { BlockCompute, SealedBlob } from './compute.js';
import { loadExtents, ParentView, type WindowParent } from './parent-view.js';
import type { Progress } from './progress.js';
import { matchesStoredDigest, readAndHashWindow, RunCursor, subtractRuns, WINDOW_BYTES, WINDOWS_IN_FLIGHT } from './window-read.js';

export { mergeRuns, subtractRuns } from './window-read.js';

export interface ParentSnapshot {
  readonly id: string;
  readonly manifest: Manifest;
}

export interface BackupRequest {
  readonly source: BlockSource;
  readonly sourceName: string;
  /** Disk-absolute byte ranges that hold valid data (from the disk map). */
  readonly validExtents: readonly Extent[];
  readonly layout: unknown;
  /** Opened, exclusively locked, index loaded. */
  readonly repo: Repository;
  readonly compute: BlockCompute;
  readonly parent: ParentSnapshot | null;
  readonly full?: boolean;
  readonly tags?: readonly string[];
  readonly hostname: string;
  readonly onProgress?: (p: Progress) => void;
  readonly signal?: AbortSignal;
}

export interface ModeDecision {
  readonly mode: BackupMode;
  readonly reason: string | null;
  readonly incrementalsSinceFull: number;
}

/** The one place that decides full or incremental (the forced full read every N incrementals). */
export function chooseMode(parent: ParentSnapshot | null, full: boolean, fullEvery: number, blockSizeBytes: number): ModeDecision {
  if (!parent) return { mode: 'full', reason: 'first backup of this source', incrementalsSinceFull: 0 };
  if (full) return { mode: 'full', reason: 'a full backup was requested', incrementalsSinceFull: 0 };
  if (parent.manifest.blockSizeBytes !== blockSizeBytes) {
    return { mode: 'full', reason: 'the parent snapshot used another block size', incrementalsSinceFull: 0 };
  }
  const since = parent.manifest.incrementalsSinceFull + 1;
  if (since > fullEvery) return { mode: 'full', reason: `forced full read after ${fullEvery} incrementals`, incrementalsSinceFull: 0 };
  return { mode: 'incremental', reason: null, incrementalsSinceFull: since };
}

/** Refuses a source that shrank since its parent: its tail would silently vanish from the chain. */
export function checkSourceSize(sourceName: string, sizeBytes: number, parent: ParentSnapshot | null, full: boolean): void {
  if (!parent || full) return;
  const before = parent.manifest.summary.sourceBytes;
  if (sizeBytes < before) {
    throw new StrataError(
      'InvalidInput',
      `${sourceName} is ${sizeBytes} bytes but was ${before} bytes at its last backup (snapshot ${parent.id.slice(0, 12)}); if it was shrunk on purpose, back it up with --full to start a new chain.`,
    );
  }
}

/** Block classes inside a window. */
const C_UNMAPPED = 0;
const C_ZERO = 1;
const C_SAME = 2;
const C_NEW = 3;

interface WindowWork {
  readonly startBytes: number;
  readonly lengthBytes: number;
  readonly blocks: number;
  /** Window-relative, block-aligned runs that were read. */
  readonly runs: [number, number][];
  /** Window-relative runs that are valid but hold no data on the source (sparse holes). */
  readonly holes: [number, number][];
  readonly sab: SharedArrayBuffer | null;
  readonly hashed: Promise<{ digests: Buffer; zeroMask: Uint8Array } | null>;
  readonly parent: Promise<WindowParent | null>;
  readonly planned: Promise<WindowPlan>;
}

interface WindowPlan {
  readonly cls: Uint8Array;
  readonly digests32: Buffer;
  readonly parent: WindowParent | null;
  readonly chunks: { first: number; count: number; id: string }[];
  readonly seals: { chunk: { first: number; count: number; id: string }; length: number; sealed: Promise<SealedBlob> | null }[];
}

export async function runBackup(req: BackupRequest): Promise<{ id: string; summary: SnapshotSummary }> {
  const started = performance.now();
  const { repo, source, compute } = req;
  const cfg = repo.config;
  const bs = cfg.blockSizeBytes;
  const size = source.sizeBytes;
  const decision = chooseMode(req.parent, req.full ?? false, cfg.fullEvery, bs);
  checkSourceSize(req.sourceName, size, req.parent, req.full ?? false);

  const valid = alignExtents(req.validExtents, bs, size);
  const allocated = alignExtents(await source.allocatedExtents(), bs, size);
  const present = intersectExtents(valid, allocated);
  const validBytes = totalBytes(valid);

  const parentView =
    decision.mode === 'incremental' && req.parent ? new ParentView(repo, await loadExtents(repo, req.parent.manifest), bs) : null;

  const writer = repo.writer();
  const extents: MapExtent[] = [];
  let bytesRead = 0;
  let bytesNew = 0;
  let bytesDone = 0;
  const free: SharedArrayBuffer[] = [];
  const takeBuffer = (): SharedArrayBuffer => free.pop() ?? new SharedArrayBuffer(WINDOW_BYTES);
  const validCursor = new RunCursor(valid);
  const presentCursor = new RunCursor(present);

  source.adviseSequential();

  const push = (e: MapExtent): void => {
    const last = extents[extents.length - 1];
    if (
      last &&
      last.kind === e.kind &&
      last.startBytes + last.lengthBytes === e.startBytes &&
      (e.kind !== ExtentKind.data || (last.chunkId === e.chunkId && last.offsetInChunkBytes! + last.lengthBytes === e.offsetInChunkBytes))
    ) {
      extents[extents.length - 1] = { ...last, lengthBytes: last.lengthBytes + e.lengthBytes };
    } else {
      extents.push(e);
    }
  };

  const startWindow = (ws: number): WindowWork => {
    const we = Math.min(size, ws + WINDOW_BYTES);
    const blocks = Math.ceil((we - ws) / bs);
    const validRuns = validCursor.within(ws, we);
    const presentRuns = presentCursor.within(ws, we);
    const holes = subtractRuns(validRuns, presentRuns);
    const parent = parentView && validRuns.length > 0 ? parentView.window(ws, blocks) : Promise.resolve(null);
    if (presentRuns.length === 0) {
      const w = { startBytes: ws, lengthBytes: we - ws, blocks, runs: [], holes, sab: null, hashed: Promise.resolve(null), parent };
      return { ...w, planned: planWindow(w) };
    }
    const sab = takeBuffer();
    const hashed = readAndHashWindow(
      source,
      compute,
      sab,
      ws,
      presentRuns,
      (l) => (bytesRead += l),
      (at) => new StrataError('InvalidInput', `${req.sourceName} ended early at ${at} bytes; it changed size during the backup.`),
    );
    const w = { startBytes: ws, lengthBytes: we - ws, blocks, runs: presentRuns, holes, sab, hashed, parent };
    const planned = planWindow(w);
    planned.catch(() => {}); // observed in commitWindow
    return { ...w, planned };
  };

  // Runs as soon as a window's hashes arrive, so its seals start without waiting for earlier windows.
  const planWindow = async (w: Omit<WindowWork, 'planned'>): Promise<WindowPlan> => {
    const cls = new Uint8Array(w.blocks); // C_UNMAPPED by default
    const digests32 = Buffer.alloc(w.blocks * 32);
    const hashed = await w.hashed;
    const parent = await w.parent;
    for (const [o, l] of w.holes) cls.fill(C_ZERO, o / bs, Math.ceil((o + l) / bs));
    if (hashed) {
      let k = 0;
      for (const [o, l] of w.runs) {
        const first = o / bs;
        const n = Math.ceil(l / bs);
        hashed.digests.copy(digests32, first * 32, k * 32, (k + n) * 32);
        for (let b = 0; b < n; b++) {
          const blk = first + b;
          if (hashed.zeroMask[k + b]) cls[blk] = C_ZERO;
          else if (parent && parent.extentOf[blk]! >= 0 && matchesStoredDigest(digests32, blk, parent.digests, blk)) cls[blk] = C_SAME;
          else cls[blk] = C_NEW;
        }
        k += n;
      }
    }

    // Per slot: store changed runs, or the whole slot when most of it changed.
    const slotBlocks = cfg.slotBytes / bs;
    const chunks: { first: number; count: number; id: string }[] = [];
    for (let s0 = 0; s0 < w.blocks; s0 += slotBlocks) {
      const s1 = Math.min(w.blocks, s0 + slotBlocks);
      if (parent) {
        let newCount = 0;
        let dataCount = 0;
        for (let b = s0; b < s1; b++) {
          if (cls[b] === C_NEW) newCount++;
          if (cls[b] === C_NEW || cls[b] === C_SAME) dataCount++;
        }
        if (newCount > 0 && newCount >= DEFAULTS.wholeSlotChangedShare * dataCount) {
          for (let b = s0; b < s1; b++) if (cls[b] === C_SAME) cls[b] = C_NEW;
        }
      }
      for (let b = s0; b < s1; ) {
        if (cls[b] !== C_NEW) {
          b++;
          continue;
        }
        let e = b;
        while (e < s1 && cls[e] === C_NEW) e++;
        chunks.push({ first: b, count: e - b, id: repo.chunkId(digests32.subarray(b * 32, e * 32)) });
        b = e;
      }
    }

    const seals = chunks.map((c) => {
      const offset = c.first * bs;
      const length = Math.min(w.lengthBytes, (c.first + c.count) * bs) - offset;
      const needData = !writer.has(c.id);
      return {
        chunk: c,
        length,
        sealed: needData ? compute.seal(w.sab!, offset, length, BlobType.data, c.id) : null,
      };
    });
    for (const s of seals) s.sealed?.catch(() => {}); // observed in commitWindow
    return { cls, digests32, parent, chunks, seals };
  };

  // Runs in disk order: adds the window's blobs to the packs and its extents to the map.
  const commitWindow = async (w: WindowWork): Promise<void> => {
    const { cls, digests32, parent, chunks, seals } = await w.planned;
    for (const s of seals) {
      if (s.sealed) {
        const r = await s.sealed;
        if (!writer.has(s.chunk.id)) {
          await writer.add(BlobType.data, r.compression, s.chunk.id, r.sealed, r.rawLength);
          bytesNew += s.length;
        }
      }
      // A killed run may have stored a chunk without its digests; store them whenever missing.
      const digestsId = repo.digestsBlobId(s.chunk.id);
      if (!writer.has(digestsId)) {
        const d16 = Buffer.alloc(s.chunk.count * STORED_DIGEST_BYTES);
        for (let b = 0; b < s.chunk.count; b++) digests32.copy(d16, b * STORED_DIGEST_BYTES, (s.chunk.first + b) * 32, (s.chunk.first + b) * 32 + STORED_DIGEST_BYTES);
        await writer.addPlain(BlobType.digests, digestsId, d16, false);
      }
    }

    // Emit the window's extents in disk order.
    const chunkOf = new Int32Array(w.blocks).fill(-1);
    chunks.forEach((c, i) => chunkOf.fill(i, c.first, c.first + c.count));
    for (let b = 0; b < w.blocks; ) {
      const c = cls[b]!;
      let e = b + 1;
      if (c === C_SAME) {
        const pe = parent!.extentOf[b]!;
        while (e < w.blocks && cls[e] === C_SAME && parent!.extentOf[e] === pe) e++;
      } else if (c === C_NEW) {
        while (e < w.blocks && chunkOf[e] === chunkOf[b]) e++;
      } else {
        while (e < w.blocks && cls[e] === c) e++;
      }
      const start = w.startBytes + b * bs;
      const length = Math.min(w.startBytes + w.lengthBytes, w.startBytes + e * bs) - start;
      if (c === C_UNMAPPED) push({ startBytes: start, lengthBytes: length, kind: ExtentKind.unmapped });
      else if (c === C_ZERO) push({ startBytes: start, lengthBytes: length, kind: ExtentKind.zero });
      else if (c === C_SAME) {
        const pe = parentView!.extents[parent!.extentOf[b]!]!;
        push({ startBytes: start, lengthBytes: length, kind: ExtentKind.data, chunkId: pe.chunkId!, offsetInChunkBytes: pe.offsetInChunkBytes! + (start - pe.startBytes) });
      } else {
        const ch = chunks[chunkOf[b]!]!;
        push({ startBytes: start, lengthBytes: length, kind: ExtentKind.data, chunkId: ch.id, offsetInChunkBytes: (b - ch.first) * bs });
      }
      b = e;
    }

    if (w.sab) free.push(w.sab);
    for (const [, l] of w.runs) bytesDone += l;
    for (const [, l] of w.holes) bytesDone += l;
    req.onProgress?.({ phase: 'backup', bytesDone, bytesTotal: validBytes, elapsedMs: performance.now() - started });
  };

  const inflight: WindowWork[] = [];
  for (let ws = 0; ws < size; ws += WINDOW_BYTES) {
    if (req.signal?.aborted) throw new StrataError('Cancelled', 'The backup was cancelled; what was stored so far will be reused by the next run.');
    if (inflight.length >= WINDOWS_IN_FLIGHT) await commitWindow(inflight.shift()!);
    inflight.push(startWindow(ws));
  }
  while (inflight.length > 0) await commitWindow(inflight.shift()!);

  const pages: [number, number, string][] = [];
  for (const page of splitIntoPages(extents, size, cfg.mapPageBytes)) {
    const plain = encodeMapPage(page.startBytes, page.lengthBytes, page.extents);
    const id = repo.mapPageId(plain);
    await writer.addPlain(BlobType.map, id, plain, true);
    pages.push([page.startBytes, page.lengthBytes, id]);
  }
  await writer.finish();

  const durationMs = Math.round(performance.now() - started);
  const manifest: Manifest = {
    format: 1,
    summary: {
      sourceId: repo.sourceId(req.sourceName),
      sourceName: req.sourceName,
      parentId: req.parent?.id ?? null,
      mode: decision.mode,
      modeReason: decision.reason,
      tracker: 'none',
      createdAt: new Date().toISOString(),
      hostname: req.hostname,
      tags: [...(req.tags ?? [])],
      sourceBytes: size,
      validBytes,
      bytesRead,
      bytesNew,
      bytesStored: 0,
      durationMs,
    },
    blockSizeBytes: bs,
    slotBytes: cfg.slotBytes,
    mapPageBytes: cfg.mapPageBytes,
    incrementalsSinceFull: decision.incrementalsSinceFull,
    layout: req.layout ?? null,
    pages,
  };
  // bytesStored counts the manifest too; its own size depends on the number, so settle it in two passes.
  manifest.summary.bytesStored = writer.bytesStored;
  const probe = JSON.stringify(manifest).length;
  manifest.summary.bytesStored = writer.bytesStored + probe + 64;
  const saved = await repo.saveManifest(manifest);
  return { id: saved.id, summary: { id: saved.id, ...manifest.summary } };
}
