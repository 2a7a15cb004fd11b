// The disk map: the layout `strata inspect` shows and the valid extents a backup reads — used
// blocks of filesystems Strata can read (ext, XFS, FAT, exFAT, NTFS, btrfs, swap, and those inside
// LVM2 logical volumes), whole volumes otherwise (LUKS, unknown), and every byte outside the volumes.
import type { BlockSource } from '../../agent-core/block-source.js';
import type { DiskLayout, FilesystemKind, LogicalVolumeInfo, VolumeInfo } from '../../agent-core/api/disk-layout.js';
import { isStrataError } from '../../agent-core/api/errors.js';
import { complementExtents, normalizeExtents, totalBytes, type Extent } from '../../agent-core/extents.js';
import { readBtrfsUsedExtents } from './btrfs-used-extents.js';
import { detectFilesystem } from './detect-filesystem.js';
import { readExfatUsedExtents } from './exfat-used-extents.js';
import { readExtUsedExtents } from './ext-used-extents.js';
import { readFatUsedExtents } from './fat-used-extents.js';
import { readLuksUsedExtents } from './luks-used-extents.js';
import { readLvmUsedExtents } from './lvm-used-extents.js';
import { readNtfsUsedExtents } from './ntfs-used-extents.js';
import { readSwapUsedExtents } from './swap-used-extents.js';
import { readXfsUsedExtents } from './xfs-used-extents.js';
import { readPartitionTable } from './partition-table.js';

export interface DiskMap {
  readonly layout: DiskLayout;
  /** Byte ranges a backup must read, absolute and normalized. */
  readonly validExtents: Extent[];
}

type UsedReader = (source: BlockSource, startBytes: number, sizeBytes: number) => Promise<{ extents: Extent[]; warnings: string[]; label?: string | null }>;

/** The filesystems whose allocation metadata Strata reads; every other volume is kept whole. */
const USED_READERS: ReadonlyMap<FilesystemKind, UsedReader> = new Map<FilesystemKind, UsedReader>([
  ['ext2', readExtUsedExtents],
  ['ext3', readExtUsedExtents],
  ['ext4', readExtUsedExtents],
  ['xfs', readXfsUsedExtents],
  ['vfat', readFatUsedExtents],
  ['exfat', readExfatUsedExtents],
  ['swap', readSwapUsedExtents],
  ['ntfs', readNtfsUsedExtents],
  ['btrfs', readBtrfsUsedExtents],
  ['crypto_LUKS', readLuksUsedExtents],
]);

/** LVM inside a logical volume is followed this deep; deeper stacks are kept whole. */
const MAX_VOLUME_DEPTH = 2;

interface MappedVolume {
  readonly filesystem: FilesystemKind;
  readonly label: string | null;
  readonly uuid: string | null;
  /** Used byte ranges, absolute on the source, normalized. */
  readonly extents: Extent[];
  readonly warnings: string[];
  /** The logical volumes an LVM2 physical volume holds, as mapped. */
  readonly logicalVolumes: LogicalVolumeInfo[];
}

/**
 * Names what the volume holds and maps its used bytes: the filesystem's reader when there is one,
 * the whole volume otherwise or when its metadata is damaged (with a warning). LVM physical volumes
 * recurse into their logical volumes through this same function.
 */
async function mapVolume(source: BlockSource, startBytes: number, sizeBytes: number, name: string, depth: number): Promise<MappedVolume> {
  const warnings: string[] = [];
  const whole: Extent = { startBytes, lengthBytes: Math.max(0, Math.min(sizeBytes, source.sizeBytes - startBytes)) };
  const fs = await detectFilesystem(source, startBytes, sizeBytes);
  let used: Extent[] = [whole];
  let label = fs.label;
  const logicalVolumes: LogicalVolumeInfo[] = [];
  const reader: UsedReader | undefined =
    fs.filesystem === 'LVM2_member'
      ? depth < MAX_VOLUME_DEPTH
        ? (s, a, b) =>
            readLvmUsedExtents(s, a, b, async (lv, lvStart, lvSize, lvName) => {
              const m = await mapVolume(lv, lvStart, lvSize, `Logical volume ${lvName}`, depth + 1);
              logicalVolumes.push({ name: lvName, sizeBytes: lvSize, filesystem: m.filesystem, label: m.label, uuid: m.uuid, usedBytes: totalBytes(m.extents) });
              return { filesystem: m.filesystem, extents: m.extents, warnings: m.warnings };
            })
        : undefined
      : USED_READERS.get(fs.filesystem);
  if (fs.otherSignatures.length > 0) {
    warnings.push(
      `${name} carries signatures of ${[fs.filesystem, ...fs.otherSignatures].join(' and ')}; it is unclear which is live, so the whole volume is kept.`,
    );
  } else if (reader) {
    try {
      const map = await reader(source, startBytes, sizeBytes);
      used = map.extents;
      warnings.push(...map.warnings);
      if (map.label !== undefined) label = map.label;
    } catch (err) {
      if (!isStrataError(err) || err.code !== 'Corrupt') throw err;
      warnings.push(`${name}: ${err.message} The whole volume is kept.`);
    }
  } else if (fs.filesystem === 'LVM2_member') {
    warnings.push(`${name} is an LVM2 physical volume inside a logical volume ${depth} levels deep; it is kept whole.`);
  }
  return { filesystem: fs.filesystem, label, uuid: fs.uuid, extents: normalizeExtents(used), warnings, logicalVolumes };
}

/** A volume kept whole whatever it holds; only its name, label and UUID are read. */
async function wholeVolume(source: BlockSource, startBytes: number, sizeBytes: number): Promise<MappedVolume> {
  const fs = await detectFilesystem(source, startBytes, sizeBytes);
  const extents = normalizeExtents([{ startBytes, lengthBytes: Math.max(0, Math.min(sizeBytes, source.sizeBytes - startBytes)) }]);
  return { filesystem: fs.filesystem, label: fs.label, uuid: fs.uuid, extents, warnings: [], logicalVolumes: [] };
}

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

  // Two entries that claim the same bytes: which filesystem owns them is in doubt, so neither is trusted.
  const overlapping = new Set<number>();
  for (let i = 0; i < regions.length; i++) {
    for (let j = i + 1; j < regions.length; j++) {
      const a = regions[i]!;
      const b = regions[j]!;
      const from = Math.max(a.startBytes, b.startBytes);
      const to = Math.min(a.startBytes + a.sizeBytes, b.startBytes + b.sizeBytes);
      if (from >= to) continue;
      overlapping.add(i).add(j);
      warnings.push(`Partitions ${a.index} and ${b.index} overlap (bytes ${from}–${to}); both are kept whole. Check the partition table.`);
    }
  }

  const volumes: VolumeInfo[] = [];
  const valid: Extent[] = [];
  for (const [i, region] of regions.entries()) {
    const mapped = overlapping.has(i)
      ? await wholeVolume(source, region.startBytes, region.sizeBytes)
      : await mapVolume(source, region.startBytes, region.sizeBytes, `Volume ${region.index}`, 0);
    warnings.push(...mapped.warnings);
    for (const e of mapped.extents) valid.push(e);
    volumes.push({
      ...region,
      filesystem: mapped.filesystem,
      label: mapped.label,
      uuid: mapped.uuid,
      usedBytes: totalBytes(mapped.extents),
      ...(mapped.logicalVolumes.length > 0 ? { logicalVolumes: mapped.logicalVolumes } : {}),
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
