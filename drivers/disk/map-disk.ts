// The disk map: the layout `strata inspect` shows and the valid extents a backup reads — used
// blocks of filesystems Strata can read (ext, XFS, FAT, exFAT, swap), whole volumes otherwise, and every
// byte outside the volumes.
import type { BlockSource } from '../../agent-core/block-source.js';
import type { DiskLayout, FilesystemKind, VolumeInfo } from '../../agent-core/api/disk-layout.js';
import { isStrataError } from '../../agent-core/api/errors.js';
import { complementExtents, normalizeExtents, totalBytes, type Extent } from '../../agent-core/extents.js';
import { detectFilesystem } from './detect-filesystem.js';
import { readExfatUsedExtents } from './exfat-used-extents.js';
import { readExtUsedExtents } from './ext-used-extents.js';
import { readFatUsedExtents } from './fat-used-extents.js';
import { readSwapUsedExtents } from './swap-used-extents.js';
import { readXfsUsedExtents } from './xfs-used-extents.js';
import { readPartitionTable } from './partition-table.js';

export interface DiskMap {
  readonly layout: DiskLayout;
  /** Byte ranges a backup must read, absolute and normalized. */
  readonly validExtents: Extent[];
}

type UsedReader = (source: BlockSource, startBytes: number, sizeBytes: number) => Promise<{ extents: Extent[]; warnings: string[] }>;

/** The filesystems whose allocation metadata Strata reads; every other volume is kept whole. */
const USED_READERS: ReadonlyMap<FilesystemKind, UsedReader> = new Map<FilesystemKind, UsedReader>([
  ['ext2', readExtUsedExtents],
  ['ext3', readExtUsedExtents],
  ['ext4', readExtUsedExtents],
  ['xfs', readXfsUsedExtents],
  ['vfat', readFatUsedExtents],
  ['exfat', readExfatUsedExtents],
  ['swap', readSwapUsedExtents],
]);

/**
 * Reads the partition table and every volume's metadata. A volume whose metadata does not parse is
 * kept whole with a warning; a filesystem larger than its volume is refused (InvalidInput), since
 * backing it up would silently miss its tail.
 */
export async function mapDisk(source: BlockSource): Promise<DiskMap> {
  const table = await readPartitionTable(source);
  const warnings = [...table.warnings];
  const regions =
    table.table === 'none'
      ? [{ index: 0, startBytes: 0, sizeBytes: source.sizeBytes, partitionType: null }]
      : table.partitions.map((p) => ({ index: p.index, startBytes: p.startBytes, sizeBytes: p.sizeBytes, partitionType: p.partitionType }));

  const volumes: VolumeInfo[] = [];
  const valid: Extent[] = [];
  for (const region of regions) {
    const whole: Extent = { startBytes: region.startBytes, lengthBytes: region.sizeBytes };
    const fs = await detectFilesystem(source, region.startBytes, region.sizeBytes);
    let used: Extent[] = [whole];
    if (fs.otherSignatures.length > 0) {
      warnings.push(
        `Volume ${region.index} carries signatures of ${[fs.filesystem, ...fs.otherSignatures].join(' and ')}; it is unclear which is live, so the whole volume is kept.`,
      );
    } else if (USED_READERS.has(fs.filesystem)) {
      try {
        const map = await USED_READERS.get(fs.filesystem)!(source, region.startBytes, region.sizeBytes);
        used = map.extents;
        warnings.push(...map.warnings);
      } catch (err) {
        if (!isStrataError(err) || err.code !== 'Corrupt') throw err;
        warnings.push(`Volume ${region.index}: ${err.message} The whole volume is kept.`);
      }
    }
    const usedNormalized = normalizeExtents(used);
    valid.push(...usedNormalized);
    volumes.push({
      ...region,
      filesystem: fs.filesystem,
      label: fs.label,
      uuid: fs.uuid,
      usedBytes: totalBytes(usedNormalized),
    });
  }

  // Partition tables, gaps, EBRs and the backup GPT: outside every volume, so always kept.
  const covered = normalizeExtents(regions.map((r) => ({ startBytes: r.startBytes, lengthBytes: r.sizeBytes })));
  valid.push(...complementExtents(covered, source.sizeBytes));

  return {
    layout: {
      sizeBytes: source.sizeBytes,
      logicalSectorSize: table.sectorSizeBytes,
      partitionTable: table.table,
      volumes,
      warnings,
    },
    validExtents: normalizeExtents(valid),
  };
}
