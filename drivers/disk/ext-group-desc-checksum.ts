// The checksum an ext4 group descriptor carries (bg_checksum): CRC-16 seeded with the UUID under
// gdt_csum (uninit_bg), or the low half of a CRC-32C under metadata_csum. Strata only trusts a
// descriptor's "bitmap not initialised" flag when this checksum confirms the descriptor.
import { CRC16_ARC_TABLE, CRC32C_TABLE } from './crc.js';
import { EXT } from './disk-magic.js';
import type { ExtSuperblock } from './ext-superblock.js';

/**
 * Feeds data[from, to) into a running reflected CRC, without pre- or post-inversion (crcUpdate over
 * a range, so that a whole descriptor table can be checked without a view per descriptor).
 */
function crcRange(table: Uint32Array, crc: number, data: Uint8Array, from: number, to: number): number {
  let c = crc >>> 0;
  for (let i = from; i < to; i++) c = (table[(c ^ data[i]!) & 0xff]! ^ (c >>> 8)) >>> 0;
  return c;
}

/** Feeds the low byteCount bytes of value, least significant first (0 feeds zero bytes). */
function crcBytesLe(table: Uint32Array, crc: number, value: number, byteCount: number): number {
  let c = crc >>> 0;
  for (let k = 0; k < byteCount; k++) c = (table[(c ^ (value >>> (8 * k))) & 0xff]! ^ (c >>> 8)) >>> 0;
  return c;
}

/** True when the filesystem has checksummed descriptors (gdt_csum or metadata_csum). */
export function hasGroupDescChecksums(sb: ExtSuperblock): boolean {
  return (sb.featureRoCompat & (EXT.roCompat.gdtCsum | EXT.roCompat.metadataCsum)) !== 0;
}

/**
 * The checksum the descriptor at desc[offset, offset + descBytes) (as stored; by default all of
 * desc) should carry for group.
 */
export function groupDescChecksum(sb: ExtSuperblock, group: number, desc: Uint8Array, offset = 0, descBytes = desc.length - offset): number {
  const checksumAt = offset + EXT.bgChecksumOffset;
  const end = offset + descBytes;
  if (sb.featureRoCompat & EXT.roCompat.metadataCsum) {
    // Raw CRC-32C values, chained as ext4 does; the checksum field itself counts as two zero bytes.
    const seed = sb.featureIncompat & EXT.incompat.csumSeed ? sb.checksumSeed : crcRange(CRC32C_TABLE, 0xffffffff, sb.uuidBytes, 0, sb.uuidBytes.length);
    let c = crcBytesLe(CRC32C_TABLE, seed, group >>> 0, 4);
    c = crcRange(CRC32C_TABLE, c, desc, offset, checksumAt);
    c = crcBytesLe(CRC32C_TABLE, c, 0, 2);
    c = crcRange(CRC32C_TABLE, c, desc, checksumAt + 2, end);
    return c & 0xffff;
  }
  // CRC-16/ARC without final inversion, as e2fsprogs computes it; the checksum field is skipped.
  let c = crcRange(CRC16_ARC_TABLE, 0xffff, sb.uuidBytes, 0, sb.uuidBytes.length) & 0xffff;
  c = crcBytesLe(CRC16_ARC_TABLE, c, group >>> 0, 4) & 0xffff;
  c = crcRange(CRC16_ARC_TABLE, c, desc, offset, checksumAt) & 0xffff;
  return crcRange(CRC16_ARC_TABLE, c, desc, checksumAt + 2, end) & 0xffff;
}
