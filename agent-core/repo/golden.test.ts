// Format v1 pinned to bytes: the fixed inputs of testdata/format-v1/generate.ts must re-encode to the
// committed files exactly, and the committed files (plain and encrypted) must decode to those inputs.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { fingerprintTree, localBackend } from '../../test-support/repo-dir.js';
import {
  buildRepository,
  chunkBytes,
  ENCRYPTED_DIR,
  ENCRYPTED_PASSWORD,
  encryptedKeys,
  PLAIN_DIR,
  plainKeys,
} from '../../testdata/format-v1/generate.js';
import { hmac } from './crypto.js';
import {
  BlobType,
  Compression,
  ExtentKind,
  ID_BYTES,
  INDEX_MAGIC,
  INDEX_VERSION,
  LABELS,
  MANIFEST_VERSION,
  MAP_PAGE_MAGIC,
  MAP_PAGE_VERSION,
  PACK_ENTRY_BYTES,
  PACK_MAGIC,
  PACK_TRAILER_BYTES,
  PACK_VERSION,
  REPO_FORMAT_VERSION,
  REPO_MAGIC,
  STORED_DIGEST_BYTES,
} from './format.js';
import { decodeIndex } from './index-file.js';
import { decodeMapPage } from './map-page.js';
import { parsePackTail } from './pack.js';
import { Repository } from './repository.js';

const FORMAT_CHANGED = 'format v1 bytes changed: update docs/FORMAT.md and bump the version, or revert';

const noPassword = (): string | null => {
  throw new Error('the plain golden repository must not ask for a password');
};

/** Relative path → bytes of every file under dir. */
function readTree(dir: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const full = path.join(entry.parentPath, entry.name);
    out.set(path.relative(dir, full).split(path.sep).join('/'), readFileSync(full));
  }
  return out;
}

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

