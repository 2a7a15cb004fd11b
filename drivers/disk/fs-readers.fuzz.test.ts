// Damaged metadata must never crash or hang the XFS, FAT, exFAT and swap readers: every run maps
// (inside the volume, normalized) or throws a typed Corrupt or InvalidInput. Real images, bytes
// flipped in superblocks, AGFs, free-space trees, FATs, directories and bitmaps.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BlockSource } from '../../agent-core/block-source.js';
import { isStrataError } from '../../agent-core/api/errors.js';
import { normalizeExtents } from '../../agent-core/extents.js';
import { FileSource } from '../source/file-source.js';
import { patchFile, peekFile, prng, requireRoot, run, Scratch } from '../../test-support/disk.js';
import { exfatBootChecksum, parseExfatBootSector, readExfatUsedExtents } from './exfat-used-extents.js';
import { parseFatBootSector, readFatUsedExtents } from './fat-used-extents.js';
import { readSwapUsedExtents } from './swap-used-extents.js';
import { readXfsUsedExtents } from './xfs-used-extents.js';
import type { UsedMap } from './used-map.js';

const MiB = 1 << 20;

type Reader = (source: BlockSource, startBytes: number, sizeBytes: number) => Promise<UsedMap>;

interface Target {
  name: string;
  image: string;
  reader: Reader;
  /** [offset, length] ranges where flips reach the parser. */
  hot: Array<[number, number]>;
  /** Run after each set of flips: exFAT's boot checksum is recomputed so the flips get past it. */
  fixup?: (image: string) => void;
}

let scratch: Scratch;
const targets: Target[] = [];

function xfsDbField(image: string, commands: string[], field: string): number {
  const out = run('xfs_db', ['-r', ...commands.flatMap((c) => ['-c', c]), '-c', `print ${field}`, image]);
  return Number(new RegExp(`^${field} = (\\d+)`, 'm').exec(out)![1]);
}

beforeAll(() => {
  requireRoot();
  scratch = new Scratch('strata-fs-fuzz-');

  const xfs = scratch.image('xfs.img', 300 * MiB);
  run('mkfs.xfs', ['-q', '-f', '-b', 'size=1024', '-d', 'agcount=2', xfs]);
  const bs = 1024;
  const agBlocks = xfsDbField(xfs, ['sb 0'], 'agblocks');
  const xfsHot: Array<[number, number]> = [[0, 256]];
  for (let ag = 0; ag < 2; ag++) {
    xfsHot.push([ag * agBlocks * bs + 512, 64]);
    xfsHot.push([(ag * agBlocks + xfsDbField(xfs, [`agf ${ag}`], 'bnoroot')) * bs, 128]);
  }
  targets.push({ name: 'xfs', image: xfs, reader: readXfsUsedExtents, hot: xfsHot });
  // v4 has no checksums, so flips in its tree reach the record checks.
  const xfs4 = scratch.image('xfs4.img', 300 * MiB);
  run('mkfs.xfs', ['-q', '-f', '-m', 'crc=0', xfs4]);
  const agBlocks4 = xfsDbField(xfs4, ['sb 0'], 'agblocks');
  const bs4 = xfsDbField(xfs4, ['sb 0'], 'blocksize');
  const hot4: Array<[number, number]> = [[0, 256]];
  for (let ag = 0; ag < 2; ag++) {
    hot4.push([ag * agBlocks4 * bs4 + 512, 64]);
    hot4.push([(ag * agBlocks4 + xfsDbField(xfs4, [`agf ${ag}`], 'bnoroot')) * bs4, 64]);
  }
  targets.push({ name: 'xfs-v4', image: xfs4, reader: readXfsUsedExtents, hot: hot4 });

  for (const [kind, size, args] of [
    ['fat12', 2 * MiB, ['-F', '12']],
    ['fat16', 16 * MiB, ['-F', '16', '-s', '1']],
    ['fat32', 40 * MiB, ['-F', '32', '-s', '1']],
  ] as const) {
    const image = scratch.image(`${kind}.img`, size);
    run('mkfs.fat', [...args, image]);
    run('mcopy', ['-i', image, '/etc/hostname', '::/a.txt']);
    const g = parseFatBootSector(peekFile(image, 0, 512))!;
    const fatStart = g.reservedSectors * g.bytesPerSector;
    targets.push({ name: kind, image, reader: readFatUsedExtents, hot: [[0, 64], [fatStart, 64], [fatStart + g.fatSectors * g.bytesPerSector, 64]] });
  }

  const exfat = scratch.image('exfat.img', 16 * MiB);
  run('mkfs.exfat', ['-c', '512', exfat]);
  const g = parseExfatBootSector(peekFile(exfat, 0, 512))!;
  const heap = g.heapOffsetSectors * g.bytesPerSector;
  const clusterAt = (c: number): number => heap + (c - 2) * g.clusterBytes;
  targets.push({
    name: 'exfat',
    image: exfat,
    reader: readExfatUsedExtents,
    hot: [[0x40, 0x40], [g.fatOffsetSectors * g.bytesPerSector, 64], [clusterAt(g.rootCluster), 128], [clusterAt(2), 64]],
    fixup: (image) => {
      const region = peekFile(image, 0, 12 * 512);
      const sum = exfatBootChecksum(region, 512);
      const sector = Buffer.alloc(512);
      for (let o = 0; o < 512; o += 4) sector.writeUInt32LE(sum, o);
      patchFile(image, 11 * 512, sector);
    },
  });

  const swap = scratch.image('swap.img', 4 * MiB);
  run('mkswap', [swap]);
  targets.push({ name: 'swap', image: swap, reader: readSwapUsedExtents, hot: [[1024, 64], [4086, 10]] });
});
afterAll(() => scratch.cleanup());

