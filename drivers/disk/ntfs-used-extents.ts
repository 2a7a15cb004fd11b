// Which bytes of an NTFS volume hold data or metadata: every cluster set in $Bitmap (MFT record 6),
// which also covers the metadata files, plus the boot sectors, the first MFT records and $MFTMirr by position.
import type { BlockSource } from '../../agent-core/block-source.js';
import { StrataError } from '../../agent-core/api/errors.js';
import { bitmapToExtents, type Extent } from '../../agent-core/extents.js';
import { NTFS } from './disk-magic.js';
import { isPowerOfTwoIn } from './geometry-checks.js';
import { finishUsedMap, volumeBytesOf, type UsedMap } from './used-map.js';

export interface NtfsGeometry {
  readonly bytesPerSector: number;
  readonly clusterBytes: number;
  /** Sectors of the filesystem, not counting the backup boot sector that follows them. */
  readonly totalSectors: number;
  readonly clusterCount: number;
  readonly mftLcn: number;
  readonly mftMirrLcn: number;
  readonly recordBytes: number;
}

/** The geometry from the boot sector; null when it cannot describe an NTFS volume. */
export function parseNtfsBootSector(b: Buffer): NtfsGeometry | null {
  if (b.length < 512 || !b.subarray(NTFS.oemOffset, NTFS.oemOffset + NTFS.oem.length).equals(NTFS.oem)) return null;
  const bytesPerSector = b.readUInt16LE(NTFS.bytesPerSectorOffset);
  if (!isPowerOfTwoIn(bytesPerSector, 256, 4096)) return null;
  // Values above 0x80 are negative powers: 0xF4 means 2^12 sectors per cluster.
  const spcRaw = b[NTFS.sectorsPerClusterOffset]!;
  const sectorsPerCluster = spcRaw <= 0x80 ? spcRaw : 2 ** (256 - spcRaw);
  const clusterBytes = bytesPerSector * sectorsPerCluster;
  if (!isPowerOfTwoIn(clusterBytes, 512, NTFS.maxClusterBytes)) return null;
  const cpr = b.readInt8(NTFS.clustersPerMftRecordOffset);
  const recordBytes = cpr > 0 ? cpr * clusterBytes : cpr < 0 && cpr >= -31 ? 2 ** -cpr : 0;
  if (!isPowerOfTwoIn(recordBytes, 512, 65536)) return null;
  const totalSectors = Number(b.readBigUInt64LE(NTFS.totalSectorsOffset));
  const mftLcn = Number(b.readBigUInt64LE(NTFS.mftLcnOffset));
  const mftMirrLcn = Number(b.readBigUInt64LE(NTFS.mftMirrLcnOffset));
  if (!Number.isSafeInteger(totalSectors * bytesPerSector)) return null;
  const clusterCount = Math.floor(totalSectors / sectorsPerCluster);
  const recordsEnd = (lcn: number, records: number): number => lcn * clusterBytes + records * recordBytes;
  const ok =
    clusterCount > 0 &&
    mftLcn > 0 &&
    mftMirrLcn > 0 &&
    recordsEnd(mftLcn, NTFS.recordBitmap + 1) <= clusterCount * clusterBytes &&
    recordsEnd(mftMirrLcn, 1) <= clusterCount * clusterBytes;
  return ok ? { bytesPerSector, clusterBytes, totalSectors, clusterCount, mftLcn, mftMirrLcn, recordBytes } : null;
}

/**
 * Undoes the update sequence array of a multi-sector record in place: the last two bytes of every
 * 512-byte stride must hold the update sequence number, and get back their saved values. False when
 * the record is torn or its array does not fit.
 */
export function applyFixups(record: Buffer): boolean {
  const usaOffset = record.readUInt16LE(NTFS.usaOffsetField);
  const usaCount = record.readUInt16LE(NTFS.usaCountField);
  const strides = record.length / NTFS.fixupStrideBytes;
  if (usaCount !== strides + 1 || usaOffset % 2 !== 0 || usaOffset < 8 || usaOffset + 2 * usaCount > NTFS.fixupStrideBytes - 2) return false;
  const usn = record.readUInt16LE(usaOffset);
  for (let i = 0; i < strides; i++) {
    const tail = (i + 1) * NTFS.fixupStrideBytes - 2;
    if (record.readUInt16LE(tail) !== usn) return false;
    record.writeUInt16LE(record.readUInt16LE(usaOffset + 2 * (i + 1)), tail);
  }
  return true;
}

export interface NtfsRun {
  readonly vcn: number;
  /** null for a sparse run (no clusters on disk). */
  readonly lcn: number | null;
  readonly lengthClusters: number;
}

/** A little-endian integer of 1–8 bytes, signed or not; NaN when it does not fit a safe number. */
function readVarInt(b: Buffer, offset: number, bytes: number, signed: boolean): number {
  let v = 0n;
  for (let i = bytes - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[offset + i]!);
  if (signed && bytes > 0 && b[offset + bytes - 1]! & 0x80) v -= 1n << BigInt(8 * bytes);
  return v > BigInt(Number.MAX_SAFE_INTEGER) || v < -BigInt(Number.MAX_SAFE_INTEGER) ? Number.NaN : Number(v);
}

