// Which bytes of an exFAT volume hold data or metadata: everything before the cluster heap (boot
// regions, FATs) plus each cluster the allocation bitmap marks; the bitmap is found in the root directory.
import type { BlockSource } from '../../agent-core/block-source.js';
import { StrataError } from '../../agent-core/api/errors.js';
import { bitmapToExtents, type Extent } from '../../agent-core/extents.js';
import { EXFAT } from './disk-magic.js';
import { finishUsedMap, volumeBytesOf, type UsedMap } from './used-map.js';

export interface ExfatGeometry {
  readonly bytesPerSector: number;
  readonly clusterBytes: number;
  readonly volumeSectors: number;
  readonly fatOffsetSectors: number;
  readonly fatSectors: number;
  readonly fatCount: number;
  readonly heapOffsetSectors: number;
  readonly clusterCount: number;
  readonly rootCluster: number;
}

/** The geometry from the main boot sector; null when it cannot describe an exFAT volume. */
export function parseExfatBootSector(b: Buffer): ExfatGeometry | null {
  if (b.length < 512 || !b.subarray(EXFAT.oemOffset, EXFAT.oemOffset + EXFAT.oem.length).equals(EXFAT.oem)) return null;
  const sectorShift = b[EXFAT.bytesPerSectorShiftOffset]!;
  const clusterShift = b[EXFAT.sectorsPerClusterShiftOffset]!;
  // The specification: 512 to 4096-byte sectors, clusters up to 32 MiB.
  if (sectorShift < 9 || sectorShift > 12 || sectorShift + clusterShift > 25) return null;
  const g: ExfatGeometry = {
    bytesPerSector: 2 ** sectorShift,
    clusterBytes: 2 ** (sectorShift + clusterShift),
    volumeSectors: Number(b.readBigUInt64LE(EXFAT.volumeLengthOffset)),
    fatOffsetSectors: b.readUInt32LE(EXFAT.fatOffsetOffset),
    fatSectors: b.readUInt32LE(EXFAT.fatLengthOffset),
    fatCount: b[EXFAT.fatCountOffset]!,
    heapOffsetSectors: b.readUInt32LE(EXFAT.clusterHeapOffsetOffset),
    clusterCount: b.readUInt32LE(EXFAT.clusterCountOffset),
    rootCluster: b.readUInt32LE(EXFAT.rootClusterOffset),
  };
  const sectorsPerCluster = g.clusterBytes / g.bytesPerSector;
  const ok =
    (g.fatCount === 1 || g.fatCount === 2) &&
    g.fatOffsetSectors >= 24 &&
    g.fatSectors * g.bytesPerSector >= (g.clusterCount + EXFAT.firstCluster) * 4 &&
    g.heapOffsetSectors >= g.fatOffsetSectors + g.fatCount * g.fatSectors &&
    g.heapOffsetSectors + g.clusterCount * sectorsPerCluster <= g.volumeSectors &&
    Number.isSafeInteger(g.volumeSectors * g.bytesPerSector) &&
    g.rootCluster >= EXFAT.firstCluster &&
    g.rootCluster < g.clusterCount + EXFAT.firstCluster;
  return ok ? g : null;
}

/** The boot region checksum (sector 11 repeats it) over sectors 0–10, skipping VolumeFlags and PercentInUse. */
export function exfatBootChecksum(region: Buffer, bytesPerSector: number): number {
  let sum = 0;
  for (let i = 0; i < 11 * bytesPerSector; i++) {
    if (i === 106 || i === 107 || i === 112) continue;
    sum = ((sum & 1 ? 0x80000000 : 0) + (sum >>> 1) + region[i]!) >>> 0;
  }
  return sum;
}

/** Follows cluster chains through the first FAT, reading it in pages. */
class FatChains {
  private readonly pages = new Map<number, Buffer>();
  private static readonly PAGE_BYTES = 64 << 10;

  constructor(
    private readonly source: BlockSource,
    private readonly fatStartBytes: number,
    private readonly g: ExfatGeometry,
    private readonly where: string,
  ) {}

  private async entry(cluster: number): Promise<number> {
    const offset = cluster * 4;
    const page = Math.floor(offset / FatChains.PAGE_BYTES);
    let data = this.pages.get(page);
    if (!data) {
      data = Buffer.from(await this.source.read(this.fatStartBytes + page * FatChains.PAGE_BYTES, FatChains.PAGE_BYTES));
      this.pages.set(page, data);
    }
    return data.readUInt32LE(offset - page * FatChains.PAGE_BYTES);
  }

  /** The clusters of the chain from first, at most maxClusters long; Corrupt on a loop or a broken link. */
  async chain(first: number, maxClusters: number, what: string): Promise<number[]> {
    const out: number[] = [];
    const seen = new Set<number>();
    let cluster = first;
    while (out.length < maxClusters) {
      if (cluster < EXFAT.firstCluster || cluster >= this.g.clusterCount + EXFAT.firstCluster || seen.has(cluster)) {
        throw new StrataError('Corrupt', `The exFAT ${what} ${this.where} is damaged: its cluster chain reaches cluster ${cluster} outside the heap or twice.`);
      }
      seen.add(cluster);
      out.push(cluster);
      const next = await this.entry(cluster);
      if (next >= EXFAT.chainEndMin) break;
      cluster = next;
    }
    return out;
  }
}