async function mapsOrRefuses(t: Target): Promise<'mapped' | 'refused'> {
  const source = await FileSource.open(t.image);
  try {
    const map = await t.reader(source, 0, source.sizeBytes);
    expect(normalizeExtents(map.extents)).toEqual(map.extents);
    const last = map.extents.at(-1);
    if (last) expect(last.startBytes + last.lengthBytes).toBeLessThanOrEqual(source.sizeBytes);
    return 'mapped';
  } catch (err) {
    if (!isStrataError(err) || (err.code !== 'Corrupt' && err.code !== 'InvalidInput')) throw err;
    return 'refused';
  } finally {
    await source.close();
  }
}

describe('filesystem readers under damaged metadata', () => {
  it('map or refuse with a typed error, never crash or hang', async () => {
    const next = prng(20261123);
    const seen = new Map<string, { mapped: number; refused: number }>();
    for (let round = 0; round < 1200; round++) {
      const t = targets[round % targets.length]!;
      const [start, length] = t.hot[next() % t.hot.length]!;
      const saved: Array<[number, Buffer]> = [];
      const flips = 1 + (next() % 4);
      for (let i = 0; i < flips; i++) {
        const at = start + (next() % length);
        saved.push([at, peekFile(t.image, at, 1)]);
        patchFile(t.image, at, Buffer.from([next() & 0xff]));
      }
      if (t.fixup) {
        saved.push([11 * 512, peekFile(t.image, 11 * 512, 512)]);
        t.fixup(t.image);
      }
      try {
        const outcome = await mapsOrRefuses(t);
        const s = seen.get(t.name) ?? { mapped: 0, refused: 0 };
        s[outcome]++;
        seen.set(t.name, s);
      } finally {
        for (const [at, bytes] of saved.reverse()) patchFile(t.image, at, bytes);
      }
    }
    // The damage reached every parser: each was both refused and, with harmless flips, mapped.
    for (const t of targets) {
      expect(seen.get(t.name)!.mapped, t.name).toBeGreaterThan(0);
      if (t.name !== 'swap') expect(seen.get(t.name)!.refused, t.name).toBeGreaterThan(0);
    }
  });
});
