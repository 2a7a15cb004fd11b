import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { newKeys, seal } from './crypto.js';
import { LABELS } from './format.js';
import { decodeManifest, encodeManifest, summaryOf, type Manifest } from './manifest.js';

const strataError = (code: string) => expect.objectContaining({ name: 'StrataError', code });

function sampleManifest(): Manifest {
  return {
    format: 1,
    summary: {
      sourceId: '11'.repeat(32),
      sourceName: '/dev/vdb',
      parentId: null,
      mode: 'full',
      modeReason: 'first backup of this source',
      tracker: 'none',
      createdAt: '2025-01-02T03:04:05.000Z',
      hostname: 'backup-host',
      tags: ['nightly'],
      sourceBytes: 1 << 30,
      validBytes: 1 << 29,
      bytesRead: 1 << 29,
      bytesNew: 1 << 28,
      bytesStored: 1 << 27,
      durationMs: 1234.5,
    },
    blockSizeBytes: 4096,
    slotBytes: 1 << 20,
    mapPageBytes: 256 << 20,
    incrementalsSinceFull: 0,
    layout: { table: 'gpt', partitions: [] },
    pages: [
      [0, 256 << 20, '22'.repeat(32)],
      [256 << 20, 256 << 20, '33'.repeat(32)],
    ],
  };
}

const MANIFEST_AAD = Buffer.from('strata v1 snapshot');

describe.each([
  ['unencrypted', newKeys(false)],
  ['encrypted', newKeys(true)],
])('manifests (%s)', (_label, keys) => {
  it('round-trip to the same manifest', () => {
    const m = sampleManifest();
    const { id, bytes } = encodeManifest(keys, m);
    expect(decodeManifest(keys, bytes, id)).toEqual(m);
  });

  it('are named HMAC(idKey, label ‖ JSON) of their plaintext', () => {
    const m = sampleManifest();
    const { id } = encodeManifest(keys, m);
    const expected = createHmac('sha256', keys.idKey).update(LABELS.snapshot).update(JSON.stringify(m)).digest('hex');
    expect(id).toBe(expected);
  });

  it('stored under another name are Corrupt', () => {
    const { bytes } = encodeManifest(keys, sampleManifest());
    const other = encodeManifest(keys, { ...sampleManifest(), incrementalsSinceFull: 1 }).id;
    expect(() => decodeManifest(keys, bytes, other)).toThrow(strataError('Corrupt'));
    expect(() => decodeManifest(keys, bytes, other)).toThrow(/does not match its name/);
  });

  it('of a newer format are Unsupported and say to upgrade', () => {
    const newer = { ...sampleManifest(), format: 2 } as unknown as Manifest;
    const { id, bytes } = encodeManifest(keys, newer);
    expect(() => decodeManifest(keys, bytes, id)).toThrow(strataError('Unsupported'));
    expect(() => decodeManifest(keys, bytes, id)).toThrow(/upgrade Strata/);
  });

  it('that are not JSON are Corrupt', () => {
    expect(() => decodeManifest(keys, seal(keys, Buffer.from('{not json'), MANIFEST_AAD), 'x')).toThrow(strataError('Corrupt'));
  });

  it('missing a field of the schema are Corrupt', () => {
    const { pages: _pages, ...rest } = sampleManifest();
    const plain = Buffer.from(JSON.stringify(rest));
    const id = createHmac('sha256', keys.idKey).update(LABELS.snapshot).update(plain).digest('hex');
    expect(() => decodeManifest(keys, seal(keys, plain, MANIFEST_AAD), id)).toThrow(strataError('Corrupt'));
  });
});

describe('manifest sealing', () => {
  it('an encrypted manifest with a flipped bit is Corrupt', () => {
    const keys = newKeys(true);
    const { id, bytes } = encodeManifest(keys, sampleManifest());
    bytes[30]! ^= 4;
    expect(() => decodeManifest(keys, bytes, id)).toThrow(strataError('Corrupt'));
  });

  it('an unencrypted manifest is its JSON, so an edit shows as a name mismatch', () => {
    const keys = newKeys(false);
    const { id, bytes } = encodeManifest(keys, sampleManifest());
    expect(JSON.parse(bytes.toString('utf8'))).toEqual(sampleManifest());
    const edited = Buffer.from(bytes.toString('utf8').replace('nightly', 'weekly!'));
    expect(() => decodeManifest(keys, edited, id)).toThrow(/does not match its name/);
  });

  it('summaryOf puts the id in front of the stored summary', () => {
    const m = sampleManifest();
    expect(summaryOf('44'.repeat(32), m)).toEqual({ id: '44'.repeat(32), ...m.summary });
  });
});
