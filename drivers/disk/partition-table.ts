// Finds a disk's partition table — GPT behind its protective MBR, a classic MBR with its logical
// chain, or none — and lists the partitions in it. Everything odd becomes a warning, not a failure.
import type { BlockSource } from '../../agent-core/block-source.js';
import type { PartitionTableKind } from '../../agent-core/api/disk-layout.js';
import { detectFilesystem, isFilesystemBootSector } from './detect-filesystem.js';
import { MBR } from './disk-magic.js';
import { hasGptSignature, readGptTable } from './gpt-table.js';
import { hasMbrSignature, parseMbrEntries, readMbrTable } from './mbr-table.js';
import type { Partition } from './partition.js';

export type { Partition } from './partition.js';

export interface PartitionTable {
  readonly table: PartitionTableKind;
  /** The sector size the table's LBAs count in (for GPT, the one its header was found with). */
  readonly sectorSizeBytes: number;
  readonly partitions: Partition[];
  readonly warnings: string[];
}

/** Sector sizes to look for a GPT with: the source's own first, then the other common one. */
function candidateSectorSizes(logicalSectorSize: number): number[] {
  return [logicalSectorSize, ...[512, 4096].filter((s) => s !== logicalSectorSize)];
}

export async function readPartitionTable(source: BlockSource): Promise<PartitionTable> {
  const warnings: string[] = [];
  const logical = source.logicalSectorSize;
  const none: PartitionTable = { table: 'none', sectorSizeBytes: logical, partitions: [], warnings };
  if (source.sizeBytes < 512) return none;
  const sector0 = Buffer.from(await source.read(0, 512));
  const mbrSigned = hasMbrSignature(sector0);
  const entries = mbrSigned ? parseMbrEntries(sector0) : [];
  const protective = entries.some((e) => e.type === MBR.typeGptProtective);

  // A GPT is looked for behind a protective entry, and also where sector 0 has been wiped.
  if (protective || !mbrSigned) {
    for (const sectorSize of candidateSectorSizes(logical)) {
      if (!(await hasGptSignature(source, sectorSize))) continue;
      const gpt = await readGptTable(source, sectorSize, warnings);
      if (!gpt) break;
      if (!mbrSigned) warnings.push('The disk has a GPT but no protective MBR in sector 0; some systems will not see its partitions.');
      if (sectorSize !== logical) {
        warnings.push(`The GPT was found with ${sectorSize}-byte sectors although the source reports ${logical}-byte sectors; restore it to a disk with ${sectorSize}-byte sectors.`);
      }
      return { table: 'gpt', sectorSizeBytes: sectorSize, partitions: gpt.partitions, warnings };
    }
    if (protective) warnings.push('The protective MBR announces a GPT, but no valid GPT was found; the MBR entries are used instead.');
  }
  if (!mbrSigned) return none;

  // 0x55AA alone also ends the boot sector of an unpartitioned FAT/NTFS/exFAT volume. Like Linux,
  // take the sector as a table only if every boot indicator is 0x00 or 0x80.
  if (isFilesystemBootSector(sector0) || entries.some((e) => e.bootIndicator !== 0 && e.bootIndicator !== 0x80)) return none;
  const mbrWarnings: string[] = [];
  const partitions = await readMbrTable(source, sector0, logical, mbrWarnings);
  // An image file reports 512-byte sectors whatever disk it was taken from, and an MBR does not say
  // which size its LBAs count in. Counted in 4096-byte sectors instead, do its partitions start with
  // filesystems where in 512-byte sectors none did? Then it was made on a 4Kn disk.
  if (source.kind === 'file' && logical !== 4096 && (await recognised(source, partitions)) === 0) {
    const altWarnings: string[] = [];
    const alt = await readMbrTable(source, sector0, 4096, altWarnings);
    if (altWarnings.length === 0 && (await recognised(source, alt)) > 0) {
      warnings.push(
        `The MBR's partitions hold filesystems only when its sectors are counted as 4096 bytes, although the source reports ${logical}-byte sectors: it was made on a disk with 4096-byte sectors; restore it to such a disk.`,
      );
      return { table: 'mbr', sectorSizeBytes: 4096, partitions: alt, warnings };
    }
  }
  warnings.push(...mbrWarnings);
  return { table: 'mbr', sectorSizeBytes: logical, partitions, warnings };
}

/** How many of the partitions start with a filesystem or volume signature Strata knows. */
async function recognised(source: BlockSource, partitions: readonly Partition[]): Promise<number> {
  let n = 0;
  for (const p of partitions) {
    if (p.startBytes >= source.sizeBytes) continue;
    if ((await detectFilesystem(source, p.startBytes, p.sizeBytes)).filesystem !== 'unknown') n++;
  }
  return n;
}
