// One backup of one source into a repository: read the valid blocks (with a live tracker that can
// vouch, only the changed ones), hash them, compare with the parent snapshot's digests, store only
// new chunks, and write a manifest that is complete on its own. Reads run in disk order; hashing,
// compression and sealing run on the compute pool.
import { StrataError } from '../api/errors.js';
import type { BackupMode, SnapshotSummary } from '../api/snapshot.js';
import { converge, type Convergence } from './converge.js';
import type { BlockSource } from '../block-source.js';
import { alignExtents, complementExtents, intersectExtents, normalizeExtents, totalBytes, type Extent } from '../extents.js';
import { BlobType, Compression, DEFAULTS, ExtentKind, STORED_DIGEST_BYTES } from '../repo/format.js';
import { encodeMapPage, splitIntoPages, type MapExtent } from '../repo/map-page.js';
import type { Manifest } from '../repo/manifest.js';
import type { BlobWriter, Repository } from '../repo/repository.js';
import type { BlockCompute, SealedBlob, SealItem } from './compute.js';
import { loadExtents, ParentView, type ReadParent } from './parent-view.js';
import type { Progress } from './progress.js';
import { matchesStoredDigest, mergeRuns, storedDigests, READ_GAP_BYTES, readAndHashWindow, RunCursor, subtractRuns, WINDOW_BYTES, WINDOWS_IN_FLIGHT } from './window-read.js';
export { mergeRuns, subtractRuns } from './window-read.js';
export type { Convergence } from './converge.js';

/**
 * Windows that packs not yet written may hold at once (chunks stored in place), 192 MiB: a full
 * backup at the default pack size holds about 35 (five packs of ~7 windows each).
 */
const MAX_PINNED_WINDOWS = 48;

/** A new chunk of a window, and its stored form on the way (null: already in the repository or queued). */
interface ChunkSeal {
  readonly chunk: WindowChunk;
  readonly offset: number;
  readonly length: number;
  readonly sealed: Promise<SealedBlob> | null;
}
/**
 * Windows in flight in all in a tracked pass, most of them with nothing to read (WINDOWS_IN_FLIGHT
 * bounds those that read). Other passes keep to WINDOWS_IN_FLIGHT in all: letting empty windows run
 * ahead made a 1 GiB full ~7 % slower (2.82–3.03 s against 2.61–2.83 s, three alternated pairs).
 */
const TRACKED_WINDOWS_IN_FLIGHT = 64;
/** A window that read at most this much copies its chunks out rather than being held for them (1 MiB). */
const SPARSE_WINDOW_BYTES = 1 << 20;
/**
 * A packed pass's window (a tracked incremental's, a convergence's re-read) spans as many 4 MiB
 * steps of the disk as it takes to read this much (1 MiB), up to PACKED_SPAN_BYTES: what a window
 * costs besides its bytes (its reads, its messages to the pool, its parent's digests) is then paid
 * once per MiB read, not once per 4 MiB of disk.
 */
const PACKED_READ_BYTES = 1 << 20;
const PACKED_SPAN_BYTES = 256 << 20;
/**
 * How much of the disk a packed window's gathered chunk may span (8 MiB): a restore walks the disk
 * in order and keeps chunks it will come back to in a 64 MiB cache (restore.ts), so a chunk whose
 * blocks lie within a few slots of each other is opened once.
 */
const GATHER_SPAN_BYTES = 8 << 20;
/** How far ahead of the window being started the source is asked to read ahead (48 MiB). */
const PREFETCH_WINDOWS = 12;
/** Chunks are sent to the pool in batches of at least this many bytes (the last of a window may be smaller). */
const SEAL_BATCH_BYTES = 1 << 20;

export interface ParentSnapshot {
  readonly id: string;
  readonly manifest: Manifest;
}

/**
 * What a live tracker says changed since the previous take (drivers/tracker/live-tracker.ts): the
 * agent takes it right before the backup reads, and the engine decides whether it may trust it.
 */
export interface TrackedChanges {
  /** Byte extents written, discarded or zeroed during the epoch that just ended (block-aligned). */
  readonly changes: readonly Extent[];
  /** The key of the epoch that starts now; the snapshot stores it as trackerEpoch. */
  readonly epochKey: string;
  /** The key `changes` were recorded under; trusted only if it equals the parent's trackerEpoch. */
  readonly previousEpochKey: string;
  /** Null when the tracker saw every write of the epoch; otherwise why it may not have. */
  readonly gapReason: string | null;
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
  /** The live tracker's take, when the source is tracked; absent or null otherwise. */
  readonly tracked?: TrackedChanges | null;
  readonly tags?: readonly string[];
  readonly hostname: string;
  readonly onProgress?: (p: Progress) => void;
  /** Told, one sentence each, what a person should know about this backup (a tracker that missed writes). */
  readonly onWarning?: (message: string) => void;
  readonly signal?: AbortSignal;
  /** The source is being written while it is read (a mounted filesystem): converge, then freeze. */
  readonly converge?: Convergence;
  /** Windows unwritten packs may hold (MAX_PINNED_WINDOWS); tests lower it to exercise copying chunks out of their windows. */
  readonly maxPinnedWindows?: number;
}