/**
 * Decodes a non-resident attribute's mapping pairs between offset and end: each pair is a header
 * byte (length size in the low nibble, offset size in the high), the run length, and the run's LCN
 * as a signed delta from the previous run's. Null when the list is malformed.
 */
export function decodeRunlist(b: Buffer, offset: number, end: number, firstVcn: number): NtfsRun[] | null {
  const runs: NtfsRun[] = [];
  let pos = offset;
  let vcn = firstVcn;
  let lcn = 0;
  while (pos < end) {
    const header = b[pos]!;
    if (header === 0) return runs;
    const lengthBytes = header & 0xf;
    const offsetBytes = header >> 4;
    if (lengthBytes === 0 || lengthBytes > 8 || offsetBytes > 8 || pos + 1 + lengthBytes + offsetBytes > end) return null;
    const length = readVarInt(b, pos + 1, lengthBytes, false);
    if (!(length > 0)) return null;
    if (offsetBytes === 0) {
      runs.push({ vcn, lcn: null, lengthClusters: length });
    } else {
      lcn += readVarInt(b, pos + 1 + lengthBytes, offsetBytes, true);
      if (!Number.isSafeInteger(lcn) || lcn < 0) return null;
      runs.push({ vcn, lcn, lengthClusters: length });
    }
    vcn += length;
    pos += 1 + lengthBytes + offsetBytes;
  }
  // A list must end with its zero byte inside the attribute.
  return null;
}

type BitmapSource = { resident: Buffer } | { runs: NtfsRun[] };

/** Finds the unnamed $DATA attribute of a fixed-up MFT record: resident bytes or its runs. */
function findData(record: Buffer, where: string): BitmapSource {
  const bad = (why: string): StrataError => new StrataError('Corrupt', `The NTFS $Bitmap record ${where} is damaged: ${why}.`);
  if (!(record.readUInt16LE(NTFS.recordFlagsField) & NTFS.recordInUse)) throw bad('it is not in use');
  let pos = record.readUInt16LE(NTFS.firstAttributeField);
  while (pos + 8 <= record.length) {
    const type = record.readUInt32LE(pos);
    if (type === NTFS.attrEnd) break;
    const length = record.readUInt32LE(pos + 4);
    if (length < 24 || length % 8 !== 0 || pos + length > record.length) throw bad(`an attribute at byte ${pos} has length ${length}`);
    if (type === NTFS.attrAttributeList) {
      throw new StrataError('Corrupt', `The NTFS $Bitmap ${where} is spread over several MFT records (an attribute list), which Strata does not follow.`);
    }
    const nameLength = record[pos + 9]!;
    if (type === NTFS.attrData && nameLength === 0) {
      const attr = record.subarray(pos, pos + length);
      if (attr[8] === 0) {
        const valueLength = attr.readUInt32LE(NTFS.attrValueLength);
        const valueOffset = attr.readUInt16LE(NTFS.attrValueOffset);
        if (valueOffset + valueLength > length) throw bad('its resident data runs past its attribute');
        return { resident: Buffer.from(attr.subarray(valueOffset, valueOffset + valueLength)) };
      }
      if (length < 0x40) throw bad('its non-resident header is short');
      if (attr.readBigUInt64LE(NTFS.attrLowestVcn) !== 0n) throw bad('its data attribute does not start at cluster 0');
      const pairs = attr.readUInt16LE(NTFS.attrMappingPairs);
      const runs = pairs < 0x40 || pairs >= length ? null : decodeRunlist(attr, pairs, length, 0);
      if (!runs) throw bad('its run list is malformed');
      return { runs };
    }
    pos += length;
  }
  throw bad('it has no data attribute');
}

interface VolumeInfo {
  /** Not cleanly unmounted, or chkdsk pending. */
  readonly dirty: boolean;
  readonly label: string | null;
}

/** The dirty flag and label from $Volume (MFT record 3); clean and unlabelled when the record cannot be read. */
async function readVolumeRecord(source: BlockSource, startBytes: number, g: NtfsGeometry): Promise<VolumeInfo> {
  const out = { dirty: false, label: null as string | null };
  const record = Buffer.from(await source.read(startBytes + g.mftLcn * g.clusterBytes + NTFS.recordVolume * g.recordBytes, g.recordBytes));
  if (record.length < g.recordBytes || !record.subarray(0, 4).equals(NTFS.recordMagic) || !applyFixups(record)) return out;
  let pos = record.readUInt16LE(NTFS.firstAttributeField);
  while (pos + 24 <= record.length) {
    const type = record.readUInt32LE(pos);
    const length = record.readUInt32LE(pos + 4);
    if (type === NTFS.attrEnd || length < 24 || pos + length > record.length) break;
    if (record[pos + 8] === 0) {
      const value = pos + record.readUInt16LE(pos + NTFS.attrValueOffset);
      const valueLength = record.readUInt32LE(pos + NTFS.attrValueLength);
      if (value + valueLength <= pos + length) {
        if (type === NTFS.attrVolumeInformation && valueLength >= NTFS.volumeFlagsOffset + 2) {
          out.dirty = (record.readUInt16LE(value + NTFS.volumeFlagsOffset) & NTFS.volumeDirty) !== 0;
        } else if (type === NTFS.attrVolumeName && valueLength > 0) {
          out.label = record.subarray(value, value + (valueLength & ~1)).toString('utf16le');
        }
      }
    }
    pos += length;
  }
  return out;
}

