// Index files map blob ids to their place in packs. Written after the packs they list (FORMAT.md,
// write order), loaded whole into memory: the hot-path lookup is a Map, never a database row.
import { createHash } from 'node:crypto';
import { StrataError } from '../api/errors.js';
import { seal, unseal, type RepoKeys } from './crypto.js';
import { BlobType, Compression, ID_BYTES, INDEX_MAGIC, INDEX_VERSION } from './format.js';
import { decodeEntries, encodeEntries, type PackEntry } from './pack.js';

export interface IndexedBlob {
  readonly packId: string;
  readonly type: BlobType;
  readonly compression: Compression;
  readonly offset: number;
  readonly storedLength: number;
  readonly rawLength: number;
}

export interface PackListing {
  readonly packId: string;
  readonly entries: readonly PackEntry[];
}

const INDEX_AAD = Buffer.from('strata v1 index');

export function encodeIndex(keys: RepoKeys, packs: readonly PackListing[]): { name: string; bytes: Buffer } {
  const head = Buffer.alloc(16);
  INDEX_MAGIC.copy(head, 0);
  head.writeUInt32LE(INDEX_VERSION, 8);
  head.writeUInt32LE(packs.length, 12);
  const parts: Buffer[] = [head];
  for (const p of packs) {
    parts.push(Buffer.from(p.packId, 'hex'), encodeEntries(p.entries));
  }
  const bytes = seal(keys, Buffer.concat(parts), INDEX_AAD);
  return { name: createHash('sha256').update(bytes).digest('hex'), bytes };
}

export function decodeIndex(keys: RepoKeys, stored: Buffer, name: string): PackListing[] {
  const what = `index ${name}`;
  const buf = unseal(keys, stored, INDEX_AAD, `Index file ${name}`);
  if (buf.length < 16 || !buf.subarray(0, 8).equals(INDEX_MAGIC)) {
    throw new StrataError('Corrupt', `${what} is not a Strata index; the repository is damaged (run \`strata verify\`).`);
  }
  const version = buf.readUInt32LE(8);
  if (version !== INDEX_VERSION) throw new StrataError('Unsupported', `${what} uses index format ${version}; upgrade Strata.`);
  const packCount = buf.readUInt32LE(12);
  const out: PackListing[] = [];
  let o = 16;
  for (let i = 0; i < packCount; i++) {
    if (o + ID_BYTES > buf.length) throw new StrataError('Corrupt', `${what} is truncated; the repository is damaged (run \`strata verify\`).`);
    const packId = buf.subarray(o, o + ID_BYTES).toString('hex');
    const { entries, end } = decodeEntries(buf, o + ID_BYTES, what);
    out.push({ packId, entries });
    o = end;
  }
  return out;
}

/** All index files merged in memory. */
export class MasterIndex {
  private readonly blobs = new Map<string, IndexedBlob>();
  readonly packs = new Map<string, number>();

  get size(): number {
    return this.blobs.size;
  }

  add(listing: PackListing): void {
    this.packs.set(listing.packId, listing.entries.length);
    for (const e of listing.entries) {
      this.blobs.set(e.id.toString('hex'), {
        packId: listing.packId,
        type: e.type,
        compression: e.compression,
        offset: e.offset,
        storedLength: e.storedLength,
        rawLength: e.rawLength,
      });
    }
  }

  has(idHex: string): boolean {
    return this.blobs.has(idHex);
  }

  get(idHex: string): IndexedBlob | undefined {
    return this.blobs.get(idHex);
  }

  entries(): IterableIterator<[string, IndexedBlob]> {
    return this.blobs.entries();
  }
}
