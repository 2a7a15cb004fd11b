// A Strata repository: its config and keys, the merged index, blob reads, and the blob writer
// that fills packs and writes index files in the order docs/FORMAT.md prescribes.
import { createHash, randomBytes } from 'node:crypto';
import os from 'node:os';
import zstd from 'zstd-napi';
import * as z from 'zod';
import { StrataError } from '../api/errors.js';
import type { RepoBackend, StagedFile } from './backend.js';
import { deriveKeys, hmac, newKdfParams, newKeys, passwordKey, unseal, unwrapKeys, wrapKeys, type KdfParams, type RepoKeys } from './crypto.js';
import { BlobType, Compression, DEFAULTS, LABELS, REPO_FORMAT_VERSION, REPO_MAGIC } from './format.js';
import { decodeIndex, encodeIndex, MasterIndex, type IndexedBlob, type PackListing } from './index-file.js';
import { decodeManifest, encodeManifest, type Manifest } from './manifest.js';
import { blobAad, PackBuilder, sealBlob } from './pack.js';
import type { MapExtent } from './map-page.js';
import { RepoLock } from './lock.js';

/** LABELS.digestsBlob as bytes, made once: every chunk a backup stores or compares names its digests blob with it. */
const DIGESTS_BLOB_LABEL = Buffer.from(LABELS.digestsBlob);

export const RepoConfigSchema = z.object({
  magic: z.literal(REPO_MAGIC),
  version: z.number().int().positive(),
  id: z.string().regex(/^[0-9a-f]{32}$/),
  createdAt: z.string(),
  encryption: z.enum(['none', 'aes-256-gcm']),
  compression: z.literal('zstd'),
  zstdLevel: z.number().int(),
  blockSizeBytes: z.number().int().positive(),
  slotBytes: z.number().int().positive(),
  mapPageBytes: z.number().int().positive(),
  packTargetBytes: z.number().int().positive(),
  fullEvery: z.number().int().positive(),
  /** The id key in hex, only in unencrypted repositories (encrypted ones keep it in keys/). */
  idKey: z.string().regex(/^[0-9a-f]{64}$/).optional(),
});
export type RepoConfig = z.infer<typeof RepoConfigSchema>;

const KeyFileSchema = z.object({
  kdf: z.object({ name: z.literal('scrypt'), N: z.number().int(), r: z.number().int(), p: z.number().int(), salt: z.string() }),
  wrapped: z.string(),
  createdAt: z.string(),
  hostname: z.string(),
});

export interface InitOptions {
  encryption: 'none' | 'aes-256-gcm';
  password?: string | null;
  fullEvery?: number;
}

/**
 * What a long-lived process (the agent) keeps of one repository between operations, so a job does
 * not read and decode again what an earlier one did. Index files are named by the SHA-256 of their
 * bytes and a manifest by an HMAC of its content (docs/FORMAT.md §6, §8): what a name held once it
 * holds for as long as a file of that name exists. So every load lists the directory again, takes
 * from here only names it finds there, reads the rest, and forgets names that are gone (another
 * process may add, merge or remove files between operations). It belongs to one repository's keys;
 * agent/warm-repositories.ts makes a new one when the config or the keys differ.
 */
export class RepositoryMemo {
  /** Decoded index files by file name. */
  readonly indexFiles = new Map<string, PackListing[]>();
  /** Manifest files as stored, by snapshot id; decoded (and authenticated) again at each load. */
  readonly manifests = new Map<string, Buffer>();

  /**
   * Decoded disk maps by the map pages they were read from or written as (content-addressed, so
   * the key names the extents exactly): the last few, for the next backup of the same source.
   */
  private readonly maps = new Map<string, readonly MapExtent[]>();

  /** Keeps a manifest, the most recent MEMO_MANIFESTS at most (`latest` loads every one of them once). */
  keepManifest(id: string, bytes: Buffer): void {
    this.manifests.delete(id);
    this.manifests.set(id, bytes);
    if (this.manifests.size > MEMO_MANIFESTS) this.manifests.delete(this.manifests.keys().next().value!);
  }

  /** Keeps a snapshot's whole map (which must not change afterwards), unless it is too large to keep. */
  keepMap(pages: Manifest['pages'], extents: readonly MapExtent[]): void {
    if (extents.length > MEMO_MAP_EXTENTS) return;
    const key = mapKey(pages);
    this.maps.delete(key);
    this.maps.set(key, extents);
    if (this.maps.size > MEMO_MAPS) this.maps.delete(this.maps.keys().next().value!);
  }

