// The checksum an ext4 group descriptor carries (bg_checksum): CRC-16 seeded with the UUID under
// gdt_csum (uninit_bg), or the low half of a CRC-32C under metadata_csum. Strata only trusts a
// descriptor's "bitmap not initialised" flag when this checksum confirms the descriptor.
import { CRC16_ARC_TABLE, CRC32C_TABLE, crcUpdate } from './crc.js';
import { EXT } from './disk-magic.js';
import type { ExtSuperblock } from './ext-superblock.js';

/** CRC-16/ARC update without final inversion, as e2fsprogs computes it. */
function crc16(crc: number, data: Uint8Array): number {
  return crcUpdate(CRC16_ARC_TABLE, crc & 0xffff, data) & 0xffff;
}

/** CRC-32C update without pre- or post-inversion: ext4 chains these raw values. */
function crc32cRaw(crc: number, data: Uint8Array): number {
  return crcUpdate(CRC32C_TABLE, crc, data);
}

/** True when the filesystem has checksummed descriptors (gdt_csum or metadata_csum). */
export function hasGroupDescChecksums(sb: ExtSuperblock): boolean {
  return (sb.featureRoCompat & (EXT.roCompat.gdtCsum | EXT.roCompat.metadataCsum)) !== 0;
}

/** The checksum desc (descBytes long, as stored) should carry for group. */
export function groupDescChecksum(sb: ExtSuperblock, group: number, desc: Uint8Array): number {
  const groupLe = Buffer.alloc(4);
  groupLe.writeUInt32LE(group >>> 0);
  const before = desc.subarray(0, EXT.bgChecksumOffset);
  const after = desc.subarray(EXT.bgChecksumOffset + 2);
  if (sb.featureRoCompat & EXT.roCompat.metadataCsum) {
    const seed = sb.featureIncompat & EXT.incompat.csumSeed ? sb.checksumSeed : crc32cRaw(0xffffffff, sb.uuidBytes);
    let c = crc32cRaw(seed, groupLe);
    c = crc32cRaw(c, before);
    c = crc32cRaw(c, new Uint8Array(2));
    c = crc32cRaw(c, after);
    return c & 0xffff;
  }
  let c = crc16(0xffff, sb.uuidBytes);
  c = crc16(c, groupLe);
  c = crc16(c, before);
  return crc16(c, after);
}
