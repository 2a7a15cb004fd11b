// The classic PC partition table: four primary entries in sector 0 and, inside an extended
// partition, a linked chain of EBRs that each describe one logical partition and the next link.
import type { BlockSource } from '../../agent-core/block-source.js';
import { MBR } from './disk-magic.js';
import { fitToDisk, formatMbrType, type Partition } from './partition.js';

export interface MbrEntry {
  /** 0-based slot in the sector. */
  readonly slot: number;
  readonly bootIndicator: number;
  readonly type: number;
  readonly startLba: number;
  readonly sectorCount: number;
}

export function hasMbrSignature(sector: Uint8Array): boolean {
  return sector.length >= 512 && Buffer.from(sector.buffer, sector.byteOffset, 512).readUInt16LE(MBR.signatureOffset) === MBR.signature;
}

/** The four 16-byte entries of an MBR or EBR sector, empty ones included. */
export function parseMbrEntries(sector: Uint8Array): MbrEntry[] {
  const b = Buffer.from(sector.buffer, sector.byteOffset, 512);
  const out: MbrEntry[] = [];
  for (let slot = 0; slot < MBR.entryCount; slot++) {
    const o = MBR.entriesOffset + slot * MBR.entryBytes;
    out.push({ slot, bootIndicator: b[o]!, type: b[o + 4]!, startLba: b.readUInt32LE(o + 8), sectorCount: b.readUInt32LE(o + 12) });
  }
  return out;
}

export function isExtendedType(type: number): boolean {
  return (MBR.extendedTypes as ReadonlySet<number>).has(type);
}

function isUsed(e: MbrEntry): boolean {
  return e.type !== 0 && e.sectorCount > 0;
}

/**
 * The partitions of an MBR disk: primaries numbered by slot (1–4), then the logical partitions of
 * every extended partition in chain order from 5, as Linux numbers them. The extended containers
 * themselves are not listed. A broken chain stops with a warning; what it would have described
 * stays outside every partition, so the caller keeps it whole.
 */
export async function readMbrTable(
  source: BlockSource,
  sector0: Uint8Array,
  sectorSizeBytes: number,
  warnings: string[],
): Promise<Partition[]> {
  const partitions: Partition[] = [];
  const entries = parseMbrEntries(sector0);
  const containers: MbrEntry[] = [];
  for (const e of entries) {
    if (!isUsed(e)) continue;
    if (isExtendedType(e.type)) {
      containers.push(e);
      continue;
    }
    const fitted = fitToDisk(`MBR partition ${e.slot + 1}`, e.startLba * sectorSizeBytes, e.sectorCount * sectorSizeBytes, source.sizeBytes, warnings);
    if (fitted) partitions.push({ index: e.slot + 1, ...fitted, partitionType: formatMbrType(e.type) });
  }
  const next = { index: 5 };
  for (const container of containers) {
    await readLogicalChain(source, container, sectorSizeBytes, next, partitions, warnings);
  }
  return partitions;
}

async function readLogicalChain(
  source: BlockSource,
  container: MbrEntry,
  sectorSizeBytes: number,
  next: { index: number },
  partitions: Partition[],
  warnings: string[],
): Promise<void> {
  const containerStart = container.startLba;
  const containerEnd = container.startLba + container.sectorCount;
  const visited = new Set<number>();
  let ebrLba = containerStart;
  const where = `the extended partition ${container.slot + 1}`;
  while (true) {
    if (visited.has(ebrLba)) {
      warnings.push(`The chain of logical partitions in ${where} loops back to sector ${ebrLba}; Strata stopped following it there.`);
      return;
    }
    if ((ebrLba + 1) * sectorSizeBytes > source.sizeBytes) {
      warnings.push(`The chain of logical partitions in ${where} points to sector ${ebrLba}, past the end of the disk; Strata stopped following it there.`);
      return;
    }
    if (ebrLba < containerStart || ebrLba >= containerEnd) {
      warnings.push(`The chain of logical partitions in ${where} points to sector ${ebrLba}, outside the extended partition; Strata stopped following it there.`);
      return;
    }
    if (next.index - 5 >= MBR.maxLogicalPartitions) {
      warnings.push(`${where} describes more than ${MBR.maxLogicalPartitions} logical partitions; Strata stopped following its chain.`);
      return;
    }
    visited.add(ebrLba);
    const sector = await source.read(ebrLba * sectorSizeBytes, 512);
    if (!hasMbrSignature(sector)) {
      warnings.push(`The EBR at sector ${ebrLba} in ${where} has no 0x55AA signature; Strata stopped following the chain of logical partitions there.`);
      return;
    }
    const entries = parseMbrEntries(sector);
    for (const e of entries) {
      if (!isUsed(e) || isExtendedType(e.type)) continue;
      const startLba = ebrLba + e.startLba;
      // Slots 3 and 4 of an EBR are normally unused and sometimes hold garbage: like Linux, take
      // them only when they lie inside the extended partition.
      if (e.slot >= 2 && (startLba < containerStart || startLba + e.sectorCount > containerEnd)) continue;
      const index = next.index++;
      const fitted = fitToDisk(`Logical partition ${index}`, startLba * sectorSizeBytes, e.sectorCount * sectorSizeBytes, source.sizeBytes, warnings);
      if (fitted) partitions.push({ index, ...fitted, partitionType: formatMbrType(e.type) });
    }
    const link = entries.find((e) => isUsed(e) && isExtendedType(e.type));
    if (!link) return;
    // Links count from the start of the extended partition, not from the current EBR.
    ebrLba = containerStart + link.startLba;
  }
}