  mapOf(pages: Manifest['pages']): readonly MapExtent[] | undefined {
    return this.maps.get(mapKey(pages));
  }
}

function mapKey(pages: Manifest['pages']): string {
  return pages.map(([start, length, id]) => `${start}:${length}:${id}`).join(',');
}

/** Manifests a memo keeps: the parents of the next backups, not the whole history of a long-lived repository. */
const MEMO_MANIFESTS = 256;
/** Disk maps a memo keeps, each of at most MEMO_MAP_EXTENTS extents (~10 MB): the parents of the next backups. */
const MEMO_MAPS = 4;
const MEMO_MAP_EXTENTS = 100_000;

/** Password-derived wrapping keys by a digest of the password and the key file's KDF parameters. */
export interface WrappingKeyCache {
  get(id: string): Buffer | undefined;
  set(id: string, key: Buffer): void;
}

export class Repository {
  readonly index = new MasterIndex();
  /** Set by a long-lived caller (the agent); null in the CLI, which reads everything each run. */
  memo: RepositoryMemo | null = null;

  private constructor(
    readonly backend: RepoBackend,
    readonly config: RepoConfig,
    readonly keys: RepoKeys,
  ) {}

  get id(): string {
    return this.config.id;
  }

  static async init(backend: RepoBackend, options: InitOptions): Promise<Repository> {
    const encrypted = options.encryption === 'aes-256-gcm';
    if (encrypted && !options.password) {
      throw new StrataError('InvalidInput', 'An encrypted repository needs a password: pass --password-file FILE or set STRATA_PASSWORD_FILE.');
    }
    if (options.fullEvery !== undefined && !(Number.isInteger(options.fullEvery) && options.fullEvery > 0)) {
      throw new StrataError('InvalidInput', '--full-every must be a positive whole number of incrementals.');
    }
    if (await backend.isRepository()) {
      throw new StrataError('InvalidInput', `${backend.location} already holds a Strata repository; use it as it is or choose another directory.`);
    }
    const keys = newKeys(encrypted);
    const config: RepoConfig = {
      magic: REPO_MAGIC,
      version: REPO_FORMAT_VERSION,
      id: randomBytes(16).toString('hex'),
      createdAt: new Date().toISOString(),
      encryption: options.encryption,
      compression: 'zstd',
      zstdLevel: DEFAULTS.zstdLevel,
      blockSizeBytes: DEFAULTS.blockSizeBytes,
      slotBytes: DEFAULTS.slotBytes,
      mapPageBytes: DEFAULTS.mapPageBytes,
      packTargetBytes: DEFAULTS.packTargetBytes,
      fullEvery: options.fullEvery ?? DEFAULTS.fullEvery,
      ...(encrypted ? {} : { idKey: keys.idKey.toString('hex') }),
    };
    await backend.create();
    if (encrypted) {
      const kdf = newKdfParams();
      const keyFile = {
        kdf: { name: 'scrypt' as const, ...kdf },
        wrapped: wrapKeys(keys, passwordKey(options.password!, kdf)),
        createdAt: config.createdAt,
        hostname: os.hostname(),
      };
      await backend.save('keys', randomBytes(16).toString('hex'), Buffer.from(JSON.stringify(keyFile, null, 2)));
    }
    // The config goes last: a directory without it is not a repository yet.
    await backend.save('config', 'config', Buffer.from(JSON.stringify(config, null, 2) + '\n'));
    return new Repository(backend, config, keys);
  }

