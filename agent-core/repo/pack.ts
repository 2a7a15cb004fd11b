// Pack files: blobs back to back, then a sealed header listing them, then a 16-byte trailer
// (header length, version, magic). A pack's name is the SHA-256 of its bytes.
import { createHash } from 'node:crypto';
import { StrataError } from '../api/errors.js';
import { seal, unseal, type RepoKeys } from './crypto.js';
import { BlobType, Compression, ID_BYTES, PACK_ENTRY_BYTES, PACK_MAGIC, PACK_TRAILER_BYTES, PACK_VERSION } from './format.js';

export interface PackEntry {
  readonly type: BlobType;
  readonly compression: Compression;
  /** 32-byte blob id. */
  readonly id: Buffer;
  readonly offset: number;
  readonly storedLength: number;
  readonly rawLength: number;
}

const HEADER_AAD = Buffer.from('strata v1 pack header');

export function blobAad(type: BlobType, id: Uint8Array): Buffer {
  return Buffer.concat([Buffer.of(type), id]);
}

/** A blob's stored bytes: its (possibly compressed) body sealed with its type and id as associated data. */
export function sealBlob(keys: RepoKeys, type: BlobType, idHex: string, body: Uint8Array): Buffer {
  return seal(keys, body, blobAad(type, Buffer.from(idHex, 'hex')));
}

/**
 * Collects sealed blobs into one pack: the entries and the running SHA-256 that names it, and the
 * blobs' bytes until the caller takes them (to write the pack as it grows) or finishes it.
 */
export class PackBuilder {
  private parts: Buffer[] = [];
  private readonly list: PackEntry[] = [];
  private readonly hash = createHash('sha256');
  private offset = 0;

  get sizeBytes(): number {
    return this.offset;
  }

  get count(): number {
    return this.list.length;
  }

  add(type: BlobType, compression: Compression, id: Buffer, sealed: Buffer, rawLength: number): void {
    this.list.push({ type, compression, id, offset: this.offset, storedLength: sealed.length, rawLength });
    this.parts.push(sealed);
    this.hash.update(sealed);
    this.offset += sealed.length;
  }

  /** The blobs' bytes added since the last call, in order, for a caller that writes the pack as it grows. */
  takeParts(): Buffer[] {
    const taken = this.parts;
    this.parts = [];
    return taken;
  }

  /** The rest of the pack's bytes (the blobs not taken, then its header and trailer), its id and its entries. */
  finish(keys: RepoKeys): { packId: string; parts: Buffer[]; entries: PackEntry[]; sizeBytes: number } {
    const header = encodeEntries(this.list);
    const sealedHeader = seal(keys, header, HEADER_AAD);
    const trailer = Buffer.alloc(PACK_TRAILER_BYTES);
    trailer.writeUInt32LE(sealedHeader.length, 0);
    trailer.writeUInt32LE(PACK_VERSION, 4);
    PACK_MAGIC.copy(trailer, 8);
    this.hash.update(sealedHeader);
    this.hash.update(trailer);
    const parts = [...this.takeParts(), sealedHeader, trailer];
    return { packId: this.hash.digest('hex'), parts, entries: this.list, sizeBytes: this.offset + sealedHeader.length + PACK_TRAILER_BYTES };
  }
}

export function encodeEntries(entries: readonly PackEntry[]): Buffer {
  const buf = Buffer.alloc(4 + entries.length * PACK_ENTRY_BYTES);
  buf.writeUInt32LE(entries.length, 0);
  let o = 4;
  for (const e of entries) {
    buf[o] = e.type;
    buf[o + 1] = e.compression;
    e.id.copy(buf, o + 2);
    buf.writeUInt32LE(e.offset, o + 34);
    buf.writeUInt32LE(e.storedLength, o + 38);
    buf.writeUInt32LE(e.rawLength, o + 42);
    o += PACK_ENTRY_BYTES;
  }
  return buf;
}

/** Parses entries written by encodeEntries; `what` names the object in errors. */
export function decodeEntries(buf: Buffer, at: number, what: string): { entries: PackEntry[]; end: number } {
  if (buf.length < at + 4) throw corrupt(what, 'is truncated');
  const count = buf.readUInt32LE(at);
  const end = at + 4 + count * PACK_ENTRY_BYTES;
  if (end > buf.length) throw corrupt(what, `claims ${count} entries but is too short for them`);
  const entries: PackEntry[] = [];
  for (let i = 0, o = at + 4; i < count; i++, o += PACK_ENTRY_BYTES) {
    const type = buf[o] as BlobType;
    const compression = buf[o + 1] as Compression;
    if (type < BlobType.data || type > BlobType.map) throw corrupt(what, `has an entry of unknown type ${type}`);
    if (compression !== Compression.none && compression !== Compression.zstd) throw corrupt(what, `has an entry with unknown compression ${compression}`);
    entries.push({
      type,
      compression,
      id: Buffer.from(buf.subarray(o + 2, o + 2 + ID_BYTES)),
      offset: buf.readUInt32LE(o + 34),
      storedLength: buf.readUInt32LE(o + 38),
      rawLength: buf.readUInt32LE(o + 42),
    });
  }
  return { entries, end };
}

/** Reads the entry list from a whole pack (or its tail, given the pack's full size). */
export function parsePackTail(keys: RepoKeys, tail: Buffer, packSizeBytes: number, packId: string): PackEntry[] {
  const what = `pack ${packId}`;
  if (tail.length < PACK_TRAILER_BYTES) throw corrupt(what, 'is too short to be a pack');
  const t = tail.subarray(tail.length - PACK_TRAILER_BYTES);
  if (!t.subarray(8).equals(PACK_MAGIC)) throw corrupt(what, 'has no pack trailer');
  const version = t.readUInt32LE(4);
  if (version !== PACK_VERSION) {
    throw new StrataError('Unsupported', `${what} uses pack format ${version}, which this Strata does not know; upgrade Strata.`);
  }
  const headerLength = t.readUInt32LE(0);
  const headerStart = tail.length - PACK_TRAILER_BYTES - headerLength;
  if (headerStart < 0) throw corrupt(what, 'has a header longer than the pack');
  const header = unseal(keys, tail.subarray(headerStart, tail.length - PACK_TRAILER_BYTES), HEADER_AAD, `The header of ${what}`);
  const { entries } = decodeEntries(header, 0, what);
  const dataEnd = packSizeBytes - PACK_TRAILER_BYTES - headerLength;
  for (const e of entries) {
    if (e.offset + e.storedLength > dataEnd) throw corrupt(what, 'lists a blob past the end of its data');
  }
  return entries;
}

function corrupt(what: string, problem: string): StrataError {
  return new StrataError('Corrupt', `${what} ${problem}; the repository is damaged (run \`strata verify --read-data\`).`);
}
