import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { newKeys, unseal, type RepoKeys } from './crypto.js';
import { BlobType, Compression, PACK_ENTRY_BYTES, PACK_MAGIC, PACK_TRAILER_BYTES } from './format.js';
import { blobAad, decodeEntries, encodeEntries, PackBuilder, parsePackTail, type PackEntry } from './pack.js';
import { sealBlob } from './pack.js';

const strataError = (code: string) => expect.objectContaining({ name: 'StrataError', code });

interface BuiltPack {
  packId: string;
  bytes: Buffer;
  entries: PackEntry[];
  raws: Map<string, Buffer>;
}

function buildPack(keys: RepoKeys, blobCount = 3): BuiltPack {
  const builder = new PackBuilder();
  const raws = new Map<string, Buffer>();
  const types = [BlobType.data, BlobType.digests, BlobType.map];
  for (let i = 0; i < blobCount; i++) {
    const id = randomBytes(32);
    const raw = randomBytes(100 + i * 37);
    raws.set(id.toString('hex'), raw);
    const type = types[i % types.length]!;
    builder.add(type, Compression.none, id, sealBlob(keys, type, id.toString('hex'), raw), raw.length);
  }
  const { packId, parts, entries, sizeBytes } = builder.finish(keys);
  const bytes = Buffer.concat(parts);
  expect(sizeBytes).toBe(bytes.length);
  return { packId, bytes, entries, raws };
}

describe.each([
  ['unencrypted', newKeys(false)],
  ['encrypted', newKeys(true)],
])('pack files (%s)', (_label, keys) => {
  it('parse back to the entries the builder wrote, each blob opening at its offset', () => {
    const { packId, bytes, entries, raws } = buildPack(keys);
    expect(packId).toBe(createHash('sha256').update(bytes).digest('hex'));
    const parsed = parsePackTail(keys, bytes, bytes.length, packId);
    expect(parsed).toEqual(entries);
    expect(parsed.map((e) => e.type)).toEqual([BlobType.data, BlobType.digests, BlobType.map]);
    for (const e of parsed) {
      const stored = bytes.subarray(e.offset, e.offset + e.storedLength);
      const raw = unseal(keys, stored, blobAad(e.type, e.id), 'blob');
      expect(raw.equals(raws.get(e.id.toString('hex'))!)).toBe(true);
      expect(e.rawLength).toBe(raw.length);
    }
  });

  it('parse from a tail that holds just the header and trailer', () => {
    const { packId, bytes, entries } = buildPack(keys);
    const blobBytes = entries.reduce((n, e) => n + e.storedLength, 0);
    const tail = bytes.subarray(blobBytes);
    expect(parsePackTail(keys, tail, bytes.length, packId)).toEqual(entries);
  });

  it('an empty pack parses to no entries', () => {
    const { packId, parts } = new PackBuilder().finish(keys);
    const bytes = Buffer.concat(parts);
    expect(parsePackTail(keys, bytes, bytes.length, packId)).toEqual([]);
  });

  it('a pack cut short at the end has no trailer: Corrupt', () => {
    const { packId, bytes } = buildPack(keys);
    const cut = bytes.subarray(0, bytes.length - 5);
    expect(() => parsePackTail(keys, cut, cut.length, packId)).toThrow(strataError('Corrupt'));
  });

  it('a pack shorter than a trailer is Corrupt', () => {
    expect(() => parsePackTail(keys, Buffer.alloc(PACK_TRAILER_BYTES - 1), PACK_TRAILER_BYTES - 1, 'p')).toThrow(strataError('Corrupt'));
  });

  it('a pack that lost blob bytes but kept its tail lists blobs past its data: Corrupt', () => {
    const { packId, bytes } = buildPack(keys);
    const cut = bytes.subarray(50);
    expect(() => parsePackTail(keys, cut, cut.length, packId)).toThrow(/lists a blob past the end/);
  });

  it('a header length larger than the pack is Corrupt', () => {
    const { packId, bytes } = buildPack(keys);
    const bad = Buffer.from(bytes);
    bad.writeUInt32LE(bytes.length, bytes.length - PACK_TRAILER_BYTES);
    expect(() => parsePackTail(keys, bad, bad.length, packId)).toThrow(strataError('Corrupt'));
  });

  it('a wrong trailer magic is Corrupt', () => {
    const { packId, bytes } = buildPack(keys);
    const bad = Buffer.from(bytes);
    bad[bad.length - 1] = 'X'.charCodeAt(0);
    expect(() => parsePackTail(keys, bad, bad.length, packId)).toThrow(strataError('Corrupt'));
  });

  it('a newer pack version is Unsupported and says to upgrade', () => {
    const { packId, bytes } = buildPack(keys);
    const bad = Buffer.from(bytes);
    bad.writeUInt32LE(2, bytes.length - PACK_TRAILER_BYTES + 4);
    expect(() => parsePackTail(keys, bad, bad.length, packId)).toThrow(strataError('Unsupported'));
    expect(() => parsePackTail(keys, bad, bad.length, packId)).toThrow(/upgrade Strata/);
  });
});

