// Names what a volume holds from its magic numbers, with label and UUID as blkid prints them. One
// read of the volume's first 68 KiB covers every signature checked here.
import type { BlockSource } from '../../agent-core/block-source.js';
import type { FilesystemKind } from '../../agent-core/api/disk-layout.js';
import { BTRFS, EXFAT, EXT, FAT, LUKS, LVM2, NTFS, SWAP, XFS } from './disk-magic.js';
import { formatUuid, isAllZero, readCString } from './disk-ids.js';
import { parseExtSuperblock } from './ext-superblock.js';
import { isPowerOfTwoIn } from './geometry-checks.js';

export interface FilesystemInfo {
  readonly filesystem: FilesystemKind;
  readonly label: string | null;
  readonly uuid: string | null;
  /**
   * Other signatures found on the same volume (a filesystem made over another without wiping).
   * When this is not empty, which one is live is in doubt.
   */
  readonly otherSignatures: FilesystemKind[];
}

type Probe = (b: Buffer) => Omit<FilesystemInfo, 'otherSignatures'> | null;

/** Bytes read from the start of a volume: btrfs's superblock at 64 KiB plus a 4 KiB sector. */
const PROBE_BYTES = BTRFS.superblockOffset + 4096;

function at(b: Buffer, offset: number, magic: Uint8Array): boolean {
  return offset + magic.length <= b.length && b.subarray(offset, offset + magic.length).equals(magic);
}

/** A 32-bit volume serial as FAT and exFAT show it: `ABCD-1234`. */
function formatSerial32(v: number): string {
  const h = v.toString(16).toUpperCase().padStart(8, '0');
  return `${h.slice(0, 4)}-${h.slice(4)}`;
}

function trimmedLabel(bytes: Uint8Array): string | null {
  const s = readCString(bytes)?.trimEnd() ?? '';
  return s.length > 0 ? s : null;
}

const probeLuks: Probe = (b) => {
  if (!at(b, 0, LUKS.magic)) return null;
  const version = b.readUInt16BE(LUKS.versionOffset);
  return {
    filesystem: 'crypto_LUKS',
    label: version >= 2 ? readCString(b.subarray(LUKS.labelOffset, LUKS.labelOffset + LUKS.labelBytes)) : null,
    uuid: readCString(b.subarray(LUKS.uuidOffset, LUKS.uuidOffset + LUKS.uuidBytes)),
  };
};

const probeLvm2: Probe = (b) => {
  for (let sector = 0; sector < LVM2.labelSectors; sector++) {
    const o = sector * 512;
    if (!at(b, o, LVM2.labelId) || !at(b, o + LVM2.typeOffset, LVM2.labelType)) continue;
    const pv = o + b.readUInt32LE(o + LVM2.contentOffsetField);
    const raw = pv + LVM2.uuidChars <= b.length ? b.subarray(pv, pv + LVM2.uuidChars).toString('latin1') : '';
    // LVM prints its 32-character ids in groups of 6-4-4-4-4-4-6.
    const uuid = /^[0-9A-Za-z]{32}$/.test(raw)
      ? [raw.slice(0, 6), raw.slice(6, 10), raw.slice(10, 14), raw.slice(14, 18), raw.slice(18, 22), raw.slice(22, 26), raw.slice(26)].join('-')
      : null;
    return { filesystem: 'LVM2_member', label: null, uuid };
  }
  return null;
};

const probeXfs: Probe = (b) => {
  if (!at(b, 0, XFS.magic) || b.length < 512) return null;
  if (!isPowerOfTwoIn(b.readUInt32BE(4), 512, 65536)) return null;
  const uuid = b.subarray(XFS.uuidOffset, XFS.uuidOffset + 16);
  return {
    filesystem: 'xfs',
    label: readCString(b.subarray(XFS.labelOffset, XFS.labelOffset + XFS.labelBytes)),
    uuid: isAllZero(uuid) ? null : formatUuid(uuid),
  };
};

const probeBtrfs: Probe = (b) => {
  const sb = BTRFS.superblockOffset;
  if (!at(b, sb + BTRFS.magicOffset, BTRFS.magic)) return null;
  const fsid = b.subarray(sb + BTRFS.fsidOffset, sb + BTRFS.fsidOffset + 16);
  return {
    filesystem: 'btrfs',
    label: readCString(b.subarray(sb + BTRFS.labelOffset, sb + BTRFS.labelOffset + BTRFS.labelBytes)),
    uuid: isAllZero(fsid) ? null : formatUuid(fsid),
  };
};