  /**
   * Opens and unlocks a repository. getPassword is called only if the repository is encrypted.
   * wrappingKeys: password-derived keys an earlier open computed (scrypt costs ~100 ms and 32 MiB);
   * the long-lived agent keeps them between jobs. Only keys that opened a key file are kept.
   */
  static async open(backend: RepoBackend, getPassword: () => string | null, wrappingKeys?: WrappingKeyCache): Promise<Repository> {
    if (!(await backend.isRepository())) {
      throw new StrataError('NotFound', `${backend.location} is not a Strata repository; create one with \`strata init --repo ${backend.location}\`.`);
    }
    const raw = await backend.load('config', 'config');
    let json: unknown;
    try {
      json = JSON.parse(raw.toString('utf8'));
    } catch (cause) {
      throw new StrataError('Corrupt', `The repository config at ${backend.location} is not valid JSON; the repository is damaged.`, { cause });
    }
    const version = (json as { version?: unknown } | null)?.version;
    if (typeof version === 'number' && version > REPO_FORMAT_VERSION) {
      throw new StrataError(
        'Unsupported',
        `The repository at ${backend.location} uses format version ${version}, newer than this Strata understands (${REPO_FORMAT_VERSION}); upgrade Strata to use it.`,
      );
    }
    const parsed = RepoConfigSchema.safeParse(json);
    if (!parsed.success) {
      throw new StrataError('Corrupt', `The repository config at ${backend.location} is not valid (${parsed.error.issues[0]?.path.join('.')}: ${parsed.error.issues[0]?.message}).`);
    }
    const config = parsed.data;
    if (config.encryption === 'none') {
      if (!config.idKey) throw new StrataError('Corrupt', 'The repository config has no id key; the repository is damaged.');
      return new Repository(backend, config, deriveKeys(null, Buffer.from(config.idKey, 'hex')));
    }
    const password = getPassword();
    if (!password) {
      throw new StrataError('InvalidInput', 'This repository is encrypted: pass --password-file FILE, or set STRATA_PASSWORD_FILE or STRATA_PASSWORD.');
    }
    const names = await backend.list('keys');
    if (names.length === 0) throw new StrataError('Corrupt', 'The repository is encrypted but has no key files; it cannot be opened.');
    for (const name of names) {
      const file = KeyFileSchema.safeParse(JSON.parse((await backend.load('keys', name)).toString('utf8')));
      if (!file.success) continue;
      const kdf: KdfParams = { N: file.data.kdf.N, r: file.data.kdf.r, p: file.data.kdf.p, salt: file.data.kdf.salt };
      const cacheId = createHash('sha256').update(`${kdf.salt}\0${kdf.N}\0${kdf.r}\0${kdf.p}\0`).update(password).digest('hex');
      const cached = wrappingKeys?.get(cacheId);
      const wrappingKey = cached ?? passwordKey(password, kdf);
      const keys = unwrapKeys(file.data.wrapped, wrappingKey);
      if (keys) {
        if (!cached) wrappingKeys?.set(cacheId, wrappingKey);
        return new Repository(backend, config, keys);
      }
    }
    throw new StrataError('PermissionDenied', 'The password does not open this repository; check the password file and try again.');
  }

  /** Locks the repository; with waitMs, waits that long for other holders to finish first. */
  lock(exclusive: boolean, command: string, waitMs = 0): Promise<RepoLock> {
    return waitMs > 0 ? RepoLock.acquireWaiting(this.backend, exclusive, command, waitMs) : RepoLock.acquire(this.backend, exclusive, command);
  }

  /** Reads every index file into memory (those the memo holds from it). Returns the names read. */
  async loadIndex(): Promise<string[]> {
    const names = await this.backend.list('index');
    const memo = this.memo?.indexFiles;
    for (const name of names) {
      let listings = memo?.get(name);
      if (!listings) {
        listings = decodeIndex(this.keys, await this.backend.load('index', name), name);
        memo?.set(name, listings);
      }
      for (const listing of listings) this.index.add(listing);
    }
    // A file merged away or removed by another process: its listings must not outlive it.
    if (memo) {
      const present = new Set(names);
      for (const name of [...memo.keys()]) if (!present.has(name)) memo.delete(name);
    }
    return names;
  }

  chunkId(blockDigests: Uint8Array): string {
    return hmac(this.keys.idKey, blockDigests).toString('hex');
  }

  digestsBlobId(chunkIdHex: string): string {
    return hmac(this.keys.idKey, DIGESTS_BLOB_LABEL, Buffer.from(chunkIdHex, 'hex')).toString('hex');
  }

  mapPageId(plaintext: Uint8Array): string {
    return hmac(this.keys.idKey, Buffer.from(LABELS.mapPage), plaintext).toString('hex');
  }

  sourceId(sourceName: string): string {
    return hmac(this.keys.idKey, Buffer.from(LABELS.source), Buffer.from(sourceName)).toString('hex');
  }