export interface BackupResult {
  readonly id: string;
  readonly summary: SnapshotSummary;
  /**
   * Blocks a full read with a vouching tracker found changed although the tracker had not marked
   * them (each also reported through onWarning); null when no such check was made.
   */
  readonly trackerMisses: number | null;
}

export interface ModeDecision {
  readonly mode: BackupMode;
  readonly reason: string | null;
  readonly incrementalsSinceFull: number;
  /** Read only valid ∩ (changed ∪ blocks the parent holds nothing for); the tracker vouches for the rest. */
  readonly trackedRead: boolean;
  /** A full read under a vouching tracker: count the blocks that differ from the parent but were not marked. */
  readonly checkTracker: boolean;
}

/**
 * Why a tracker's take cannot be trusted against this parent, or null when it can: its changes were
 * recorded under the key the parent was read under, and it saw every write since.
 */
export function trackerDistrust(parent: ParentSnapshot, tracked: Pick<TrackedChanges, 'previousEpochKey' | 'gapReason'>): string | null {
  if (tracked.gapReason !== null) return `the tracker may have missed writes since the last backup (${tracked.gapReason})`;
  const stored = parent.manifest.trackerEpoch ?? null;
  if (stored === null) return 'the last backup was not taken under the live tracker';
  if (stored !== tracked.previousEpochKey) {
    return 'the tracker restarted since the last backup, or a backup after it did not finish (its epoch key differs)';
  }
  return null;
}

/**
 * The one place that decides full, incremental, tracked incremental or resync, and the forced full
 * read every N incrementals. A tracker's take shortens an incremental only when it can vouch for
 * it; otherwise the backup is a resync, which reads and compares every valid block as an untracked
 * incremental does. The forced full under a vouching tracker doubles as a check of the tracker.
 */
export function chooseMode(
  parent: ParentSnapshot | null,
  full: boolean,
  fullEvery: number,
  blockSizeBytes: number,
  tracked: Pick<TrackedChanges, 'previousEpochKey' | 'gapReason'> | null = null,
): ModeDecision {
  const plain = { trackedRead: false, checkTracker: false };
  if (!parent) return { mode: 'full', reason: 'first backup of this source', incrementalsSinceFull: 0, ...plain };
  const sameBlockSize = parent.manifest.blockSizeBytes === blockSizeBytes;
  const distrust = tracked ? trackerDistrust(parent, tracked) : null;
  const checkTracker = tracked !== null && distrust === null && sameBlockSize;
  if (full) return { mode: 'full', reason: 'a full backup was requested', incrementalsSinceFull: 0, trackedRead: false, checkTracker };
  if (!sameBlockSize) return { mode: 'full', reason: 'the parent snapshot used another block size', incrementalsSinceFull: 0, ...plain };
  const since = parent.manifest.incrementalsSinceFull + 1;
  if (since > fullEvery) {
    return { mode: 'full', reason: `forced full read after ${fullEvery} incrementals`, incrementalsSinceFull: 0, trackedRead: false, checkTracker };
  }
  if (!tracked) return { mode: 'incremental', reason: null, incrementalsSinceFull: since, ...plain };
  if (distrust !== null) return { mode: 'resync', reason: distrust, incrementalsSinceFull: since, ...plain };
  return { mode: 'incremental', reason: null, incrementalsSinceFull: since, trackedRead: true, checkTracker: false };
}

/**
 * What a tracked incremental reads: the present blocks the tracker saw changed, and every present
 * block the parent holds nothing for (not valid then, or beyond its end) — a block that became valid
 * without being written is read all the same. The rest the parent holds as data or zeros.
 */