describe('golden repository format v1 (plain)', () => {
  const built = buildRepository(plainKeys(), { compressMaps: false });
  const committed = readTree(PLAIN_DIR);

  it('re-encoding the fixed inputs gives the committed files, byte for byte', () => {
    expect([...committed.keys()].sort(), `${FORMAT_CHANGED} (the set of files differs)`).toEqual([...built.files.keys()].sort());
    for (const [rel, bytes] of built.files) {
      expect(committed.get(rel)?.equals(bytes), `${FORMAT_CHANGED} (${rel})`).toBe(true);
    }
  });

  it('the versions, magics, codes and labels are still those of v1', () => {
    const pinned = {
      versions: [REPO_FORMAT_VERSION, PACK_VERSION, INDEX_VERSION, MAP_PAGE_VERSION, MANIFEST_VERSION],
      magics: [REPO_MAGIC, PACK_MAGIC.toString('ascii'), INDEX_MAGIC.toString('ascii'), MAP_PAGE_MAGIC.toString('ascii')],
      sizes: [PACK_TRAILER_BYTES, PACK_ENTRY_BYTES, ID_BYTES, STORED_DIGEST_BYTES],
      blobTypes: BlobType,
      compression: Compression,
      extentKinds: ExtentKind,
      labels: LABELS,
    };
    expect(pinned, FORMAT_CHANGED).toEqual({
      versions: [1, 1, 1, 1, 1],
      magics: ['strata-repository', 'STRATAPK', 'STRATAIX', 'STRATAMP'],
      sizes: [16, 46, 32, 16],
      blobTypes: { data: 1, digests: 2, map: 3 },
      compression: { none: 0, zstd: 1 },
      extentKinds: { unmapped: 0, zero: 1, data: 2 },
      labels: {
        blockKey: 'strata v1 block digest key',
        digestsBlob: 'strata v1 digests of ',
        source: 'strata v1 source ',
        snapshot: 'strata v1 snapshot ',
        mapPage: 'strata v1 map page ',
      },
    });
  });

  it('the committed chunk pack reads as FORMAT.md §5 lays it out, byte by byte', () => {
    const packId = built.listings[0]!.packId;
    const pack = committed.get(`data/${packId.slice(0, 2)}/${packId}`)!;
    expect(sha256(pack)).toBe(packId);
    const trailer = pack.subarray(pack.length - 16);
    expect(trailer.subarray(8).toString('ascii')).toBe('STRATAPK');
    expect(trailer.readUInt32LE(4)).toBe(1);
    const headerLength = trailer.readUInt32LE(0);
    expect(headerLength).toBe(4 + 2 * 46);
    const header = pack.subarray(pack.length - 16 - headerLength, pack.length - 16);
    expect(header.readUInt32LE(0)).toBe(2);
    const entry = (i: number) => {
      const e = header.subarray(4 + i * 46, 4 + (i + 1) * 46);
      return { type: e[0], compression: e[1], id: e.subarray(2, 34).toString('hex'), offset: e.readUInt32LE(34), stored: e.readUInt32LE(38), raw: e.readUInt32LE(42) };
    };
    const chunk = chunkBytes();
    expect(entry(0)).toEqual({ type: 1, compression: 0, id: built.chunkId, offset: 0, stored: 8192, raw: 8192 });
    expect(entry(1)).toEqual({ type: 2, compression: 0, id: built.digestsId, offset: 8192, stored: 32, raw: 32 });
    expect(pack.subarray(0, 8192).equals(chunk)).toBe(true);
    // The digests blob holds the first 16 bytes of each block's HMAC; the chunk id is the HMAC of the full ones.
    const blockKey = hmac(plainKeys().idKey, Buffer.from('strata v1 block digest key'));
    const blockDigests = [0, 1].map((b) => hmac(blockKey, chunk.subarray(b * 4096, (b + 1) * 4096)));
    expect(pack.subarray(8192, 8224).equals(Buffer.concat(blockDigests.map((d) => d.subarray(0, 16))))).toBe(true);
    expect(hmac(plainKeys().idKey, ...blockDigests).toString('hex')).toBe(built.chunkId);
  });

  it('the committed map pages read as FORMAT.md §7 lays them out, byte by byte', async () => {
    const repo = await Repository.open(localBackend(PLAIN_DIR), noPassword);
    await repo.loadIndex();
    const pages = await Promise.all(built.mapIds.map((id) => repo.readBlob(id, BlobType.map)));
    const first = pages[0]!;
    expect(first.subarray(0, 8).toString('ascii')).toBe('STRATAMP');
    expect(first.readUInt32LE(8)).toBe(1);
    expect(first.readBigUInt64LE(12)).toBe(0n);
    expect(first.readBigUInt64LE(20)).toBe(8192n);
    expect(first.readUInt32LE(28)).toBe(1);
    expect(first.subarray(32, 64).toString('hex')).toBe(built.chunkId);
    expect(first.readUInt32LE(64)).toBe(2);
    // zero, 4096 bytes | data, 4096 bytes, chunk 0, offset 0
    expect(first[68]).toBe(1);
    expect(first.readBigUInt64LE(69)).toBe(4096n);
    expect(first[77]).toBe(2);
    expect(first.readBigUInt64LE(78)).toBe(4096n);
    expect(first.readUInt32LE(86)).toBe(0);
    expect(first.readUInt32LE(90)).toBe(0);
    expect(first.length).toBe(94);
    for (const [i, raw] of pages.entries()) {
      expect(hmac(plainKeys().idKey, Buffer.from('strata v1 map page '), raw).toString('hex')).toBe(built.mapIds[i]);
    }
  });

  it('the committed repository opens and decodes to the fixed inputs, without writing', async () => {
    const before = fingerprintTree(PLAIN_DIR);
    const repo = await Repository.open(localBackend(PLAIN_DIR), noPassword);
    expect(repo.config).toMatchObject({ version: 1, encryption: 'none', mapPageBytes: 8192, idKey: plainKeys().idKey.toString('hex') });

    const indexNames = await repo.loadIndex();
    expect(indexNames).toHaveLength(1);
    expect(indexNames[0]).toBe(sha256(committed.get(`index/${indexNames[0]}`)!));
    expect(decodeIndex(repo.keys, committed.get(`index/${indexNames[0]}`)!, indexNames[0]!)).toEqual(built.listings);
    expect(repo.index.size).toBe(4);

    for (const listing of built.listings) {
      const pack = committed.get(`data/${listing.packId.slice(0, 2)}/${listing.packId}`)!;
      expect(sha256(pack)).toBe(listing.packId);
      expect(parsePackTail(repo.keys, pack, pack.length, listing.packId)).toEqual(listing.entries);
    }
    for (const [id, { type, raw }] of built.blobs) expect((await repo.readBlob(id, type)).equals(raw)).toBe(true);

    const decodedPages = await Promise.all(built.mapIds.map(async (id) => decodeMapPage(await repo.readBlob(id, BlobType.map), id)));
    expect(decodedPages).toEqual([
      {
        startBytes: 0,
        lengthBytes: 8192,
        extents: [
          { startBytes: 0, lengthBytes: 4096, kind: ExtentKind.zero },
          { startBytes: 4096, lengthBytes: 4096, kind: ExtentKind.data, chunkId: built.chunkId, offsetInChunkBytes: 0 },
        ],
      },
      {
        startBytes: 8192,
        lengthBytes: 8192,
        extents: [
          { startBytes: 8192, lengthBytes: 4096, kind: ExtentKind.data, chunkId: built.chunkId, offsetInChunkBytes: 4096 },
          { startBytes: 12288, lengthBytes: 4096, kind: ExtentKind.unmapped },
        ],
      },
    ]);

    expect(await repo.listSnapshotIds()).toEqual([built.snapshotId]);
    const manifest = await repo.loadManifest(built.snapshotId);
    expect(manifest).toEqual(built.manifest);
    expect(manifest.pages).toEqual([
      [0, 8192, built.mapIds[0]],
      [8192, 8192, built.mapIds[1]],
    ]);
    expect(manifest.summary).toMatchObject({ sourceName: 'golden.img', createdAt: '2025-01-01T00:00:00.000Z', sourceBytes: 16384 });
    expect(fingerprintTree(PLAIN_DIR)).toEqual(before);
  });
});