  /** Reads, opens and decompresses one blob. */
  async readBlob(idHex: string, expected: BlobType): Promise<Buffer> {
    const entry = this.index.get(idHex);
    if (!entry) throw new StrataError('NotFound', `Blob ${idHex} is not in the repository's index; the repository is damaged (run \`strata verify\`).`);
    return this.openBlob(idHex, entry, await this.backend.load('data', entry.packId, entry.offset, entry.storedLength), expected);
  }

  /**
   * Reads, opens and decompresses several blobs, in the order of `ids`: those in one pack with one
   * open of it where the backend can (loadRanges), so a window's few small blobs do not each pay for
   * opening their pack.
   */
  async readBlobs(ids: readonly string[], expected: BlobType): Promise<Buffer[]> {
    const loadRanges = this.backend.loadRanges?.bind(this.backend);
    if (!loadRanges) return Promise.all(ids.map((id) => this.readBlob(id, expected)));
    const byPack = new Map<string, { at: number; id: string; entry: IndexedBlob }[]>();
    ids.forEach((id, at) => {
      const entry = this.index.get(id);
      if (!entry) throw new StrataError('NotFound', `Blob ${id} is not in the repository's index; the repository is damaged (run \`strata verify\`).`);
      const list = byPack.get(entry.packId) ?? [];
      list.push({ at, id, entry });
      byPack.set(entry.packId, list);
    });
    const out = new Array<Buffer>(ids.length);
    await Promise.all(
      [...byPack].map(async ([packId, blobs]) => {
        const stored = await loadRanges('data', packId, blobs.map((b) => ({ offsetBytes: b.entry.offset, lengthBytes: b.entry.storedLength })));
        blobs.forEach((b, i) => (out[b.at] = this.openBlob(b.id, b.entry, stored[i]!, expected)));
      }),
    );
    return out;
  }

  openBlob(idHex: string, entry: IndexedBlob, stored: Buffer, expected: BlobType): Buffer {
    if (entry.type !== expected) throw new StrataError('Corrupt', `Blob ${idHex} has type ${entry.type}, expected ${expected}; the repository is damaged.`);
    const plain = unseal(this.keys, stored, blobAad(entry.type, Buffer.from(idHex, 'hex')), `Blob ${idHex} in pack ${entry.packId}`);
    const raw = entry.compression === Compression.zstd ? decompress(plain, idHex) : plain;
    if (raw.length !== entry.rawLength) {
      throw new StrataError('Corrupt', `Blob ${idHex} has ${raw.length} bytes, its index says ${entry.rawLength}; the repository is damaged.`);
    }
    return raw;
  }

  /** The snapshots in the repository now; the memo forgets manifests no longer listed (forgotten by anyone). */
  async listSnapshotIds(): Promise<string[]> {
    const ids = await this.backend.list('snapshots');
    const memo = this.memo?.manifests;
    if (memo) {
      const present = new Set(ids);
      for (const id of [...memo.keys()]) if (!present.has(id)) memo.delete(id);
    }
    return ids;
  }

  async loadManifest(id: string): Promise<Manifest> {
    const bytes = this.memo?.manifests.get(id) ?? (await this.backend.load('snapshots', id));
    const manifest = decodeManifest(this.keys, bytes, id);
    this.memo?.keepManifest(id, bytes);
    return manifest;
  }

  /** Writes a manifest; every blob it names must already be indexed (FORMAT.md, write order). */
  async saveManifest(manifest: Manifest): Promise<{ id: string; sizeBytes: number }> {
    const { id, bytes } = encodeManifest(this.keys, manifest);
    await this.backend.save('snapshots', id, bytes);
    // Durable now; the next backup of this source loads it as its parent.
    this.memo?.keepManifest(id, bytes);
    return { id, sizeBytes: bytes.length };
  }

  /**
   * Forgets a snapshot: removes its manifest (FORMAT.md §12). The blobs it alone used stay in their
   * packs until a prune; every other snapshot is complete without it. Needs the exclusive lock.
   */
  async forgetSnapshot(id: string): Promise<void> {
    this.memo?.manifests.delete(id);
    await this.backend.remove('snapshots', id);
  }

  writer(): BlobWriter {
    return new BlobWriter(this);
  }
}

function decompress(plain: Buffer, idHex: string): Buffer {
  try {
    return zstd.decompress(plain);
  } catch (cause) {
    throw new StrataError('Corrupt', `Blob ${idHex} does not decompress; the repository is damaged (run \`strata verify --read-data\`).`, { cause });
  }
}