/**
 * Maps the used clusters of the exFAT volume at startBytes. Throws InvalidInput when the volume is
 * shorter than the filesystem, Corrupt when the boot region or the bitmap cannot be found or trusted.
 */
export async function readExfatUsedExtents(source: BlockSource, startBytes: number, sizeBytes: number): Promise<UsedMap> {
  const where = `at offset ${startBytes}`;
  const volumeBytes = volumeBytesOf(source.sizeBytes, startBytes, sizeBytes);
  const head = Buffer.from(await source.read(startBytes, 512));
  const g = parseExfatBootSector(head);
  if (!g) throw new StrataError('Corrupt', `The exFAT boot sector ${where} is damaged: its geometry is impossible.`);
  const bps = g.bytesPerSector;
  const region = Buffer.from(await source.read(startBytes, 12 * bps));
  if (region.length < 12 * bps || region.readUInt32LE(11 * bps) !== exfatBootChecksum(region, bps)) {
    throw new StrataError('Corrupt', `The exFAT boot region ${where} fails its checksum.`);
  }
  const fsSizeBytes = g.volumeSectors * bps;
  if (fsSizeBytes > volumeBytes) {
    throw new StrataError('InvalidInput', `The exfat filesystem ${where} claims ${fsSizeBytes} bytes but its volume holds only ${volumeBytes}; the image may be truncated.`);
  }
  const heapStartBytes = g.heapOffsetSectors * bps;
  const clusterAt = (cluster: number): number => startBytes + heapStartBytes + (cluster - EXFAT.firstCluster) * g.clusterBytes;
  const fat = new FatChains(source, startBytes + g.fatOffsetSectors * bps, g, where);

  // The root directory: every 32-byte entry up to the end marker, looking for the bitmap entries
  // (two on a volume with two FATs; both are honoured).
  const maxDirClusters = Math.ceil((256 << 20) / g.clusterBytes);
  const rootClusters = await fat.chain(g.rootCluster, maxDirClusters, 'root directory');
  const bitmaps: Array<{ first: number; lengthBytes: number }> = [];
  scan: for (const cluster of rootClusters) {
    const data = Buffer.from(await source.read(clusterAt(cluster), g.clusterBytes));
    for (let o = 0; o + EXFAT.dirEntryBytes <= data.length; o += EXFAT.dirEntryBytes) {
      const type = data[o]!;
      if (type === EXFAT.entryEnd) break scan;
      if (type === EXFAT.entryBitmap) {
        bitmaps.push({ first: data.readUInt32LE(o + EXFAT.bitmapFirstClusterOffset), lengthBytes: Number(data.readBigUInt64LE(o + EXFAT.bitmapLengthOffset)) });
      }
    }
  }
  const bitmapBytes = Math.ceil(g.clusterCount / 8);
  if (bitmaps.length === 0) throw new StrataError('Corrupt', `The exFAT root directory ${where} has no allocation bitmap.`);

  // Boot regions, FATs and anything else before the cluster heap.
  const used: Extent[] = [{ startBytes: 0, lengthBytes: heapStartBytes }];
  const relative = (cluster: number): Extent => ({ startBytes: clusterAt(cluster) - startBytes, lengthBytes: g.clusterBytes });
  for (const c of rootClusters) used.push(relative(c));
  for (const bitmap of bitmaps) {
    if (bitmap.lengthBytes < bitmapBytes) throw new StrataError('Corrupt', `The exFAT allocation bitmap ${where} covers fewer clusters than the volume has.`);
    const clusters = await fat.chain(bitmap.first, Math.ceil(bitmapBytes / g.clusterBytes), 'allocation bitmap');
    if (clusters.length * g.clusterBytes < bitmapBytes) throw new StrataError('Corrupt', `The exFAT allocation bitmap ${where} ends early.`);
    let bitOffset = 0;
    for (const cluster of clusters) {
      used.push(relative(cluster));
      const bits = Math.min(g.clusterBytes * 8, g.clusterCount - bitOffset);
      const data = await source.read(clusterAt(cluster), g.clusterBytes);
      for (const e of bitmapToExtents(data, bits, g.clusterBytes, heapStartBytes, bitOffset)) used.push(e);
      bitOffset += bits;
    }
  }
  // Sectors past the last cluster belong to no cluster; nothing says they are free.
  const heapEndBytes = heapStartBytes + g.clusterCount * g.clusterBytes;
  used.push({ startBytes: heapEndBytes, lengthBytes: fsSizeBytes - heapEndBytes });
  return finishUsedMap(used, startBytes, volumeBytes, fsSizeBytes, []);
}
