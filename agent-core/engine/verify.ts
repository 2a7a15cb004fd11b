// Checks a repository: structure (every index, pack header and manifest parses, every blob a
// snapshot needs is indexed and lies inside its pack) and, with readData, every blob's bytes
// (authentication, decompression, and the chunk id recomputed from the data). Changes nothing.
import { createHash } from 'node:crypto';
import { toStrataError } from '../api/errors.js';
import { BLOB_TYPE_NAMES, BlobType, ExtentKind, PACK_TRAILER_BYTES } from '../repo/format.js';
import { decodeIndex, MasterIndex } from '../repo/index-file.js';
import { decodeManifest } from '../repo/manifest.js';
import { decodeMapPage } from '../repo/map-page.js';
import { parsePackTail } from '../repo/pack.js';
import type { Repository } from '../repo/repository.js';
import type { BlockCompute } from './compute.js';
import type { Progress } from './progress.js';

export interface VerifyFinding {
  /** The object, as `type id` (pack …, index …, snapshot …, blob …). */
  readonly object: string;
  readonly problem: string;
}

export interface VerifyReport {
  readonly snapshots: number;
  readonly packs: number;
  readonly blobs: number;
  readonly bytesRead: number;
  /** Damage: exit status 1. */
  readonly problems: VerifyFinding[];
  /** Harmless leftovers (a pack an interrupted backup wrote but never indexed). */
  readonly warnings: VerifyFinding[];
}

