// The CPU-heavy work of backup and restore (block hashing, compression, sealing, verification),
// as a role the engine calls. drivers/compute runs it on worker threads with the native addon.
import type { BlobType, Compression } from '../repo/format.js';

export interface HashedWindow {
  /** 32-byte HMAC per block of each hashed run, concatenated in the order of the runs. */
  readonly digests: Buffer;
  /** 1 where a block is all zeros. */
  readonly zeroMask: Uint8Array;
}

export interface SealedBlob {
  /** The stored bytes; null when they were written over the start of the window's range instead (see seal's inPlace). */
  readonly sealed: Buffer | null;
  readonly storedLength: number;
  readonly compression: Compression;
  readonly rawLength: number;
  /**
   * For a data item given `digests16`: the id of its digests blob and that blob sealed (stored
   * uncompressed, docs/FORMAT.md §5), made beside the chunk so the main thread does neither. A
   * compute may leave them out; the caller then makes them itself.
   */
  readonly digests?: { readonly idHex: string; readonly sealed: Buffer };
}

/** One blob to seal: bytes [offset, offset+length) of a shared window. */
export interface SealItem {
  readonly offset: number;
  readonly length: number;
  readonly type: BlobType;
  readonly idHex: string;
  /** A data chunk's stored (16-byte) block digests: what its digests blob holds. */
  readonly digests16?: Uint8Array;
}

export interface BlockCompute {
  /** Hashes the blocks of each run [offset, offset+length) of a shared window buffer. */
  hash(window: SharedArrayBuffer, runs: readonly (readonly [number, number])[]): Promise<HashedWindow>;
  /**
   * Compresses (when it shrinks) and seals each item's bytes of a shared buffer as one blob, in one
   * task (so many small chunks cost one message, not one each). With inPlace, an item's stored
   * bytes replace the start of its range when they fit (its sealed is then null): no copy leaves
   * the shared buffer, and the caller writes from it, so it must not reuse the range until then.
   */
  seal(window: SharedArrayBuffer, items: readonly SealItem[], inPlace?: boolean): Promise<SealedBlob[]>;
  /** Opens a stored blob: unseal, decompress, and for data check that its block digests give idHex. */
  open(stored: Buffer, type: BlobType, idHex: string, compression: Compression, rawLength: number): Promise<Buffer>;
  /**
   * Opens a stored blob as `open` does, but returns only, for data, the stored-size (16-byte)
   * digests of its blocks — what its digests blob must hold. For verify, which needs no bytes back.
   */
  check(stored: Buffer, type: BlobType, idHex: string, compression: Compression, rawLength: number): Promise<{ digests16: Buffer | null }>;
  close(): Promise<void>;
}
