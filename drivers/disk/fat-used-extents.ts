// Which bytes of a FAT12/16/32 volume hold data or metadata: the reserved sectors, every FAT copy,
// the FAT12/16 root directory, and each data cluster whose entry is not 0 in any FAT copy.
import type { BlockSource } from '../../agent-core/block-source.js';
import { StrataError } from '../../agent-core/api/errors.js';
import type { Extent } from '../../agent-core/extents.js';
import { FAT } from './disk-magic.js';
import { finishUsedMap, volumeBytesOf, type UsedMap } from './used-map.js';
import { isPowerOfTwoIn } from './geometry-checks.js';

export interface FatGeometry {
  readonly kind: 'fat12' | 'fat16' | 'fat32';
  readonly bytesPerSector: number;
  readonly sectorsPerCluster: number;
  readonly reservedSectors: number;
  readonly fatCount: number;
  readonly fatSectors: number;
  readonly totalSectors: number;
  /** First sector of cluster 2. */
  readonly dataStartSector: number;
  readonly clusterCount: number;
}

/** The geometry from the boot sector's BPB; null when it cannot describe a FAT volume. */
export function parseFatBootSector(b: Buffer): FatGeometry | null {
  if (b.length < 512) return null;
  const bytesPerSector = b.readUInt16LE(FAT.bytesPerSectorOffset);
  const sectorsPerCluster = b[FAT.sectorsPerClusterOffset]!;
  const reservedSectors = b.readUInt16LE(FAT.reservedSectorsOffset);
  const fatCount = b[FAT.fatCountOffset]!;
  const rootEntries = b.readUInt16LE(FAT.rootEntriesOffset);
  const fat16Sectors = b.readUInt16LE(FAT.fatSectors16Offset);
  const fatSectors = fat16Sectors !== 0 ? fat16Sectors : b.readUInt32LE(FAT.fatSectors32Offset);
  const total16 = b.readUInt16LE(FAT.totalSectors16Offset);
  const totalSectors = total16 !== 0 ? total16 : b.readUInt32LE(FAT.totalSectors32Offset);
  if (!isPowerOfTwoIn(bytesPerSector, 512, 4096) || !isPowerOfTwoIn(sectorsPerCluster, 1, 128)) return null;
  if (reservedSectors === 0 || fatCount === 0 || fatSectors === 0) return null;
  const rootSectors = Math.ceil((rootEntries * FAT.dirEntryBytes) / bytesPerSector);
  const dataStartSector = reservedSectors + fatCount * fatSectors + rootSectors;
  if (dataStartSector >= totalSectors) return null;
  const clusterCount = Math.floor((totalSectors - dataStartSector) / sectorsPerCluster);
  const kind = clusterCount < FAT.fat16MinClusters ? 'fat12' : clusterCount < FAT.fat32MinClusters ? 'fat16' : 'fat32';
  // FAT32 has no fixed root directory and a 32-bit FAT size; FAT12/16 the other way round.
  if ((kind === 'fat32') !== (rootEntries === 0)) return null;
  const geo: FatGeometry = { kind, bytesPerSector, sectorsPerCluster, reservedSectors, fatCount, fatSectors, totalSectors, dataStartSector, clusterCount };
  if (fatSectors * bytesPerSector < fatBytesNeeded(geo)) return null;
  return geo;
}

function entryBits(kind: FatGeometry['kind']): number {
  return kind === 'fat12' ? 12 : kind === 'fat16' ? 16 : 32;
}

/** Bytes of one FAT that hold entries 0 .. clusterCount + 1. */
function fatBytesNeeded(geo: FatGeometry): number {
  return Math.ceil(((geo.clusterCount + FAT.firstCluster) * entryBits(geo.kind)) / 8);
}

/** Bytes of FAT read at once; a multiple of 4 (and FAT12's whole FAT is smaller), so no entry straddles two reads. */
const CHUNK_BYTES = 4 << 20;

/**
 * Maps the used clusters of the FAT volume at startBytes. Throws InvalidInput when the volume is
 * shorter than the filesystem, Corrupt when the boot sector makes no sense.
 */
export async function readFatUsedExtents(source: BlockSource, startBytes: number, sizeBytes: number): Promise<UsedMap> {
  const where = `at offset ${startBytes}`;
  const volumeBytes = volumeBytesOf(source.sizeBytes, startBytes, sizeBytes);
  const geo = parseFatBootSector(Buffer.from(await source.read(startBytes, 512)));
  if (!geo) throw new StrataError('Corrupt', `The FAT boot sector ${where} is damaged: its geometry is impossible.`);
  const bps = geo.bytesPerSector;
  const fsSizeBytes = geo.totalSectors * bps;
  if (fsSizeBytes > volumeBytes) {
    throw new StrataError('InvalidInput', `The ${geo.kind} filesystem ${where} claims ${fsSizeBytes} bytes but its volume holds only ${volumeBytes}; the image may be truncated.`);
  }
  const clusterBytes = geo.sectorsPerCluster * bps;
  const dataStartBytes = geo.dataStartSector * bps;
  // Boot and reserved sectors, every FAT copy and the fixed root directory.
  const used: Extent[] = [{ startBytes: 0, lengthBytes: dataStartBytes }];
  let runStart = -1;
  const closeRun = (cluster: number): void => {
    if (runStart < 0) return;
    used.push({ startBytes: dataStartBytes + (runStart - FAT.firstCluster) * clusterBytes, lengthBytes: (cluster - runStart) * clusterBytes });
    runStart = -1;
  };

  const bits = entryBits(geo.kind);
  const needed = fatBytesNeeded(geo);
  const lastCluster = geo.clusterCount + FAT.firstCluster - 1;
  const fatBytes = geo.fatSectors * bps;
  for (let chunk = 0; chunk < needed; chunk += CHUNK_BYTES) {
    const length = Math.min(CHUNK_BYTES, needed - chunk);
    // A cluster counts as used when any copy says so: copies that disagree cost bytes, not data.
    const merged = Buffer.alloc(length);
    for (let copy = 0; copy < geo.fatCount; copy++) {
      const data = await source.read(startBytes + geo.reservedSectors * bps + copy * fatBytes + chunk, length);
      for (let i = 0; i < length; i++) merged[i]! |= data[i]!;
    }
    const firstEntry = Math.max(FAT.firstCluster, Math.floor((chunk * 8) / bits));
    const endEntry = Math.min(lastCluster + 1, Math.floor(((chunk + length) * 8) / bits));
    for (let n = firstEntry; n < endEntry; n++) {
      let value: number;
      if (bits === 32) value = merged.readUInt32LE(n * 4 - chunk) & FAT.fat32EntryMask;
      else if (bits === 16) value = merged.readUInt16LE(n * 2 - chunk);
      else {
        const pair = merged.readUInt16LE(n + (n >> 1));
        value = n & 1 ? pair >> 4 : pair & 0xfff;
      }
      if (value !== 0 && runStart < 0) runStart = n;
      else if (value === 0) closeRun(n);
    }
  }
  closeRun(lastCluster + 1);
  // Sectors after the last whole cluster belong to no cluster; nothing says they are free.
  const clustersEndBytes = dataStartBytes + geo.clusterCount * clusterBytes;
  used.push({ startBytes: clustersEndBytes, lengthBytes: fsSizeBytes - clustersEndBytes });
  return finishUsedMap(used, startBytes, volumeBytes, fsSizeBytes, []);
}