export function trackedReadExtents(present: readonly Extent[], changes: readonly Extent[], parentExtents: readonly MapExtent[], parentSizeBytes: number, blockSizeBytes: number, sizeBytes: number): Extent[] {
  const bs = blockSizeBytes;
  // Whole blocks only: the parent's last partial block counts as not held, so it is read.
  const parentWhole = Math.floor(Math.min(parentSizeBytes, sizeBytes) / bs) * bs;
  const held: Extent[] = [];
  for (const e of parentExtents) {
    if (e.kind === ExtentKind.unmapped) continue;
    const start = Math.ceil(e.startBytes / bs) * bs;
    const end = Math.min(parentWhole, Math.floor((e.startBytes + e.lengthBytes) / bs) * bs);
    if (end > start) held.push({ startBytes: start, lengthBytes: end - start });
  }
  const notHeld = complementExtents(normalizeExtents(held), sizeBytes);
  return intersectExtents(present, normalizeExtents([...alignExtents(changes, bs, sizeBytes), ...notHeld]));
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

/** Classes of a read block (a block not read is mapped from the runs it lies in). */
const C_ZERO = 1;
const C_SAME = 2;
const C_NEW = 3;
/** Parts of a window when its extents are emitted: valid but not present, kept from the base, read. */
const P_HOLE = 0;
const P_KEPT = 1;
const P_READ = 2;
const NO_BLOCKS = new Uint8Array(0);
const NO_INDEX = new Int32Array(0);

/** A new chunk of a window: `count` blocks from window block `first`, whose digests start at read block `at`. */
interface WindowChunk {
  readonly first: number;
  readonly count: number;
  readonly at: number;
  readonly id: string;
}

interface WindowWork {
  readonly startBytes: number;
  readonly lengthBytes: number;
  /** Window-relative, block-aligned runs that were read. */
  readonly runs: [number, number][];
  /** The runs were read packed (window-read.ts): read block k is at k × the block size of the buffer. */
  readonly packed: boolean;
  /** Window-relative runs that are valid but hold no data on the source (sparse holes). */
  readonly holes: [number, number][];
  /** Window-relative runs a tracked incremental takes from the parent without reading them. */
  readonly kept: [number, number][];
  /** For the tracker check: window-relative runs the tracker marked, and runs the parent held as zeros. */
  readonly marked: [number, number][] | null;
  readonly parentZeros: [number, number][] | null;
  readonly sab: SharedArrayBuffer | null;
  readonly hashed: Promise<{ digests: Buffer; zeroMask: Uint8Array } | null>;
  readonly parent: Promise<ReadParent | null>;
  readonly planned: Promise<WindowPlan>;
}

/** One pass over the disk (the backup's read, or a convergence pass re-reading what changed). */
export interface PassPlan {
  /** Where this pass reads (a convergence's frozen pass reads what it captured in memory). */
  readonly source: BlockSource;
  /** Blocks the map holds as data or zeros; the rest is unmapped. */
  readonly valid: readonly Extent[];
  /** Valid blocks the source may hold data for; valid blocks outside are zeros (sparse holes). */
  readonly present: readonly Extent[];
  readonly toRead: readonly Extent[];
  /** Present blocks left unread are taken from the base (a tracked incremental's parent, a convergence's previous pass). */
  readonly keepUnread: boolean;
  /** The map unread blocks are taken from, and (when compare) whose digests classify the read ones. */
  readonly base: readonly MapExtent[] | null;
  readonly compare: boolean;
  /** For the tracker check of a full read: the blocks the tracker marked, and those the parent held as zeros. */
  readonly marked: RunCursor | null;
  readonly parentZeros: RunCursor | null;
  /** Gap read through between runs (window-read.ts); 0 reads only the runs. */
  readonly readGapBytes: number | undefined;
  /**
   * Windows span the disk until they read PACKED_READ_BYTES, their runs packed in one buffer, and
   * new blocks are gathered into chunks across GATHER_SPAN_BYTES (a pass that reads little and
   * stores what it reads: compare must be false).
   */
  readonly packed?: boolean;
  readonly reportProgress: boolean;
}

/** A window's read blocks, classified: each array has one entry per read block, in run order. */
interface WindowPlan {
  readonly cls: Uint8Array;
  /** The pool's 32-byte digests of the read blocks; null when the window read nothing. */
  readonly digests: Buffer | null;
  /** Window block of each read block. */
  readonly blockOf: Int32Array;
  /** Index in `chunks` of each new read block, else -1. */
  readonly chunkOf: Int32Array;
  readonly parent: ReadParent | null;
  readonly chunks: WindowChunk[];
  readonly seals: ChunkSeal[];
}

export async function runBackup(req: BackupRequest): Promise<BackupResult> {
  const writer = req.repo.writer();
  try {
    return await backupWith(req, writer);
  } catch (err) {
    // The pack being filled is dropped; packs already written stay for the next run to reuse.
    await writer.abandon();
    throw err;
  }
}

async function backupWith(req: BackupRequest, writer: BlobWriter): Promise<BackupResult> {
  const started = performance.now();
  const { repo, source, compute } = req;
  const cfg = repo.config;
  const bs = cfg.blockSizeBytes;
  const size = source.sizeBytes;
  const tracked = req.tracked ?? null;
  const decision = chooseMode(req.parent, req.full ?? false, cfg.fullEvery, bs, tracked);
  checkSourceSize(req.sourceName, size, req.parent, req.full ?? false);

  const valid = alignExtents(req.validExtents, bs, size);
  const allocated = alignExtents(await source.allocatedExtents(), bs, size);
  const present = intersectExtents(valid, allocated);
  const validBytes = totalBytes(valid);

  // Incrementals and resyncs classify blocks against the parent; a checked full only compares.
  const compareWithParent = decision.mode !== 'full';
  const parentExtents = req.parent && (compareWithParent || decision.checkTracker) ? await loadExtents(repo, req.parent.manifest) : null;
  const toRead =
    decision.trackedRead && tracked && parentExtents && req.parent
      ? trackedReadExtents(present, tracked.changes, parentExtents, req.parent.manifest.summary.sourceBytes, bs, size)
      : present;
  let trackerMisses = 0;
  let firstMissBytes = -1;
  // A parent's last partial block was hashed short; compare it only if the size did not change.
  const comparableEndBytes = req.parent && req.parent.manifest.summary.sourceBytes === size ? size : Math.floor(Math.min(req.parent?.manifest.summary.sourceBytes ?? 0, size) / bs) * bs;

  let bytesRead = 0;
  let bytesNew = 0;
  let bytesDone = 0;
  // Window buffers are reused. A window's chunks are stored in place (the workers write each
  // chunk's stored bytes over its raw ones, and the packs are written from there), so a buffer goes
  // back to the free list only once its window is committed and every pack holding one of its
  // chunks is written. Pinning is bounded: highly compressible data, or a few small chunks spread
  // over many windows, would otherwise hold a window each for little stored data; past the bound a
  // chunk is copied out of its window instead.
  const free: SharedArrayBuffer[] = [];
  const uncommitted = new Set<SharedArrayBuffer>();
  const packHolds = new Map<SharedArrayBuffer, number>();
  const reuseIfIdle = (sab: SharedArrayBuffer): void => {
    if (!uncommitted.has(sab) && !packHolds.has(sab)) free.push(sab);
  };
  const takeBuffer = (): SharedArrayBuffer => {
    const sab = free.pop() ?? new SharedArrayBuffer(WINDOW_BYTES);
    uncommitted.add(sab);
    return sab;
  };
  const committed = (sab: SharedArrayBuffer): void => {
    uncommitted.delete(sab);
    reuseIfIdle(sab);
  };
  /** The bytes of a chunk stored in place, for a pack: held in its window, or copied out when too many windows are held. */
  const storedInPlace = (sab: SharedArrayBuffer, offset: number, length: number, sparse: boolean): { bytes: Buffer; written?: () => void } => {
    const bytes = Buffer.from(sab, offset, length);
    if (sparse || (!packHolds.has(sab) && packHolds.size >= (req.maxPinnedWindows ?? MAX_PINNED_WINDOWS))) return { bytes: Buffer.from(bytes) };
    packHolds.set(sab, (packHolds.get(sab) ?? 0) + 1);
    const written = (): void => {
      const n = packHolds.get(sab)! - 1;
      if (n > 0) return void packHolds.set(sab, n);
      packHolds.delete(sab);
      reuseIfIdle(sab);
    };
    return { bytes, written };
  };

  source.adviseSequential();

  /** One pass over the disk: reads its runs, stores what is new and returns the whole disk's map. */
  const scan = async (pass: PassPlan): Promise<MapExtent[]> => {
    if (pass.packed && pass.compare) throw new StrataError('Internal', 'A packed pass stores what it reads; it cannot compare with its base.');
    const extents: MapExtent[] = [];
    const validCursor = new RunCursor(pass.valid);
    const presentCursor = new RunCursor(pass.present);
    const readCursor = new RunCursor(pass.toRead);
    const view = pass.base ? new ParentView(repo, pass.base, bs) : null;
    const base = pass.base ?? [];
    // The base's stored digests are loaded only to compare read blocks with (or to check the tracker).
    const needDigests = pass.compare || pass.marked !== null;

    const push = (e: MapExtent): void => {
      const last = extents[extents.length - 1];
      if (
        last &&
        last.kind === e.kind &&
        last.startBytes + last.lengthBytes === e.startBytes &&
        (e.kind !== ExtentKind.data || (last.chunkId === e.chunkId && last.offsetInChunkBytes! + last.lengthBytes === e.offsetInChunkBytes))
      ) {
        // Every extent here was made by this pass (commitWindow's literals), so it may grow in place.
        (last as { lengthBytes: number }).lengthBytes += e.lengthBytes;
      } else {
        extents.push(e);
      }
    };

    const startWindow = (ws: number, we: number): WindowWork => {
      const packed = pass.packed ?? false;
      const validRuns = validCursor.within(ws, we);
      const presentRuns = presentCursor.within(ws, we);
      const readRuns = readCursor.within(ws, we);
      const holes = subtractRuns(validRuns, presentRuns);
      const kept = pass.keepUnread ? subtractRuns(presentRuns, readRuns) : [];
      const marked = pass.marked ? pass.marked.within(ws, we) : null;
      const parentZeros = pass.parentZeros ? pass.parentZeros.within(ws, we) : null;
      // The base under the blocks read: which extent holds each (and its stored digest, when read
      // blocks are compared or the tracker checked). Blocks not read are mapped from the base's
      // extents as they are, so a window with nothing to read costs its runs and extents, not its blocks.
      const parent = view === null || validRuns.length === 0 ? Promise.resolve(null) : view.readWindow(ws, needDigests ? readRuns : [], needDigests);
      const common = { startBytes: ws, lengthBytes: we - ws, packed, holes, kept, marked, parentZeros, parent };
      if (readRuns.length === 0) {
        const w = { ...common, runs: [], sab: null, hashed: Promise.resolve(null) };
        const planned = planWindow(w);
        planned.catch(() => {}); // observed in commitWindow
        return { ...w, planned };
      }
      const sab = takeBuffer();
      const hashed = readAndHashWindow(
        pass.source,
        compute,
        sab,
        ws,
        readRuns,
        (l) => (bytesRead += l),
        (at) => new StrataError('InvalidInput', `${req.sourceName} ended early at ${at} bytes; it changed size during the backup.`),
        { gapBytes: pass.readGapBytes, packed },
      );
      const w = { ...common, runs: readRuns, sab, hashed };
      const planned = planWindow(w);
      planned.catch(() => {}); // observed in commitWindow
      return { ...w, planned };
    };

    // Runs as soon as a window's hashes arrive, so its seals start without waiting for earlier
    // windows. Everything here is per read block (in run order, as the pool returns digests), so a
    // window's cost follows what it read.
    const planWindow = async (w: Omit<WindowWork, 'planned'>): Promise<WindowPlan> => {
      const hashed = await w.hashed;
      const windowParent = await w.parent;
      if (w.kept.length > 0 && !windowParent) {
        throw new StrataError('Internal', `A tracked backup of ${req.sourceName} lost its parent's map at byte ${w.startBytes + w.kept[0]![0]}; run it again with --full.`);
      }
      if (!hashed) return { cls: NO_BLOCKS, digests: null, blockOf: NO_INDEX, chunkOf: NO_INDEX, parent: windowParent, chunks: [], seals: [] };
      // Only incrementals and resyncs classify read blocks against the parent; a full, and a
      // convergence pass, store every block they read anew (deduplicated by chunk id).
      const compareTo = pass.compare ? windowParent : null;
      const digests = hashed.digests;
      const n = hashed.zeroMask.length;
      const cls = new Uint8Array(n);
      const blockOf = new Int32Array(n);
      let k = 0;
      for (const [o, l] of w.runs) {
        const first = o / bs;
        const count = Math.ceil(l / bs);
        for (let b = 0; b < count; b++, k++) {
          blockOf[k] = first + b;
          if (hashed.zeroMask[k]) cls[k] = C_ZERO;
          else if (compareTo && compareTo.dataOf[k]! >= 0 && matchesStoredDigest(digests, k, compareTo.digests, k)) cls[k] = C_SAME;
          else cls[k] = C_NEW;
        }
      }
      if (w.marked && windowParent) countTrackerMisses(w, hashed.zeroMask, digests, blockOf, windowParent);

      // Per slot: store changed runs, or the whole slot when most of it changed. Only read blocks
      // can be new or the same, so the slots without one are skipped. A packed window (it compares
      // nothing) gathers the new blocks of each GATHER_SPAN_BYTES of the disk into chunks of up to
      // a slot, in disk order, next to each other on the disk or not: a tracked incremental's
      // scattered blocks make a few chunks instead of one each.
      const slotBlocks = cfg.slotBytes / bs;
      const groupBlocks = w.packed ? GATHER_SPAN_BYTES / bs : slotBlocks;
      const chunks: WindowChunk[] = [];
      const chunkOf = new Int32Array(n).fill(-1);
      for (let k0 = 0; k0 < n; ) {
        const group = Math.floor(blockOf[k0]! / groupBlocks);
        let k1 = k0 + 1;
        while (k1 < n && Math.floor(blockOf[k1]! / groupBlocks) === group) k1++;
        if (compareTo) {
          let newCount = 0;
          let dataCount = 0;
          for (let j = k0; j < k1; j++) {
            if (cls[j] === C_NEW) newCount++;
            if (cls[j] === C_NEW || cls[j] === C_SAME) dataCount++;
          }
          if (newCount > 0 && newCount >= DEFAULTS.wholeSlotChangedShare * dataCount) {
            for (let j = k0; j < k1; j++) if (cls[j] === C_SAME) cls[j] = C_NEW;
          }
        }
        for (let j = k0; j < k1; ) {
          if (cls[j] !== C_NEW) {
            j++;
            continue;
          }
          let e = j + 1;
          while (e < k1 && e - j < slotBlocks && cls[e] === C_NEW && (w.packed || blockOf[e] === blockOf[e - 1]! + 1)) e++;
          chunkOf.fill(chunks.length, j, e);
          chunks.push({ first: blockOf[j]!, count: e - j, at: j, id: repo.chunkId(digests.subarray(j * 32, e * 32)) });
          j = e;
        }
        k0 = k1;
      }

      // Chunks go to the pool in batches of at least SEAL_BATCH_BYTES: a 1 MiB chunk alone, the
      // scattered small chunks of a tracked incremental a window's worth in one task.
      const seals: ChunkSeal[] = [];
      let batch: { items: SealItem[]; at: number[] } = { items: [], at: [] };
      let batchBytes = 0;
      const sendBatch = (): void => {
        if (batch.items.length === 0) return;
        const { items, at } = batch;
        const sealed = compute.seal(w.sab!, items, true);
        sealed.catch(() => {}); // observed in commitWindow
        at.forEach((i, k) => {
          const one = sealed.then((rs) => rs[k]!);
          one.catch(() => {});
          seals[i] = { ...seals[i]!, sealed: one };
        });
        batch = { items: [], at: [] };
        batchBytes = 0;
      };
      // Where a chunk's bytes are in the buffer: at its blocks' own offsets, or packed by read block.
      const readBytes = runBytes(w.runs);
      for (const c of chunks) {
        const offset = w.packed ? c.at * bs : c.first * bs;
        const length = (w.packed ? Math.min(readBytes, (c.at + c.count) * bs) : Math.min(w.lengthBytes, (c.first + c.count) * bs)) - offset;
        seals.push({ chunk: c, offset, length, sealed: null });
        if (writer.has(c.id)) continue;
        // The chunk's digests blob is made beside it on the pool (its own memory: a message copies a view's whole buffer).
        batch.items.push({ offset, length, type: BlobType.data, idHex: c.id, digests16: storedDigests(digests, c.at, c.count) });
        batch.at.push(seals.length - 1);
        batchBytes += length;
        if (batchBytes >= SEAL_BATCH_BYTES) sendBatch();
      }
      sendBatch();
      return { cls, digests, blockOf, chunkOf, parent: windowParent, chunks, seals };
    };

    // Runs in disk order: adds the window's blobs to the packs and its extents to the map.
    const commitWindow = async (w: WindowWork): Promise<void> => {
      const { cls, digests, chunkOf, parent, chunks, seals } = await w.planned;
      // A window that read little is not held for its chunks: they are copied out, and the window
      // goes back to the free list when committed, so such a pass cycles through a few windows
      // instead of holding one per window it reads. A packed window is dense, so it is held.
      const sparse = !w.packed && runBytes(w.runs) <= SPARSE_WINDOW_BYTES;
      for (const s of seals) {
        let made: SealedBlob['digests'] = undefined;
        if (s.sealed) {
          const r = await s.sealed;
          made = r.digests;
          if (!writer.has(s.chunk.id)) {
            if (r.sealed) {
              await writer.add(BlobType.data, r.compression, s.chunk.id, r.sealed, r.rawLength);
            } else {
              const { bytes, written } = storedInPlace(w.sab!, s.offset, r.storedLength, sparse);
              await writer.add(BlobType.data, r.compression, s.chunk.id, bytes, r.rawLength, written);
            }
            bytesNew += s.length;
          }
        }
        // A killed run may have stored a chunk without its digests; store them whenever missing.
        const digestsId = made?.idHex ?? repo.digestsBlobId(s.chunk.id);
        if (made && !writer.has(digestsId)) {
          await writer.add(BlobType.digests, Compression.none, digestsId, made.sealed, s.chunk.count * STORED_DIGEST_BYTES);
        } else if (!writer.has(digestsId)) {
          await writer.addPlain(BlobType.digests, digestsId, storedDigests(digests!, s.chunk.at, s.chunk.count), false);
        }
      }

      // Emit the window's extents in disk order: the read blocks as classified, the kept ones from
      // the base's extents, holes as zeros, and the rest unmapped. Holes a pass reads (none but in
      // a convergence's odd case) are taken as read.
      const ws = w.startBytes;
      const holes = w.runs.length > 0 && w.holes.length > 0 ? subtractRuns(w.holes, w.runs) : w.holes;
      const parts: [number, number, number][] = [];
      for (const [o, l] of holes) parts.push([o, l, P_HOLE]);
      for (const [o, l] of w.kept) parts.push([o, l, P_KEPT]);
      for (const [o, l] of w.runs) parts.push([o, l, P_READ]);
      if (parts.length > 1) parts.sort((a, b) => a[0] - b[0]);
      let at = 0;
      let k = 0;
      let keptFrom = parent?.first ?? 0;
      for (const [o, l, part] of parts) {
        if (o > at) push({ startBytes: ws + at, lengthBytes: o - at, kind: ExtentKind.unmapped });
        if (part === P_HOLE) {
          push({ startBytes: ws + o, lengthBytes: l, kind: ExtentKind.zero });
        } else if (part === P_KEPT) {
          // Unread blocks are ones the base holds whole: its data, else its zeros.
          const end = ws + o + l;
          let pos = ws + o;
          while (keptFrom < base.length && base[keptFrom]!.startBytes + base[keptFrom]!.lengthBytes <= pos) keptFrom++;
          for (let j = keptFrom; j < base.length && pos < end; j++) {
            const e = base[j]!;
            if (e.startBytes >= end) break;
            if (e.startBytes > pos) {
              push({ startBytes: pos, lengthBytes: e.startBytes - pos, kind: ExtentKind.zero });
              pos = e.startBytes;
            }
            const to = Math.min(end, e.startBytes + e.lengthBytes);
            if (e.kind === ExtentKind.data) push({ startBytes: pos, lengthBytes: to - pos, kind: ExtentKind.data, chunkId: e.chunkId!, offsetInChunkBytes: e.offsetInChunkBytes! + (pos - e.startBytes) });
            else push({ startBytes: pos, lengthBytes: to - pos, kind: ExtentKind.zero });
            pos = to;
          }
          if (pos < end) push({ startBytes: pos, lengthBytes: end - pos, kind: ExtentKind.zero });
        } else {
          const count = Math.ceil(l / bs);
          const runEnd = ws + o + l;
          for (let b = 0; b < count; ) {
            const c = cls[k + b]!;
            let e = b + 1;
            if (c === C_SAME) {
              const pe = parent!.dataOf[k + b]!;
              while (e < count && cls[k + e] === C_SAME && parent!.dataOf[k + e] === pe) e++;
            } else if (c === C_NEW) {
              while (e < count && chunkOf[k + e] === chunkOf[k + b]) e++;
            } else {
              while (e < count && cls[k + e] === c) e++;
            }
            const start = ws + o + b * bs;
            const length = Math.min(runEnd, ws + o + e * bs) - start;
            if (c === C_ZERO) push({ startBytes: start, lengthBytes: length, kind: ExtentKind.zero });
            else if (c === C_SAME) {
              const pe = base[parent!.dataOf[k + b]!]!;
              push({ startBytes: start, lengthBytes: length, kind: ExtentKind.data, chunkId: pe.chunkId!, offsetInChunkBytes: pe.offsetInChunkBytes! + (start - pe.startBytes) });
            } else {
              const ch = chunks[chunkOf[k + b]!]!;
              // A chunk's blocks are consecutive read blocks (on the disk too, unless gathered).
              push({ startBytes: start, lengthBytes: length, kind: ExtentKind.data, chunkId: ch.id, offsetInChunkBytes: (k + b - ch.at) * bs });
            }
            b = e;
          }
          k += count;
        }
        at = o + l;
      }
      if (at < w.lengthBytes) push({ startBytes: ws + at, lengthBytes: w.lengthBytes - at, kind: ExtentKind.unmapped });

      if (w.sab) committed(w.sab);
      if (pass.reportProgress) {
        for (const [, l] of w.runs) bytesDone += l;
        for (const [, l] of w.holes) bytesDone += l;
        for (const [, l] of w.kept) bytesDone += l;
        req.onProgress?.({ phase: 'backup', bytesDone, bytesTotal: validBytes, elapsedMs: performance.now() - started });
      }
    };

    const inflight: WindowWork[] = [];
    let reading = 0;
    const maxInFlight = pass.keepUnread ? TRACKED_WINDOWS_IN_FLIGHT : WINDOWS_IN_FLIGHT;
    // Readahead for sources read through the page cache: the 4 MiB step PREFETCH_WINDOWS ahead of
    // the window starting is requested from the kernel now, so a cold disk is read while the pipeline works.
    const reader = pass.source;
    const prefetchCursor = reader.prefetch ? new RunCursor(pass.toRead) : null;
    let prefetchedTo = 0;
    const prefetchUpTo = (end: number): void => {
      for (; prefetchCursor && prefetchedTo < Math.min(size, end); prefetchedTo += WINDOW_BYTES) {
        const we = Math.min(size, prefetchedTo + WINDOW_BYTES);
        for (const [o, l] of mergeRuns(prefetchCursor.within(prefetchedTo, we), pass.readGapBytes ?? READ_GAP_BYTES)) reader.prefetch!(prefetchedTo + o, l);
      }
    };
    // A packed pass's window grows by 4 MiB steps while it reads at most PACKED_READ_BYTES.
    const spanCursor = pass.packed ? new RunCursor(pass.toRead) : null;
    const windowEnd = (ws: number): number => {
      let we = Math.min(size, ws + WINDOW_BYTES);
      if (!spanCursor) return we;
      let readBytes = runBytes(spanCursor.within(ws, we));
      while (we < size && we - ws < PACKED_SPAN_BYTES) {
        const next = Math.min(size, we + WINDOW_BYTES);
        const more = runBytes(spanCursor.within(we, next));
        if (readBytes > 0 && readBytes + more > PACKED_READ_BYTES) break;
        readBytes += more;
        we = next;
      }
      return we;
    };
    for (let ws = 0; ws < size; ) {
      if (req.signal?.aborted) throw new StrataError('Cancelled', 'The backup was cancelled; what was stored so far will be reused by the next run.');
      const we = windowEnd(ws);
      prefetchUpTo(we + PREFETCH_WINDOWS * WINDOW_BYTES);
      // WINDOWS_IN_FLIGHT windows that read; windows with nothing to read (most of a tracked
      // incremental's) cost no buffer or read, so they do not hold back the next reads.
      while (reading >= WINDOWS_IN_FLIGHT || inflight.length >= maxInFlight) {
        const w = inflight.shift()!;
        if (w.sab) reading--;
        await commitWindow(w);
      }
      const w = startWindow(ws, we);
      if (w.sab) reading++;
      inflight.push(w);
      ws = we;
    }
    while (inflight.length > 0) await commitWindow(inflight.shift()!);
    return extents;
  };

  /** Blocks of a checked full read that differ from the parent although the tracker did not mark them. */
  const countTrackerMisses = (w: Omit<WindowWork, 'planned'>, zeroMask: Uint8Array, digests: Buffer, blockOf: Int32Array, parent: ReadParent): void => {
    const blocks = Math.ceil(w.lengthBytes / bs);
    const unmarked = new Uint8Array(blocks).fill(1);
    for (const [o, l] of w.marked ?? []) unmarked.fill(0, o / bs, Math.ceil((o + l) / bs));
    const heldZero = new Uint8Array(blocks);
    for (const [o, l] of w.parentZeros ?? []) heldZero.fill(1, o / bs, (o + l) / bs);
    for (let k = 0; k < blockOf.length; k++) {
      const blk = blockOf[k]!;
      if (!unmarked[blk] || w.startBytes + blk * bs >= comparableEndBytes) continue;
      const differs = parent.dataOf[k]! >= 0 ? !matchesStoredDigest(digests, k, parent.digests, k) : heldZero[blk] === 1 && !zeroMask[k];
      if (differs) {
        trackerMisses++;
        // Windows are planned out of order: keep the lowest offset.
        const at = w.startBytes + blk * bs;
        if (firstMissBytes < 0 || at < firstMissBytes) firstMissBytes = at;
      }
    }
  };

  let extents = await scan({
    source,
    valid,
    present,
    toRead,
    keepUnread: decision.trackedRead,
    base: parentExtents,
    compare: compareWithParent && !decision.trackedRead,
    // The tracker check: marked blocks, and the whole blocks the parent held as zeros.
    marked: decision.checkTracker && tracked ? new RunCursor(alignExtents(tracked.changes, bs, size)) : null,
    parentZeros: decision.checkTracker && parentExtents ? new RunCursor(wholeBlocksOf(parentExtents, ExtentKind.zero, bs)) : null,
    readGapBytes: decision.trackedRead ? 0 : undefined,
    packed: decision.trackedRead,
    reportProgress: true,
  });

  // A source written while it was read: copy again what changed during the copy, until little is
  // left, then the rest with its filesystems frozen (seeds 000 and 002).
  let epochKey = tracked?.epochKey ?? null;
  let converged: SnapshotSummary['converged'] = undefined;
  if (req.converge) {
    const r = await converge(req.converge, extents, (pass) => scan(pass), { source, allocated, size, bs, sourceName: req.sourceName, signal: req.signal });
    extents = r.extents;
    // Only the agent's own tracker outlives the backup; its key now starts where the copy ended.
    if (tracked) epochKey = r.epochKey;
    converged = { passes: r.passes, rereadBytes: r.rereadBytes, frozenMs: r.frozenMs };
  }

  const pages: [number, number, string][] = [];
  for (const page of splitIntoPages(extents, size, cfg.mapPageBytes)) {
    const plain = encodeMapPage(page.startBytes, page.lengthBytes, page.extents);
    const id = repo.mapPageId(plain);
    await writer.addPlain(BlobType.map, id, plain, true);
    pages.push([page.startBytes, page.lengthBytes, id]);
  }
  await writer.finish();
  // The next backup of this source (in a long-lived agent) starts from this map without reading it back.
  repo.memo?.keepMap(pages, extents);

  const durationMs = Math.round(performance.now() - started);
  const manifest: Manifest = {
    format: 1,
    summary: {
      sourceId: repo.sourceId(req.sourceName),
      sourceName: req.sourceName,
      parentId: req.parent?.id ?? null,
      mode: decision.mode,
      modeReason: decision.reason,
      tracker: decision.trackedRead ? 'live' : 'none',
      createdAt: new Date().toISOString(),
      hostname: req.hostname,
      tags: [...(req.tags ?? [])],
      sourceBytes: size,
      validBytes,
      bytesRead,
      bytesNew,
      bytesStored: 0,
      durationMs,
      // Written only for a source copied while mounted, so other manifests keep their bytes.
      ...(converged ? { converged } : {}),
    },
    blockSizeBytes: bs,
    slotBytes: cfg.slotBytes,
    mapPageBytes: cfg.mapPageBytes,
    incrementalsSinceFull: decision.incrementalsSinceFull,
    // Written only under a tracker, so untracked manifests keep their bytes (testdata/format-v1).
    ...(epochKey !== null ? { trackerEpoch: epochKey } : {}),
    layout: req.layout ?? null,
    pages,
  };
  // bytesStored counts the manifest too; its own size depends on the number, so settle it in two passes.
  manifest.summary.bytesStored = writer.bytesStored;
  const probe = JSON.stringify(manifest).length;
  manifest.summary.bytesStored = writer.bytesStored + probe + 64;
  const saved = await repo.saveManifest(manifest);
  if (trackerMisses > 0) {
    req.onWarning?.(
      `The live tracker of ${req.sourceName} missed ${trackerMisses} changed block(s) (${trackerMisses * bs} bytes, the first at byte ${firstMissBytes}) that this full read found and stored; the snapshot is complete, but tracked incrementals since the last full read may lack those blocks — report this as a bug and keep the full read's interval short until it is fixed.`,
    );
  }
  return { id: saved.id, summary: { id: saved.id, ...manifest.summary }, trackerMisses: decision.checkTracker ? trackerMisses : null };
}

function runBytes(runs: readonly (readonly [number, number])[]): number {
  let n = 0;
  for (const [, l] of runs) n += l;
  return n;
}

/** The whole blocks of a snapshot's extents of one kind, as sorted extents. */
function wholeBlocksOf(extents: readonly MapExtent[], kind: ExtentKind, blockSizeBytes: number): Extent[] {
  const out: Extent[] = [];
  for (const e of extents) {
    if (e.kind !== kind) continue;
    const start = Math.ceil(e.startBytes / blockSizeBytes) * blockSizeBytes;
    const end = Math.floor((e.startBytes + e.lengthBytes) / blockSizeBytes) * blockSizeBytes;
    if (end > start) out.push({ startBytes: start, lengthBytes: end - start });
  }
  return normalizeExtents(out);
}