/** Bitmap bytes read per source read: large enough for few reads, small enough for little memory. */
const BITMAP_READ_BYTES = 4 << 20;

/**
 * Maps the used clusters of the NTFS volume at startBytes. Throws InvalidInput when the volume is
 * shorter than the filesystem, Corrupt when the boot sector, the $Bitmap record or its runs cannot be trusted.
 */
export async function readNtfsUsedExtents(source: BlockSource, startBytes: number, sizeBytes: number): Promise<UsedMap> {
  const where = `at offset ${startBytes}`;
  const volumeBytes = volumeBytesOf(source.sizeBytes, startBytes, sizeBytes);
  const g = parseNtfsBootSector(Buffer.from(await source.read(startBytes, 512)));
  if (!g) throw new StrataError('Corrupt', `The NTFS boot sector ${where} is damaged: its geometry is impossible.`);
  const cb = g.clusterBytes;
  const fsSizeBytes = g.totalSectors * g.bytesPerSector;
  if (fsSizeBytes > volumeBytes) {
    throw new StrataError('InvalidInput', `The ntfs filesystem ${where} claims ${fsSizeBytes} bytes but its volume holds only ${volumeBytes}; the image may be truncated.`);
  }

  const recordOffset = g.mftLcn * cb + NTFS.recordBitmap * g.recordBytes;
  const record = Buffer.from(await source.read(startBytes + recordOffset, g.recordBytes));
  if (record.length < g.recordBytes || !record.subarray(0, 4).equals(NTFS.recordMagic) || !applyFixups(record)) {
    throw new StrataError('Corrupt', `The NTFS $Bitmap record ${where} is damaged: no FILE magic or a torn update sequence.`);
  }
  const data = findData(record, where);
  const bitmapBytes = Math.ceil(g.clusterCount / 8);
  const used: Extent[] = [
    // $Boot (boot sector and boot code), the first 16 MFT records and the $MFTMirr records, by position.
    { startBytes: 0, lengthBytes: Math.max(8192, cb) },
    { startBytes: g.mftLcn * cb, lengthBytes: 16 * g.recordBytes },
    { startBytes: g.mftMirrLcn * cb, lengthBytes: Math.max(cb, 4 * g.recordBytes) },
  ];
  if ('resident' in data) {
    if (data.resident.length < bitmapBytes) throw new StrataError('Corrupt', `The NTFS $Bitmap ${where} covers fewer clusters than the volume has.`);
    for (const e of bitmapToExtents(data.resident, g.clusterCount, cb, 0)) used.push(e);
  } else {
    let bitOffset = 0;
    for (const run of data.runs) {
      if (bitOffset >= g.clusterCount) break;
      if (run.lcn === null || run.lcn + run.lengthClusters > g.clusterCount) {
        throw new StrataError('Corrupt', `The NTFS $Bitmap ${where} is damaged: one of its runs is sparse or lies outside the volume.`);
      }
      used.push({ startBytes: run.lcn * cb, lengthBytes: run.lengthClusters * cb });
      const runBytes = run.lengthClusters * cb;
      for (let o = 0; o < runBytes && bitOffset < g.clusterCount; o += BITMAP_READ_BYTES) {
        const length = Math.min(BITMAP_READ_BYTES, runBytes - o);
        const chunk = await source.read(startBytes + run.lcn * cb + o, length);
        if (chunk.length < length) throw new StrataError('Corrupt', `The NTFS $Bitmap ${where} lies past the end of the source.`);
        const bits = Math.min(length * 8, g.clusterCount - bitOffset);
        for (const e of bitmapToExtents(chunk, bits, cb, 0, bitOffset)) used.push(e);
        bitOffset += bits;
      }
    }
    if (bitOffset < g.clusterCount) throw new StrataError('Corrupt', `The NTFS $Bitmap ${where} covers fewer clusters than the volume has.`);
  }
  // Sectors after the last whole cluster belong to no cluster; the backup boot sector follows them.
  const clustersEnd = g.clusterCount * cb;
  used.push({ startBytes: clustersEnd, lengthBytes: fsSizeBytes - clustersEnd });
  const volume = await readVolumeRecord(source, startBytes, g);
  const warnings = volume.dirty
    ? [`The NTFS volume ${where} is marked dirty (not cleanly unmounted, or a check is pending): clusters allocated only in its log may be missing from the map. Back it up after a clean unmount or chkdsk.`]
    : [];
  return { ...finishUsedMap(used, startBytes, volumeBytes, fsSizeBytes, warnings), label: volume.label };
}