/**
 * Collects sealed blobs into packs. Each full pack is written, then an index file naming it, so a
 * killed backup leaves every finished pack findable and the next run reuses it.
 */
export class BlobWriter {
  private pack = new PackBuilder();
  /** Called once a blob's bytes are written (or failed): its memory may then be reused. */
  private onPackWritten: (() => void)[] = [];
  /**
   * The current pack's staged file where the backend can stage (opened with its first blob), and
   * the appends queued on it, one after another: the pack is written as it fills, so closing it
   * costs its last piece and a sync, not the whole pack.
   */
  private staged: StagedPack | null = null;
  private readonly pending = new Set<string>();
  /** Per flushed pack, in the order the packs were closed: its index file and listing once written. */
  private readonly written: ({ indexFile: string; listing: PackListing } | null)[] = [];
  /** Packs being written (each: the pack, then its index file). */
  private readonly flushes = new Set<Promise<void>>();
  /** The first failed pack or index write, reported on the next add. */
  private error: unknown = null;
  /** Bytes this writer added to the repository (packs and index files). */
  bytesStored = 0;

  constructor(private readonly repo: Repository) {}

  /** Known to the index or queued in this writer. */
  has(idHex: string): boolean {
    return this.pending.has(idHex) || this.repo.index.has(idHex);
  }

  /**
   * Queues a blob. Resolves at once while fewer than MAX_FLUSHING full packs are being written, so
   * pack writes (and their fsyncs) overlap the caller's work and each other; beyond that it waits
   * for one to finish, bounding memory. The writer keeps `sealed` (not a copy) until its bytes are
   * written (appended to the pack's staged file, or the whole pack saved), then calls `written`,
   * after which the caller may reuse that memory.
   */
  add(type: BlobType, compression: Compression, idHex: string, sealed: Buffer, rawLength: number, written?: () => void): Promise<void> {
    if (!this.has(idHex)) {
      this.pending.add(idHex);
      this.pack.add(type, compression, Buffer.from(idHex, 'hex'), sealed, rawLength);
      if (written) this.onPackWritten.push(written);
      if (this.pack.sizeBytes >= this.repo.config.packTargetBytes) {
        this.flushPack();
      } else if (this.repo.backend.stage) {
        this.staged ??= this.stagePack();
        this.staged.unappended += sealed.length;
        if (this.staged.unappended >= APPEND_BYTES) this.appendTaken(this.staged);
      }
    } else {
      written?.();
    }
    return this.backpressure();
  }

  private stagePack(): StagedPack {
    const file = this.repo.backend.stage!('data');
    file.catch(() => {}); // reported by the pack's flush
    return { file, chain: Promise.resolve(), unappended: 0, unflushed: 0, queued: 0 };
  }

  /**
   * Drops the pack being filled, and its staged file, after a failed backup; packs already being
   * written finish (they are indexed, so a rerun reuses them).
   */
  async abandon(): Promise<void> {
    const staged = this.staged;
    const written = this.onPackWritten;
    this.staged = null;
    this.onPackWritten = [];
    this.pack = new PackBuilder();
    if (staged) {
      await staged.chain.catch(() => {});
      const file = await staged.file.catch(() => null);
      await file?.discard();
    }
    for (const done of written) done();
    await Promise.allSettled(this.flushes);
  }

  /** Queues the pack's blobs added since the last append on its staged file; their memory is released once written. */
  private appendTaken(staged: StagedPack): void {
    const parts = this.pack.takeParts();
    const written = this.onPackWritten;
    this.onPackWritten = [];
    let bytes = 0;
    for (const p of parts) bytes += p.length;
    staged.unappended = 0;
    staged.unflushed += bytes;
    staged.queued += bytes;
    const flush = staged.unflushed >= FLUSH_BYTES;
    if (flush) staged.unflushed = 0;
    staged.chain = staged.chain
      .then(async () => {
        const file = await staged.file;
        await file.append(parts);
        if (flush) await file.flush();
      })
      .finally(() => {
        staged.queued -= bytes;
        for (const done of written) done();
      });
    // A failed append is reported by the pack's flush (and, through it, by the next add).
    staged.chain.catch(() => {});
  }