const probeExt: Probe = (b) => {
  if (b.length < EXT.superblockOffset + EXT.superblockBytes) return null;
  const sb = parseExtSuperblock(b.subarray(EXT.superblockOffset, EXT.superblockOffset + EXT.superblockBytes));
  if (!sb) return null;
  // An external journal device (jbd) holds no files; it is kept whole like any unknown volume.
  return { filesystem: sb.kind === 'jbd' ? 'unknown' : sb.kind, label: sb.label, uuid: sb.uuid };
};

const probeNtfs: Probe = (b) => {
  if (!at(b, NTFS.oemOffset, NTFS.oem) || b.length < 512) return null;
  if (!isPowerOfTwoIn(b.readUInt16LE(FAT.bytesPerSectorOffset), 256, 4096)) return null;
  const serial = b.readBigUInt64LE(NTFS.serialOffset);
  return { filesystem: 'ntfs', label: null, uuid: serial === 0n ? null : serial.toString(16).toUpperCase().padStart(16, '0') };
};

const probeExfat: Probe = (b) => {
  if (!at(b, EXFAT.oemOffset, EXFAT.oem) || b.length < 512) return null;
  return { filesystem: 'exfat', label: null, uuid: formatSerial32(b.readUInt32LE(EXFAT.serialOffset)) };
};

const probeVfat: Probe = (b) => {
  if (b.length < 512) return null;
  const fat32 = at(b, FAT.fat32TypeOffset, Buffer.from('FAT32   ', 'ascii'));
  const fat16 = FAT.types.some((t) => at(b, FAT.fat16TypeOffset, Buffer.from(t, 'ascii')));
  if (!fat32 && !fat16) return null;
  const media = b[FAT.mediaOffset]!;
  const bpbOk =
    isPowerOfTwoIn(b.readUInt16LE(FAT.bytesPerSectorOffset), 512, 4096) &&
    isPowerOfTwoIn(b[FAT.sectorsPerClusterOffset]!, 1, 128) &&
    b.readUInt16LE(FAT.reservedSectorsOffset) > 0 &&
    b[FAT.fatCountOffset]! > 0 &&
    (media === 0xf0 || media >= 0xf8);
  if (!bpbOk) return null;
  const serialOffset = fat32 ? FAT.fat32SerialOffset : FAT.fat16SerialOffset;
  const labelOffset = fat32 ? FAT.fat32LabelOffset : FAT.fat16LabelOffset;
  const label = trimmedLabel(b.subarray(labelOffset, labelOffset + FAT.labelBytes));
  return {
    filesystem: 'vfat',
    label: label === FAT.noLabel ? null : label,
    uuid: formatSerial32(b.readUInt32LE(serialOffset)),
  };
};

const probeSwap: Probe = (b) => {
  for (const page of SWAP.pageSizes) {
    if (page > b.length) break;
    const sig = SWAP.signatures.find((s) => at(b, page - SWAP.signatureBytes, s));
    if (!sig) continue;
    const v1 = sig === SWAP.signatures[0];
    const uuid = b.subarray(SWAP.uuidOffset, SWAP.uuidOffset + 16);
    return {
      filesystem: 'swap',
      label: v1 ? readCString(b.subarray(SWAP.labelOffset, SWAP.labelOffset + SWAP.labelBytes)) : null,
      uuid: v1 && !isAllZero(uuid) ? formatUuid(uuid) : null,
    };
  }
  return null;
};

/** Highest priority first: containers, then filesystems whose superblock is hard to fake. */
const PROBES: readonly Probe[] = [probeLuks, probeLvm2, probeXfs, probeBtrfs, probeExt, probeNtfs, probeExfat, probeVfat, probeSwap];

/** The signatures of a volume's first bytes, best match first. */
export function probeSignatures(head: Buffer): Omit<FilesystemInfo, 'otherSignatures'>[] {
  const found: Omit<FilesystemInfo, 'otherSignatures'>[] = [];
  for (const probe of PROBES) {
    const hit = probe(head);
    if (hit) found.push(hit);
  }
  return found;
}

/** True when sector 0 is the boot sector of a FAT, exFAT or NTFS volume rather than a partition table. */
export function isFilesystemBootSector(sector0: Buffer): boolean {
  return probeNtfs(sector0) !== null || probeExfat(sector0) !== null || probeVfat(sector0) !== null;
}

export async function detectFilesystem(source: BlockSource, startBytes: number, sizeBytes: number): Promise<FilesystemInfo> {
  const length = Math.max(0, Math.min(PROBE_BYTES, sizeBytes, source.sizeBytes - startBytes));
  const head = Buffer.from(await source.read(startBytes, length));
  const [best, ...others] = probeSignatures(head);
  if (!best) return { filesystem: 'unknown', label: null, uuid: null, otherSignatures: [] };
  return { ...best, otherSignatures: others.map((o) => o.filesystem) };
}
