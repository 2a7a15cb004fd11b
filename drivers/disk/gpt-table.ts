// The GUID partition table: a header at LBA 1 and its copy at the last LBA, each pointing at an
// array of entries, each header and array guarded by a CRC-32. A damaged primary falls back to the
// backup; a damaged pair means there is no table Strata can trust.
import type { BlockSource } from '../../agent-core/block-source.js';
import { crc32 } from './crc32.js';
import { GPT } from './disk-magic.js';
import { formatGuid, isAllZero, readUtf16Name } from './disk-ids.js';
import { fitToDisk, type Partition } from './partition.js';

export interface GptTable {
  readonly sectorSizeBytes: number;
  readonly diskGuid: string;
  readonly partitions: Partition[];
}

interface GptHeader {
  readonly lba: number;
  readonly alternateLba: number;
  readonly diskGuid: string;
  readonly entriesLba: number;
  readonly entryCount: number;
  readonly entryBytes: number;
  readonly entriesCrc: number;
}

type HeaderResult = { header: GptHeader } | { problem: string };

function toSafeNumber(v: bigint): number {
  return v > BigInt(Number.MAX_SAFE_INTEGER) ? Number.NaN : Number(v);
}

function hasSignature(sector: Uint8Array): boolean {
  return sector.length >= GPT.signature.length && GPT.signature.equals(sector.subarray(0, GPT.signature.length));
}

async function readHeader(source: BlockSource, lba: number, sectorSizeBytes: number): Promise<HeaderResult> {
  if (!Number.isInteger(lba) || lba < 1 || (lba + 1) * sectorSizeBytes > source.sizeBytes) return { problem: `LBA ${lba} is not on the disk` };
  const raw = Buffer.from(await source.read(lba * sectorSizeBytes, sectorSizeBytes));
  if (raw.length < sectorSizeBytes || !hasSignature(raw)) return { problem: 'no "EFI PART" signature' };
  const headerBytes = raw.readUInt32LE(12);
  if (headerBytes < GPT.minHeaderBytes || headerBytes > sectorSizeBytes) return { problem: `header size ${headerBytes} is out of range` };
  const stored = raw.readUInt32LE(16);
  const copy = Buffer.from(raw.subarray(0, headerBytes));
  copy.writeUInt32LE(0, 16);
  if (crc32(copy) !== stored) return { problem: 'header CRC32 mismatch' };
  const myLba = toSafeNumber(raw.readBigUInt64LE(24));
  if (myLba !== lba) return { problem: `header says it is at LBA ${myLba}, not ${lba}` };
  const entryCount = raw.readUInt32LE(80);
  const entryBytes = raw.readUInt32LE(84);
  const entriesLba = toSafeNumber(raw.readBigUInt64LE(72));
  const validEntrySize = entryBytes >= GPT.minEntryBytes && entryBytes % GPT.minEntryBytes === 0 && (entryBytes & (entryBytes - 1)) === 0;
  if (!validEntrySize) return { problem: `entry size ${entryBytes} is not 128 × 2^n` };
  if (entryCount > GPT.maxEntries || entryCount * entryBytes > GPT.maxArrayBytes) {
    return { problem: `${entryCount} entries of ${entryBytes} bytes is beyond any real table` };
  }
  if (!Number.isFinite(entriesLba) || entriesLba * sectorSizeBytes + entryCount * entryBytes > source.sizeBytes) {
    return { problem: 'the entry array lies past the end of the disk' };
  }
  return {
    header: {
      lba,
      alternateLba: toSafeNumber(raw.readBigUInt64LE(32)),
      diskGuid: formatGuid(raw.subarray(56, 72)),
      entriesLba,
      entryCount,
      entryBytes,
      entriesCrc: raw.readUInt32LE(88),
    },
  };
}

async function readEntries(source: BlockSource, h: GptHeader, sectorSizeBytes: number): Promise<Buffer | null> {
  const array = Buffer.from(await source.read(h.entriesLba * sectorSizeBytes, h.entryCount * h.entryBytes));
  if (array.length !== h.entryCount * h.entryBytes || crc32(array) !== h.entriesCrc) return null;
  return array;
}