  /** Compresses (when it helps), seals and adds a blob; for small blobs made on the main thread. */
  addPlain(type: BlobType, idHex: string, raw: Buffer, compress: boolean): Promise<void> {
    if (this.has(idHex)) return this.backpressure();
    let body = raw;
    let compression: Compression = Compression.none;
    if (compress) {
      const z = zstd.compress(raw, { compressionLevel: this.repo.config.zstdLevel });
      if (z.length < raw.length) {
        body = z;
        compression = Compression.zstd;
      }
    }
    const sealed = sealBlob(this.repo.keys, type, idHex, body);
    return this.add(type, compression, idHex, sealed, raw.length);
  }

  private flushPack(): void {
    if (this.pack.count === 0) return;
    const full = this.pack;
    const written = this.onPackWritten;
    const staged = this.staged;
    this.pack = new PackBuilder();
    this.onPackWritten = [];
    this.staged = null;
    const slot = this.written.length;
    this.written.push(null);
    // Packs are written side by side: only a pack's own index must wait for it (docs/FORMAT.md §10).
    const flush = (async () => {
      const { packId, parts, entries, sizeBytes } = full.finish(this.repo.keys);
      try {
        if (staged) {
          const file = await staged.file;
          try {
            await staged.chain;
            await file.append(parts);
            await file.commit(packId);
          } catch (err) {
            await file.discard();
            throw err;
          }
        } else {
          await this.repo.backend.save('data', packId, parts);
        }
      } finally {
        for (const done of written) done();
      }
      const listing = { packId, entries };
      const index = encodeIndex(this.repo.keys, [listing]);
      await this.repo.backend.save('index', index.name, index.bytes);
      // Written, so known: the next loadIndex of a long-lived caller need not read it back.
      this.repo.memo?.indexFiles.set(index.name, [listing]);
      this.repo.index.add(listing);
      this.written[slot] = { indexFile: index.name, listing };
      this.bytesStored += sizeBytes + index.bytes.length;
      for (const e of entries) this.pending.delete(e.id.toString('hex'));
    })();
    this.flushes.add(flush);
    // A failed write must reach the caller on its next add, not only at finish().
    flush.then(
      () => this.flushes.delete(flush),
      (err: unknown) => {
        this.error ??= err;
        this.flushes.delete(flush);
      },
    );
  }

  private backpressure(): Promise<void> {
    if (this.error) return Promise.reject(this.error);
    if (this.flushes.size >= MAX_FLUSHING) return Promise.race(this.flushes);
    // Appends behind the producer: wait for them (a failure surfaces at the pack's flush).
    if (this.staged && this.staged.queued >= MAX_QUEUED_BYTES) return this.staged.chain.catch(() => {});
    return Promise.resolve();
  }

  /** Writes the last pack and its index, then merges this writer's index files into one. */
  async finish(): Promise<void> {
    this.flushPack();
    await Promise.allSettled(this.flushes);
    if (this.error) throw this.error;
    const written = this.written.map((w) => w!);
    if (written.length > 1) {
      const merged = encodeIndex(
        this.repo.keys,
        written.map((w) => w.listing),
      );
      await this.repo.backend.save('index', merged.name, merged.bytes);
      this.repo.memo?.indexFiles.set(
        merged.name,
        written.map((w) => w.listing),
      );
      // The merged file is durable before the small ones go, so every pack stays indexed throughout.
      let removed = 0;
      for (const { indexFile } of written) {
        removed += await this.repo.backend.size('index', indexFile);
        await this.repo.backend.remove('index', indexFile);
      }
      this.bytesStored += merged.bytes.length - removed;
    }
  }
}

/** Full packs a writer may have in flight (each up to packTargetBytes in memory) before add() waits. */
const MAX_FLUSHING = 4;
/** A staged pack is appended to in pieces of about this much (256 KiB)... */
const APPEND_BYTES = 256 << 10;
/** ...and asked to start writing to the disk after each 4 MiB, so its final sync has little left. */
const FLUSH_BYTES = 4 << 20;
/** Bytes queued on a staged pack's appends before add() waits for them (64 MiB). */
const MAX_QUEUED_BYTES = 64 << 20;

interface StagedPack {
  readonly file: Promise<StagedFile>;
  /** The appends queued so far, in order. */
  chain: Promise<void>;
  /** Bytes added since the last append was queued. */
  unappended: number;
  /** Bytes appended since the last flush was queued. */
  unflushed: number;
  /** Bytes queued and not yet written. */
  queued: number;
}