describe('golden repository format v1 (encrypted)', () => {
  const expected = buildRepository(encryptedKeys(), { compressMaps: true });

  it('opens with the generator’s password and decodes to the same content', async () => {
    const before = fingerprintTree(ENCRYPTED_DIR);
    const repo = await Repository.open(localBackend(ENCRYPTED_DIR), () => ENCRYPTED_PASSWORD);
    expect(repo.config.encryption).toBe('aes-256-gcm');
    expect(repo.config.idKey).toBeUndefined();
    expect(repo.keys.encKey!.equals(encryptedKeys().encKey!)).toBe(true);
    expect(repo.keys.idKey.equals(encryptedKeys().idKey)).toBe(true);

    const indexNames = await repo.loadIndex();
    expect(indexNames).toHaveLength(1);
    expect(repo.index.size).toBe(4);
    const packs = await repo.backend.list('data');
    expect(packs).toHaveLength(2);
    for (const packId of packs) {
      const pack = await repo.backend.load('data', packId);
      expect(sha256(pack)).toBe(packId);
      expect(parsePackTail(repo.keys, pack, pack.length, packId)).toHaveLength(2);
    }
    for (const [id, { type, raw }] of expected.blobs) {
      expect(repo.index.get(id)?.compression).toBe(type === BlobType.map ? Compression.zstd : Compression.none);
      expect((await repo.readBlob(id, type)).equals(raw)).toBe(true);
    }
    const pages = await Promise.all(expected.mapIds.map(async (id) => decodeMapPage(await repo.readBlob(id, BlobType.map), id)));
    expect(pages).toEqual(expected.pages);

    const ids = await repo.listSnapshotIds();
    expect(ids).toHaveLength(1);
    const manifest = await repo.loadManifest(ids[0]!);
    // bytesStored counts the committed files, whose compressed map pages may differ by zstd version.
    const storedBytes = (await Promise.all([...packs.map((p) => repo.backend.size('data', p)), repo.backend.size('index', indexNames[0]!)])).reduce((a, b) => a + b, 0);
    expect(manifest).toEqual({ ...expected.manifest, summary: { ...expected.manifest.summary, bytesStored: storedBytes } });
    expect(fingerprintTree(ENCRYPTED_DIR)).toEqual(before);
  });

  it('refuses a wrong password', async () => {
    await expect(Repository.open(localBackend(ENCRYPTED_DIR), () => `${ENCRYPTED_PASSWORD}!`)).rejects.toMatchObject({ code: 'PermissionDenied' });
  });
});
