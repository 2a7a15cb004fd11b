import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { newKeys } from './crypto.js';
import { BlobType, Compression, INDEX_MAGIC } from './format.js';
import { decodeIndex, encodeIndex, MasterIndex, type PackListing } from './index-file.js';
import type { PackEntry } from './pack.js';

const strataError = (code: string) => expect.objectContaining({ name: 'StrataError', code });

function entry(offset: number, type: BlobType = BlobType.data): PackEntry {
  return { type, compression: Compression.zstd, id: randomBytes(32), offset, storedLength: 100 + offset, rawLength: 4096 };
}

function listing(blobs: number): PackListing {
  const entries: PackEntry[] = [];
  for (let i = 0; i < blobs; i++) entries.push(entry(i * 1000, i % 2 ? BlobType.digests : BlobType.data));
  return { packId: randomBytes(32).toString('hex'), entries };
}

describe.each([
  ['unencrypted', newKeys(false)],
  ['encrypted', newKeys(true)],
])('index files (%s)', (_label, keys) => {
  it('round-trip every pack and entry, and are named by the SHA-256 of their bytes', () => {
    const packs = [listing(3), listing(0), listing(5)];
    const { name, bytes } = encodeIndex(keys, packs);
    expect(name).toBe(createHash('sha256').update(bytes).digest('hex'));
    expect(decodeIndex(keys, bytes, name)).toEqual(packs);
  });

  it('an index with no packs round-trips', () => {
    const { name, bytes } = encodeIndex(keys, []);
    expect(decodeIndex(keys, bytes, name)).toEqual([]);
  });
});

describe('index file errors', () => {
  const plain = newKeys(false);

  it('starts with the magic, version 1 and the pack count', () => {
    const { bytes } = encodeIndex(plain, [listing(1), listing(2)]);
    expect(bytes.subarray(0, 8).equals(INDEX_MAGIC)).toBe(true);
    expect(bytes.readUInt32LE(8)).toBe(1);
    expect(bytes.readUInt32LE(12)).toBe(2);
  });

  it('a wrong magic is Corrupt', () => {
    const { name, bytes } = encodeIndex(plain, [listing(1)]);
    bytes[0] = 0;
    expect(() => decodeIndex(plain, bytes, name)).toThrow(strataError('Corrupt'));
  });

  it('a newer version is Unsupported', () => {
    const { name, bytes } = encodeIndex(plain, [listing(1)]);
    bytes.writeUInt32LE(2, 8);
    expect(() => decodeIndex(plain, bytes, name)).toThrow(strataError('Unsupported'));
  });

  it('a file cut short at any point is Corrupt', () => {
    const { name, bytes } = encodeIndex(plain, [listing(2), listing(1)]);
    for (let length = 0; length < bytes.length; length++) {
      expect(() => decodeIndex(plain, bytes.subarray(0, length), name)).toThrow(strataError('Corrupt'));
    }
  });

  it('an encrypted index with a flipped bit is Corrupt', () => {
    const keys = newKeys(true);
    const { name, bytes } = encodeIndex(keys, [listing(2)]);
    bytes[40]! ^= 1;
    expect(() => decodeIndex(keys, bytes, name)).toThrow(strataError('Corrupt'));
  });

  it('an encrypted index does not open with another repository’s keys', () => {
    const { name, bytes } = encodeIndex(newKeys(true), [listing(2)]);
    expect(() => decodeIndex(newKeys(true), bytes, name)).toThrow(strataError('Corrupt'));
  });
});

describe('MasterIndex', () => {
  it('finds every blob of every listing with its pack and place', () => {
    const a = listing(3);
    const b = listing(2);
    const index = new MasterIndex();
    index.add(a);
    index.add(b);
    expect(index.size).toBe(5);
    expect([...index.packs]).toEqual([
      [a.packId, 3],
      [b.packId, 2],
    ]);
    for (const l of [a, b]) {
      for (const e of l.entries) {
        const hex = e.id.toString('hex');
        expect(index.has(hex)).toBe(true);
        expect(index.get(hex)).toEqual({
          packId: l.packId,
          type: e.type,
          compression: e.compression,
          offset: e.offset,
          storedLength: e.storedLength,
          rawLength: e.rawLength,
        });
      }
    }
    expect(new Set([...index.entries()].map(([id]) => id)).size).toBe(5);
  });

  it('does not know an id it was never given', () => {
    const index = new MasterIndex();
    index.add(listing(2));
    const unknown = randomBytes(32).toString('hex');
    expect(index.has(unknown)).toBe(false);
    expect(index.get(unknown)).toBeUndefined();
  });

  it('a blob stored in two packs counts once and resolves to one of its copies', () => {
    const a = listing(2);
    const b: PackListing = { packId: randomBytes(32).toString('hex'), entries: [{ ...a.entries[0]!, offset: 0 }] };
    const index = new MasterIndex();
    index.add(a);
    index.add(b);
    expect(index.size).toBe(2);
    expect(index.packs.size).toBe(2);
    expect([a.packId, b.packId]).toContain(index.get(a.entries[0]!.id.toString('hex'))!.packId);
  });

  it('holds what loading the encoded index files gives back', () => {
    const keys = newKeys(true);
    const packs = [listing(4), listing(1)];
    const { name, bytes } = encodeIndex(keys, packs);
    const index = new MasterIndex();
    for (const l of decodeIndex(keys, bytes, name)) index.add(l);
    expect(index.size).toBe(5);
    expect(index.get(packs[1]!.entries[0]!.id.toString('hex'))?.packId).toBe(packs[1]!.packId);
  });
});
