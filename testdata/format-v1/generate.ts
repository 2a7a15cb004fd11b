// Builds the golden repositories of format v1 from fixed inputs; agent-core/repo/golden.test.ts
// re-encodes the same inputs and demands the committed bytes. Run: npx tsx testdata/format-v1/generate.ts
//
// plain/      unencrypted, byte-for-byte reproducible: every run writes identical files.
// encrypted/  the same repository sealed under ENCRYPTED_PASSWORD. Seals use random nonces, so it is
//             written only when missing (or with --encrypted); the test decodes it, never compares it.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import zstd from 'zstd-napi';
import { deriveKeys, hmac, passwordKey, wrapKeys, type KdfParams, type RepoKeys } from '../../agent-core/repo/crypto.js';
import { BlobType, Compression, ExtentKind, KDF_DEFAULTS, LABELS, REPO_FORMAT_VERSION, REPO_MAGIC, STORED_DIGEST_BYTES } from '../../agent-core/repo/format.js';
import { encodeIndex, type PackListing } from '../../agent-core/repo/index-file.js';
import { encodeManifest, type Manifest } from '../../agent-core/repo/manifest.js';
import { encodeMapPage, splitIntoPages, type DecodedMapPage, type MapExtent } from '../../agent-core/repo/map-page.js';
import { PackBuilder } from '../../agent-core/repo/pack.js';
import type { RepoConfig } from '../../agent-core/repo/repository.js';
import { sealBlob } from '../../agent-core/repo/pack.js';

export const GOLDEN_DIR = import.meta.dirname;
export const PLAIN_DIR = path.join(GOLDEN_DIR, 'plain');
export const ENCRYPTED_DIR = path.join(GOLDEN_DIR, 'encrypted');

/** Opens encrypted/. Kept here, in the open, because the sample protects nothing. */
export const ENCRYPTED_PASSWORD = 'strata golden format v1';

const ID_KEY = Buffer.from(Array.from({ length: 32 }, (_, i) => i));
const ENC_KEY = Buffer.from(Array.from({ length: 32 }, (_, i) => 0xa0 + i));
const KDF: KdfParams = { ...KDF_DEFAULTS, salt: Buffer.alloc(32, 0x5a).toString('base64') };
const KEY_FILE_NAME = 'f00dfeedf00dfeedf00dfeedf00dfeed';

const CREATED_AT = '2025-01-01T00:00:00.000Z';
const HOSTNAME = 'golden-host';
const BLOCK_BYTES = 4096;
/** Small pages so the one chunk crosses a page boundary, as large disks' chunks do. */
const MAP_PAGE_BYTES = 8192;
const SOURCE_BYTES = 4 * BLOCK_BYTES;
const SOURCE_NAME = 'golden.img';

export function plainKeys(): RepoKeys {
  return deriveKeys(null, ID_KEY);
}

export function encryptedKeys(): RepoKeys {
  return deriveKeys(ENC_KEY, ID_KEY);
}

/** Two blocks of fixed, incompressible bytes: a SHA-256 counter stream. */
export function chunkBytes(): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0; parts.length * 32 < 2 * BLOCK_BYTES; i++) parts.push(createHash('sha256').update(`strata golden block byte ${i}`).digest());
  return Buffer.concat(parts).subarray(0, 2 * BLOCK_BYTES);
}

export interface GoldenRepository {
  /** Path relative to the repository → bytes. */
  readonly files: Map<string, Buffer>;
  readonly chunkId: string;
  readonly digestsId: string;
  /** Raw content of every blob by id. */
  readonly blobs: Map<string, { type: BlobType; raw: Buffer }>;
  readonly pages: DecodedMapPage[];
  readonly mapIds: string[];
  readonly listings: PackListing[];
  readonly manifest: Manifest;
  readonly snapshotId: string;
}

/**
 * The source is four blocks: zero, two blocks of data (one chunk), unmapped. Pack 1 holds the chunk
 * and its digests, pack 2 the two map pages; one index lists both packs; one manifest names the pages.
 * With compressMaps the map pages are stored zstd-compressed (not byte-stable across zstd versions).
 */
