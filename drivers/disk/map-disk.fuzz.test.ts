// Damaged metadata must never crash or hang the disk map: every run either maps (with warnings)
// or refuses the input with InvalidInput. Real images, random bytes flipped in their tables,
// superblocks and descriptors.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ComputedSource, type BlockSource } from '../../agent-core/block-source.js';
import { DiskLayoutSchema } from '../../agent-core/api/disk-layout.js';
import { isStrataError } from '../../agent-core/api/errors.js';
import { complementExtents, intersectExtents, normalizeExtents, totalBytes } from '../../agent-core/extents.js';
import { prng, requireRoot, run, Scratch } from '../../test-support/disk.js';
import { mapDisk } from './map-disk.js';

const MiB = 1 << 20;

/**
 * An in-memory disk whose read() hands out a view into one shared buffer that the next read
 * overwrites, as the BlockSource contract allows: code that keeps a buffer across reads shows up.
 */
class ReusingMemorySource extends ComputedSource {
  readonly kind = 'file' as const;
  readonly path = 'memory';
  readonly logicalSectorSize = 512;
  readonly physicalSectorSize = 512;
  private shared = Buffer.alloc(0);

  constructor(readonly data: Buffer) {
    super();
  }

  get sizeBytes(): number {
    return this.data.length;
  }

  async read(offsetBytes: number, lengthBytes: number): Promise<Buffer> {
    const length = Math.max(0, Math.min(lengthBytes, this.data.length - offsetBytes));
    if (this.shared.length < length) this.shared = Buffer.alloc(length);
    this.shared.fill(0xa5);
    this.data.copy(this.shared, 0, offsetBytes, offsetBytes + length);
    return this.shared.subarray(0, length);
  }

}

let scratch: Scratch;
const images: Array<{ name: string; data: Buffer; hot: Array<[number, number]> }> = [];

beforeAll(() => {
  requireRoot();
  scratch = new Scratch('strata-fuzz-');
  const mbr = scratch.image('mbr.img', 16 * MiB);
  run('sfdisk', ['-q', mbr], 'label: dos\nstart=2048, size=8192, type=83\nstart=10240, type=5\nstart=12288, size=8192, type=83\nstart=22528, size=4096, type=83\n');
  run('mke2fs', ['-F', '-q', '-t', 'ext4', '-b', '1024', '-E', `offset=${MiB}`, mbr, '4M']);
  run('mke2fs', ['-F', '-q', '-t', 'ext2', '-b', '1024', '-E', `offset=${6 * MiB}`, mbr, '4M']);
  images.push({
    name: 'mbr',
    data: readFileSync(mbr),
    hot: [[0, 512], [5 * MiB, 512], [MiB, 8192], [6 * MiB, 8192], [11 * MiB - 512, 512]],
  });

  const gpt = scratch.image('gpt.img', 16 * MiB);
  run('sgdisk', ['-n', '1:2048:+6M', '-n', '2:0:0', gpt]);
  run('mke2fs', ['-F', '-q', '-t', 'ext4', '-b', '1024', '-O', 'meta_bg,^resize_inode', '-g', '1024', '-E', `offset=${MiB}`, gpt, '6M']);
  run('mke2fs', ['-F', '-q', '-t', 'ext4', '-b', '4096', '-O', 'bigalloc', '-C', '16384', '-E', `offset=${7 * MiB}`, gpt, '8M']);
  images.push({
    name: 'gpt',
    data: readFileSync(gpt),
    hot: [[0, 512], [512, 512], [1024, 16384], [16 * MiB - 512, 512], [MiB, 8192], [7 * MiB, 16384]],
  });
});
afterAll(() => scratch.cleanup());

type Outcome = 'clean' | 'warned' | 'refused';

async function expectMapsOrRefuses(source: BlockSource): Promise<Outcome> {
  try {
    const map = await mapDisk(source);
    expect(DiskLayoutSchema.safeParse(map.layout).success).toBe(true);
    expect(normalizeExtents(map.validExtents)).toEqual(map.validExtents);
    const last = map.validExtents.at(-1);
    if (last) expect(last.startBytes + last.lengthBytes).toBeLessThanOrEqual(source.sizeBytes);
    const volumes = normalizeExtents(map.layout.volumes.map((v) => ({ startBytes: v.startBytes, lengthBytes: v.sizeBytes })));
    const outside = complementExtents(volumes, source.sizeBytes);
    expect(totalBytes(intersectExtents(map.validExtents, outside))).toBe(totalBytes(outside));
    return map.layout.warnings.length > 0 ? 'warned' : 'clean';
  } catch (err) {
    if (!isStrataError(err) || err.code !== 'InvalidInput') throw err;
    return 'refused';
  }
}

describe('mapDisk under damaged metadata', () => {
  it('maps or refuses, never crashes, with bytes flipped in tables, superblocks and descriptors', async () => {
    const next = prng(20240611);
    const seen = { clean: 0, warned: 0, refused: 0 };
    for (let round = 0; round < 600; round++) {
      const image = images[round % images.length]!;
      const [start, length] = image.hot[next() % image.hot.length]!;
      const saved: Array<[number, number]> = [];
      const flips = 1 + (next() % 6);
      for (let i = 0; i < flips; i++) {
        const at = start + (next() % length);
        saved.push([at, image.data[at]!]);
        image.data[at] = next() & 0xff;
      }
      try {
        seen[await expectMapsOrRefuses(new ReusingMemorySource(image.data))]++;
      } finally {
        for (const [at, byte] of saved.reverse()) image.data[at] = byte;
      }
    }
    // The damage reached the parsers: many runs were warned about.
    expect(seen.warned).toBeGreaterThan(50);
  });

  it('maps or refuses pure noise', async () => {
    const next = prng(7);
    for (let round = 0; round < 40; round++) {
      const data = Buffer.alloc(256 * 1024);
      for (let i = 0; i < data.length; i += 4) data.writeUInt32LE(next(), i);
      // Half of them look like partition tables, so the parsers get past the signature checks.
      if (round % 2 === 0) data.writeUInt16LE(0xaa55, 510);
      await expectMapsOrRefuses(new ReusingMemorySource(data));
    }
  });

  it('reads the same map through a source that reuses its buffer as through fresh buffers', async () => {
    for (const image of images) {
      const reusing = await mapDisk(new ReusingMemorySource(image.data));
      const fresh = new ReusingMemorySource(image.data);
      fresh.read = async (o, l) => Buffer.from(image.data.subarray(o, Math.min(image.data.length, o + l)));
      expect(reusing).toEqual(await mapDisk(fresh));
      expect(reusing.layout.warnings).toEqual([]);
    }
  });
});
