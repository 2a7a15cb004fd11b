// A short run of `npm run fuzz` (scripts/fuzz.mjs): the same corpus of real images (MBR, GPT, ext4,
// XFS, FAT, exFAT, NTFS, btrfs, swap, LVM2, LUKS1/2) and the same cases, so every parser, the new ones
// included, meets damaged metadata in the tests: mapDisk and each reader map or refuse with a typed error.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireRoot } from '../../test-support/disk.js';
import { buildFuzzCorpus } from './fuzz-corpus.js';
import { loadImages, runFuzzCase, SparseSource, type LoadedImage } from './fuzz-engine.js';
import { mapDisk } from './map-disk.js';

const cleanup: Array<() => void> = [];
let images: LoadedImage[];

beforeAll(async () => {
  requireRoot();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'strata-corpus-'));
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  images = await loadImages(buildFuzzCorpus(dir, cleanup));
});
afterAll(() => {
  for (const fn of cleanup) {
    try {
      fn();
    } catch {
      // best effort
    }
  }
});

describe('every disk parser under damaged metadata', () => {
  it('maps or refuses with a typed error, never crashes, on 2400 cases over 16 real images', async () => {
    const seen = new Map<string, { mapped: number; refused: number }>();
    for (let i = 0; i < 2400; i++) {
      const r = await runFuzzCase(images, 20261123, i);
      const s = seen.get(r.image) ?? { mapped: 0, refused: 0 };
      s[r.reader]++;
      seen.set(r.image, s);
    }
    // The damage reached each parser: each mapped some cases and refused others.
    for (const img of images) {
      const s = seen.get(img.spec.name)!;
      expect(s.mapped, img.spec.name).toBeGreaterThan(0);
      if (img.spec.reader !== 'partition-table') expect(s.refused, img.spec.name).toBeGreaterThan(0);
    }
  });

  it('maps every pristine image without warnings (LUKS: only its opaque-volume note)', async () => {
    for (const img of images) {
      const map = await mapDisk(new SparseSource(img.image, img.image.sizeBytes, img.spec.name));
      if (img.spec.reader === 'luks') expect(map.layout.warnings.join(' '), img.spec.name).toMatch(/^The LUKS\d volume/);
      else expect(map.layout.warnings, img.spec.name).toEqual([]);
      if (img.spec.name !== 'mbr-4k') expect(map.layout.volumes.some((v) => v.filesystem !== 'unknown'), img.spec.name).toBe(true);
    }
  });

  it('restores each image to its pristine bytes after every case', async () => {
    const before = images.map((img) => img.image.bytes(0, 1 << 20).toString('base64'));
    for (let i = 0; i < images.length * 3; i++) await runFuzzCase(images, 7, i);
    expect(images.map((img) => img.image.bytes(0, 1 << 20).toString('base64'))).toEqual(before);
  });
});