export function buildRepository(keys: RepoKeys, options: { compressMaps: boolean }): GoldenRepository {
  const chunk = chunkBytes();
  const blockDigests = [0, 1].map((b) => hmac(keys.blockKey, chunk.subarray(b * BLOCK_BYTES, (b + 1) * BLOCK_BYTES)));
  const chunkId = hmac(keys.idKey, ...blockDigests).toString('hex');
  const digestsId = hmac(keys.idKey, Buffer.from(LABELS.digestsBlob), Buffer.from(chunkId, 'hex')).toString('hex');
  const digestsRaw = Buffer.concat(blockDigests.map((d) => d.subarray(0, STORED_DIGEST_BYTES)));

  const extents: MapExtent[] = [
    { startBytes: 0, lengthBytes: BLOCK_BYTES, kind: ExtentKind.zero },
    { startBytes: BLOCK_BYTES, lengthBytes: 2 * BLOCK_BYTES, kind: ExtentKind.data, chunkId, offsetInChunkBytes: 0 },
    { startBytes: 3 * BLOCK_BYTES, lengthBytes: BLOCK_BYTES, kind: ExtentKind.unmapped },
  ];
  const pages = splitIntoPages(extents, SOURCE_BYTES, MAP_PAGE_BYTES);
  const pageRaws = pages.map((p) => encodeMapPage(p.startBytes, p.lengthBytes, p.extents));
  const mapIds = pageRaws.map((raw) => hmac(keys.idKey, Buffer.from(LABELS.mapPage), raw).toString('hex'));

  const blobs = new Map<string, { type: BlobType; raw: Buffer }>([
    [chunkId, { type: BlobType.data, raw: chunk }],
    [digestsId, { type: BlobType.digests, raw: digestsRaw }],
  ]);
  pageRaws.forEach((raw, i) => blobs.set(mapIds[i]!, { type: BlobType.map, raw }));

  const files = new Map<string, Buffer>();
  const listings: PackListing[] = [];
  const writePack = (ids: string[], compress: boolean): void => {
    const builder = new PackBuilder();
    for (const id of ids) {
      const { type, raw } = blobs.get(id)!;
      const body = compress ? zstd.compress(raw, { compressionLevel: 3 }) : raw;
      builder.add(type, compress ? Compression.zstd : Compression.none, Buffer.from(id, 'hex'), sealBlob(keys, type, id, body), raw.length);
    }
    const { packId, parts, entries } = builder.finish(keys);
    files.set(`data/${packId.slice(0, 2)}/${packId}`, Buffer.concat(parts));
    listings.push({ packId, entries });
  };
  writePack([chunkId, digestsId], false);
  writePack(mapIds, options.compressMaps);

  const index = encodeIndex(keys, listings);
  files.set(`index/${index.name}`, index.bytes);
  const storedBytes = [...files.values()].reduce((n, b) => n + b.length, 0);

  const manifest: Manifest = {
    format: 1,
    summary: {
      sourceId: hmac(keys.idKey, Buffer.from(LABELS.source), Buffer.from(SOURCE_NAME)).toString('hex'),
      sourceName: SOURCE_NAME,
      parentId: null,
      mode: 'full',
      modeReason: null,
      tracker: 'none',
      createdAt: CREATED_AT,
      hostname: HOSTNAME,
      tags: ['golden'],
      sourceBytes: SOURCE_BYTES,
      validBytes: 3 * BLOCK_BYTES,
      bytesRead: 3 * BLOCK_BYTES,
      bytesNew: 2 * BLOCK_BYTES,
      bytesStored: storedBytes,
      durationMs: 42,
    },
    blockSizeBytes: BLOCK_BYTES,
    slotBytes: 1 << 20,
    mapPageBytes: MAP_PAGE_BYTES,
    incrementalsSinceFull: 0,
    layout: null,
    pages: pages.map((p, i) => [p.startBytes, p.lengthBytes, mapIds[i]!]),
  };
  const snapshot = encodeManifest(keys, manifest);
  files.set(`snapshots/${snapshot.id}`, snapshot.bytes);

  const encrypted = keys.encKey !== null;
  const config: RepoConfig = {
    magic: REPO_MAGIC,
    version: REPO_FORMAT_VERSION,
    id: '00112233445566778899aabbccddeeff',
    createdAt: CREATED_AT,
    encryption: encrypted ? 'aes-256-gcm' : 'none',
    compression: 'zstd',
    zstdLevel: 3,
    blockSizeBytes: BLOCK_BYTES,
    slotBytes: 1 << 20,
    mapPageBytes: MAP_PAGE_BYTES,
    packTargetBytes: 16 << 20,
    fullEvery: 63,
    ...(encrypted ? {} : { idKey: keys.idKey.toString('hex') }),
  };
  files.set('config', Buffer.from(JSON.stringify(config, null, 2) + '\n'));
  if (encrypted) {
    const keyFile = {
      kdf: { name: 'scrypt', ...KDF },
      wrapped: wrapKeys(keys, passwordKey(ENCRYPTED_PASSWORD, KDF)),
      createdAt: CREATED_AT,
      hostname: HOSTNAME,
    };
    files.set(`keys/${KEY_FILE_NAME}`, Buffer.from(JSON.stringify(keyFile, null, 2)));
  }

  return { files, chunkId, digestsId, blobs, pages, mapIds, listings, manifest, snapshotId: snapshot.id };
}

function writeRepository(dir: string, repo: GoldenRepository): void {
  rmSync(dir, { recursive: true, force: true });
  for (const [rel, bytes] of repo.files) {
    mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    writeFileSync(path.join(dir, rel), bytes);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  writeRepository(PLAIN_DIR, buildRepository(plainKeys(), { compressMaps: false }));
  console.log(`wrote ${PLAIN_DIR}`);
  if (!existsSync(ENCRYPTED_DIR) || process.argv.includes('--encrypted')) {
    writeRepository(ENCRYPTED_DIR, buildRepository(encryptedKeys(), { compressMaps: true }));
    console.log(`wrote ${ENCRYPTED_DIR}`);
  } else {
    console.log(`kept ${ENCRYPTED_DIR} (its seals are random; pass --encrypted to rewrite it)`);
  }
}