export async function runVerify(opts: {
  repo: Repository;
  compute: BlockCompute;
  readData: boolean;
  onProgress?: (p: Progress) => void;
}): Promise<VerifyReport> {
  const started = performance.now();
  const { repo, compute } = opts;
  const problems: VerifyFinding[] = [];
  const warnings: VerifyFinding[] = [];
  const seen = new Set<string>();
  const report = (list: VerifyFinding[], object: string, text: string): void => {
    // A chunk missing from many extents is one problem, not thousands.
    const key = `${object}\n${text}`;
    if (seen.has(key)) return;
    seen.add(key);
    list.push({ object, problem: text });
  };
  const problem = (object: string, err: unknown): void => {
    report(problems, object, err instanceof Error ? toStrataError(err).message : String(err));
  };
  /** Digests recomputed from each data blob, and each digests blob as stored, to compare at the end. */
  const expectedDigests = new Map<string, { chunkId: string; digests16: Buffer }>();
  const storedDigests = new Map<string, Buffer>();
  let bytesRead = 0;

  // 1. Index files, each on its own so one bad file does not hide the others.
  const index = new MasterIndex();
  for (const name of await repo.backend.list('index')) {
    try {
      const stored = await repo.backend.load('index', name);
      bytesRead += stored.length;
      if (createHash('sha256').update(stored).digest('hex') !== name) throw new Error(`its content does not match its name`);
      for (const listing of decodeIndex(repo.keys, stored, name)) index.add(listing);
    } catch (err) {
      problem(`index ${name}`, err);
    }
  }

  // 2. Packs: present, headers agree with the index.
  const onDisk = new Set(await repo.backend.list('data'));
  const expected = new Map<string, Map<string, { offset: number; storedLength: number; type: number }>>();
  for (const [id, b] of index.entries()) {
    let m = expected.get(b.packId);
    if (!m) expected.set(b.packId, (m = new Map()));
    m.set(id, { offset: b.offset, storedLength: b.storedLength, type: b.type });
  }
  for (const packId of onDisk) {
    if (!expected.has(packId)) warnings.push({ object: `pack ${packId}`, problem: 'is not in any index (left by an interrupted backup); it is unused and harmless.' });
  }
  let packsDone = 0;
  const totalPacks = expected.size;
  for (const [packId, blobs] of expected) {
    const object = `pack ${packId}`;
    if (!onDisk.has(packId)) {
      problems.push({ object, problem: `is missing; ${blobs.size} blobs listed in the index are lost.` });
      continue;
    }
    try {
      const size = await repo.backend.size('data', packId);
      const whole = opts.readData ? await repo.backend.load('data', packId) : null;
      // Report and go on: the blob checks below then name what inside the pack was damaged.
      if (whole && createHash('sha256').update(whole).digest('hex') !== packId) report(problems, object, 'does not match its name: its bytes changed on disk.');
      const tailLength = Math.min(size, 1 << 20);
      const tail = whole ? whole : await repo.backend.load('data', packId, size - tailLength, tailLength);
      bytesRead += whole ? whole.length : tail.length;
      let entries;
      try {
        entries = parsePackTail(repo.keys, tail, size, packId);
      } catch (err) {
        if (whole || tailLength === size) throw err;
        // The header did not fit in the tail we read: read the whole pack.
        const all = await repo.backend.load('data', packId);
        bytesRead += all.length;
        entries = parsePackTail(repo.keys, all, size, packId);
      }
      const inPack = new Map(entries.map((e) => [e.id.toString('hex'), e]));
      for (const [id, b] of blobs) {
        const e = inPack.get(id);
        if (!e || e.offset !== b.offset || e.storedLength !== b.storedLength || e.type !== b.type) {
          problems.push({ object: `blob ${id}`, problem: `is not where the index says in pack ${packId}.` });
        }
      }
      if (whole) {
        for (const e of entries) {
          const id = e.id.toString('hex');
          try {
            const stored = whole.subarray(e.offset, e.offset + e.storedLength);
            if (e.type === BlobType.data) {
              const { digests16 } = await compute.check(Buffer.from(stored), e.type, id, e.compression, e.rawLength);
              expectedDigests.set(repo.digestsBlobId(id), { chunkId: id, digests16: digests16! });
            } else {
              const raw = await compute.open(Buffer.from(stored), e.type, id, e.compression, e.rawLength);
              if (e.type === BlobType.map && repo.mapPageId(raw) !== id) throw new Error('its content does not match its id');
              if (e.type === BlobType.digests) storedDigests.set(id, raw);
            }
          } catch (err) {
            problem(`blob ${id} (${BLOB_TYPE_NAMES[e.type]}) in pack ${packId}`, err);
          }
        }
      }
      if (size < PACK_TRAILER_BYTES) throw new Error('is too short');
    } catch (err) {
      problem(object, err);
    }
    packsDone++;
    opts.onProgress?.({ phase: 'verify', bytesDone: packsDone, bytesTotal: totalPacks, elapsedMs: performance.now() - started });
  }

  for (const [digestsId, { chunkId, digests16 }] of expectedDigests) {
    const stored = storedDigests.get(digestsId);
    if (stored && !stored.equals(digests16)) {
      report(problems, `blob ${digestsId} (digests)`, `does not match the data of chunk ${chunkId}; incrementals compared against it could miss changes — run a backup with --full.`);
    }
  }

  // 3. Snapshots: every page and every chunk they name is indexed, with its digests.
  const snapshots = await repo.backend.list('snapshots');
  for (const id of snapshots) {
    const object = `snapshot ${id}`;
    try {
      const manifest = decodeManifest(repo.keys, await repo.backend.load('snapshots', id), id);
      for (const [, , pageId] of manifest.pages) {
        const entry = index.get(pageId);
        if (!entry || entry.type !== BlobType.map) {
          report(problems, object, `needs map page ${pageId}, which is not in the index.`);
          continue;
        }
        const page = decodeMapPage(repo.openBlob(pageId, entry, await repo.backend.load('data', entry.packId, entry.offset, entry.storedLength), BlobType.map), `Map page ${pageId}`);
        for (const e of page.extents) {
          if (e.kind !== ExtentKind.data) continue;
          const chunk = index.get(e.chunkId!);
          if (!chunk || chunk.type !== BlobType.data) {
            report(problems, object, `needs chunk ${e.chunkId}, which is not in the index.`);
          } else if (e.offsetInChunkBytes! + e.lengthBytes > chunk.rawLength) {
            report(problems, object, `points past the end of chunk ${e.chunkId}.`);
          } else if (!index.has(repo.digestsBlobId(e.chunkId!))) {
            report(problems, object, `needs the digests of chunk ${e.chunkId}, which are not in the index.`);
          }
        }
      }
    } catch (err) {
      problem(object, err);
    }
  }

  return { snapshots: snapshots.length, packs: expected.size, blobs: index.size, bytesRead, problems, warnings };
}