describe('pack header', () => {
  const entry = (type: number, compression: number): PackEntry => ({
    type: type as BlobType,
    compression: compression as Compression,
    id: Buffer.alloc(32, 0xab),
    offset: 7,
    storedLength: 1000,
    rawLength: 2000,
  });

  it('entries are 46 bytes after a 4-byte count and round-trip', () => {
    const list = [entry(BlobType.data, Compression.zstd), entry(BlobType.map, Compression.none)];
    const buf = encodeEntries(list);
    expect(buf.length).toBe(4 + 2 * PACK_ENTRY_BYTES);
    expect(decodeEntries(buf, 0, 'test header')).toEqual({ entries: list, end: buf.length });
  });

  it('decoding starts at the given offset and reports where it ended', () => {
    const buf = Buffer.concat([Buffer.alloc(10, 0xee), encodeEntries([entry(BlobType.digests, Compression.none)]), Buffer.alloc(3)]);
    const { entries, end } = decodeEntries(buf, 10, 'test header');
    expect(entries).toHaveLength(1);
    expect(end).toBe(10 + 4 + PACK_ENTRY_BYTES);
  });

  it('an unknown blob type is Corrupt', () => {
    const buf = encodeEntries([entry(9, Compression.none)]);
    expect(() => decodeEntries(buf, 0, 'test header')).toThrow(/unknown type 9/);
  });

  it('an unknown compression is Corrupt', () => {
    const buf = encodeEntries([entry(BlobType.data, 5)]);
    expect(() => decodeEntries(buf, 0, 'test header')).toThrow(strataError('Corrupt'));
  });

  it('a count larger than the bytes that follow is Corrupt', () => {
    const buf = encodeEntries([entry(BlobType.data, Compression.none)]);
    buf.writeUInt32LE(2, 0);
    expect(() => decodeEntries(buf, 0, 'test header')).toThrow(strataError('Corrupt'));
    expect(() => decodeEntries(Buffer.alloc(3), 0, 'test header')).toThrow(strataError('Corrupt'));
  });

  it('an encrypted pack whose header was altered is Corrupt', () => {
    const keys = newKeys(true);
    const { packId, bytes } = buildPack(keys);
    const bad = Buffer.from(bytes);
    bad[bad.length - PACK_TRAILER_BYTES - 20]! ^= 0x40;
    expect(() => parsePackTail(keys, bad, bad.length, packId)).toThrow(strataError('Corrupt'));
  });

  it('the trailer is header length, version 1 and the magic', () => {
    const keys = newKeys(false);
    const { bytes, entries } = buildPack(keys, 2);
    const trailer = bytes.subarray(bytes.length - PACK_TRAILER_BYTES);
    expect(trailer.readUInt32LE(0)).toBe(4 + entries.length * PACK_ENTRY_BYTES);
    expect(trailer.readUInt32LE(4)).toBe(1);
    expect(trailer.subarray(8).equals(PACK_MAGIC)).toBe(true);
  });
});
