// LUKS volumes are kept whole: the map covers every byte, names the version and the header size
// cryptsetup luksDump reports, and mapDisk reports the volume as crypto_LUKS.
import { writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileSource } from '../source/file-source.js';
import { Scratch, patchFile, requireRoot, run } from '../../test-support/disk.js';
import { readLuksUsedExtents } from './luks-used-extents.js';
import { mapDisk } from './map-disk.js';

const MiB = 1 << 20;

let scratch: Scratch;
let key: string;
beforeAll(() => {
  requireRoot();
  scratch = new Scratch('strata-luks-');
  key = scratch.path('key');
  writeFileSync(key, 'correct horse');
});
afterAll(() => scratch.cleanup());

function luksFormat(image: string, type: 'luks1' | 'luks2'): number {
  run('cryptsetup', ['luksFormat', '-q', '--type', type, '--key-file', key, '--pbkdf', 'pbkdf2', '--pbkdf-force-iterations', '1000', image]);
  const dump = run('cryptsetup', ['luksDump', image]);
  const m = type === 'luks1' ? /^Payload offset:\s+(\d+)/m.exec(dump) : /^\s+offset:\s+(\d+) \[bytes\]/m.exec(dump);
  if (!m) throw new Error(`luksDump printed no payload offset: ${dump}`);
  return type === 'luks1' ? Number(m[1]) * 512 : Number(m[1]);
}

describe('readLuksUsedExtents', () => {
  for (const type of ['luks1', 'luks2'] as const) {
    it(`keeps a ${type} volume whole and names its header size`, async () => {
      const image = scratch.image(`${type}.img`, 24 * MiB);
      const headerBytes = luksFormat(image, type);
      const source = await FileSource.open(image);
      try {
        const map = await readLuksUsedExtents(source, 0, source.sizeBytes);
        expect(map.extents).toEqual([{ startBytes: 0, lengthBytes: 24 * MiB }]);
        expect(map.warnings).toHaveLength(1);
        expect(map.warnings[0]).toContain(`LUKS${type === 'luks1' ? 1 : 2} volume`);
        expect(map.warnings[0]).toContain(`${headerBytes}-byte header`);
        const disk = await mapDisk(source);
        expect(disk.layout.volumes[0]!.filesystem).toBe('crypto_LUKS');
        expect(disk.layout.volumes[0]!.usedBytes).toBe(24 * MiB);
      } finally {
        await source.close();
      }
    });
  }

  it('keeps a LUKS2 volume with an unreadable JSON area whole, saying the header size is unknown', async () => {
    const image = scratch.image('bad-json.img', 24 * MiB);
    luksFormat(image, 'luks2');
    patchFile(image, 4096, Buffer.from('{{{{'));
    const source = await FileSource.open(image);
    try {
      const map = await readLuksUsedExtents(source, 0, source.sizeBytes);
      expect(map.usedBytes).toBe(24 * MiB);
      expect(map.warnings[0]).toContain('header of unknown size');
    } finally {
      await source.close();
    }
  });
});