function partitionsOf(array: Buffer, h: GptHeader, sectorSizeBytes: number, diskSizeBytes: number, warnings: string[]): Partition[] {
  const out: Partition[] = [];
  for (let i = 0; i < h.entryCount; i++) {
    const e = array.subarray(i * h.entryBytes, (i + 1) * h.entryBytes);
    const type = e.subarray(0, 16);
    if (isAllZero(type)) continue;
    const index = i + 1;
    const firstLba = toSafeNumber(e.readBigUInt64LE(32));
    const lastLba = toSafeNumber(e.readBigUInt64LE(40));
    if (!(lastLba >= firstLba)) {
      warnings.push(`GPT entry ${index} ends (LBA ${lastLba}) before it starts (LBA ${firstLba}); it is ignored.`);
      continue;
    }
    const fitted = fitToDisk(`GPT partition ${index}`, firstLba * sectorSizeBytes, (lastLba - firstLba + 1) * sectorSizeBytes, diskSizeBytes, warnings);
    if (!fitted) continue;
    const name = readUtf16Name(e.subarray(56, Math.min(128, h.entryBytes)));
    out.push({
      index,
      ...fitted,
      partitionType: formatGuid(type),
      ...(name ? { name } : {}),
      uuid: formatGuid(e.subarray(16, 32)),
    });
  }
  return out;
}

/** True when a GPT header signature sits at LBA 1 or at the last LBA for this sector size. */
export async function hasGptSignature(source: BlockSource, sectorSizeBytes: number): Promise<boolean> {
  if (source.sizeBytes < 2 * sectorSizeBytes) return false;
  if (hasSignature(await source.read(sectorSizeBytes, GPT.signature.length))) return true;
  const lastLba = Math.floor(source.sizeBytes / sectorSizeBytes) - 1;
  return hasSignature(await source.read(lastLba * sectorSizeBytes, GPT.signature.length));
}

/**
 * Reads the GPT with LBAs of sectorSizeBytes: the primary header and array when both check out,
 * else the backup (with a warning). Returns null, with warnings, when neither copy is whole.
 */
export async function readGptTable(source: BlockSource, sectorSizeBytes: number, warnings: string[]): Promise<GptTable | null> {
  const lastLba = Math.floor(source.sizeBytes / sectorSizeBytes) - 1;
  const primary = await readHeader(source, 1, sectorSizeBytes);
  let primaryProblem: string;
  if ('header' in primary) {
    const array = await readEntries(source, primary.header, sectorSizeBytes);
    if (array) {
      await checkBackup(source, primary.header, sectorSizeBytes, lastLba, warnings);
      return { sectorSizeBytes, diskGuid: primary.header.diskGuid, partitions: partitionsOf(array, primary.header, sectorSizeBytes, source.sizeBytes, warnings) };
    }
    primaryProblem = 'its partition entry array fails its CRC32';
  } else {
    primaryProblem = primary.problem;
  }

  const candidates = [lastLba];
  if ('header' in primary && primary.header.alternateLba !== lastLba) candidates.push(primary.header.alternateLba);
  let backupProblem = '';
  for (const lba of candidates) {
    const backup = await readHeader(source, lba, sectorSizeBytes);
    if (!('header' in backup)) {
      backupProblem = backup.problem;
      continue;
    }
    const array = await readEntries(source, backup.header, sectorSizeBytes);
    if (!array) {
      backupProblem = 'its partition entry array fails its CRC32';
      continue;
    }
    warnings.push(`The primary GPT header is damaged (${primaryProblem}); Strata used the backup GPT at LBA ${lba}. Repair the table (for example with sgdisk or gdisk) before relying on the disk.`);
    return { sectorSizeBytes, diskGuid: backup.header.diskGuid, partitions: partitionsOf(array, backup.header, sectorSizeBytes, source.sizeBytes, warnings) };
  }
  warnings.push(`Neither GPT copy can be trusted (primary: ${primaryProblem}; backup: ${backupProblem}).`);
  return null;
}

async function checkBackup(source: BlockSource, primary: GptHeader, sectorSizeBytes: number, lastLba: number, warnings: string[]): Promise<void> {
  const backup = await readHeader(source, primary.alternateLba, sectorSizeBytes);
  if (!('header' in backup)) {
    warnings.push(`The backup GPT header at LBA ${primary.alternateLba} is damaged or missing (${backup.problem}); the primary is intact and was used.`);
  } else if (primary.alternateLba !== lastLba) {
    warnings.push(`The backup GPT header is at LBA ${primary.alternateLba}, not at the disk's last LBA ${lastLba}; the disk was probably resized.`);
  }
}
