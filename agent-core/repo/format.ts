// Every magic value, version and default of repository format v1 in one place. docs/FORMAT.md is
// the normative description; a change here is a format change and must change the golden fixtures.

export const REPO_MAGIC = 'strata-repository';
export const REPO_FORMAT_VERSION = 1;

/** Trailer magic of a pack file (8 bytes, ASCII). */
export const PACK_MAGIC = Buffer.from('STRATAPK', 'ascii');
export const PACK_VERSION = 1;
/** headerLength u32 + version u32 + magic 8 bytes. */
export const PACK_TRAILER_BYTES = 16;
/** type u8, compression u8, id 32, offset u32, storedLength u32, rawLength u32. */
export const PACK_ENTRY_BYTES = 46;

export const INDEX_MAGIC = Buffer.from('STRATAIX', 'ascii');
export const INDEX_VERSION = 1;

export const MAP_PAGE_MAGIC = Buffer.from('STRATAMP', 'ascii');
export const MAP_PAGE_VERSION = 1;

export const MANIFEST_VERSION = 1;

/** Blob types stored in packs. */
export const BlobType = { data: 1, digests: 2, map: 3 } as const;
export type BlobType = (typeof BlobType)[keyof typeof BlobType];
export const BLOB_TYPE_NAMES: Record<BlobType, string> = { 1: 'data', 2: 'digests', 3: 'map' };

export const Compression = { none: 0, zstd: 1 } as const;
export type Compression = (typeof Compression)[keyof typeof Compression];

/** Map extent kinds inside a map page. */
export const ExtentKind = { unmapped: 0, zero: 1, data: 2 } as const;
export type ExtentKind = (typeof ExtentKind)[keyof typeof ExtentKind];

export const ID_BYTES = 32;
/** Bytes of each block digest kept in a digests blob (a truncated 32-byte HMAC). */
export const STORED_DIGEST_BYTES = 16;

export const DEFAULTS = {
  blockSizeBytes: 4096,
  /** Largest chunk; chunks never cross a multiple of this on the disk ("slots"). */
  slotBytes: 1 << 20,
  /** Disk bytes covered by one map page. */
  mapPageBytes: 256 << 20,
  /** A pack is closed once its blobs reach this size. */
  packTargetBytes: 16 << 20,
  /** Incrementals between forced full reads (seed 004 uses 63). */
  fullEvery: 63,
  /** zstd level 1: 1.7x the speed of level 3 for about 3 % more bytes on mixed disks (bench). */
  zstdLevel: 1,
  /**
   * In an incremental, a slot whose changed share is at least this is stored whole (as a full
   * backup would chunk it) rather than as changed runs, so chains defragment themselves.
   */
  wholeSlotChangedShare: 0.9,
} as const;

/** scrypt parameters for new keys: 2^15 × 8 × 1 costs ~32 MiB and ~100 ms. */
export const KDF_DEFAULTS = { N: 1 << 15, r: 8, p: 1 } as const;

/** Domain-separation labels for keyed hashes. */
export const LABELS = {
  blockKey: 'strata v1 block digest key',
  digestsBlob: 'strata v1 digests of ',
  source: 'strata v1 source ',
  snapshot: 'strata v1 snapshot ',
  mapPage: 'strata v1 map page ',
} as const;

export const DIRS = {
  keys: 'keys',
  data: 'data',
  index: 'index',
  snapshots: 'snapshots',
  locks: 'locks',
  tmp: 'tmp',
} as const;
