// The ext2/3/4 superblock: the fields detection and the used-block reader need, decoded once, and
// the ext2/ext3/ext4 naming rule blkid applies to them.
import { StrataError } from '../../agent-core/api/errors.js';
import { EXT, EXT_BLKID } from './disk-magic.js';
import { formatUuid, isAllZero, readCString } from './disk-ids.js';

export type ExtKind = 'ext2' | 'ext3' | 'ext4' | 'jbd';

export interface ExtSuperblock {
  readonly kind: ExtKind;
  readonly blocksCount: number;
  readonly firstDataBlock: number;
  readonly logBlockSize: number;
  readonly blockSizeBytes: number;
  /** Equal to blockSizeBytes unless bigalloc is on. */
  readonly clusterSizeBytes: number;
  readonly blocksPerGroup: number;
  readonly clustersPerGroup: number;
  /** Bytes per group descriptor: 32, or s_desc_size on a 64bit filesystem. */
  readonly descBytes: number;
  readonly featureCompat: number;
  readonly featureIncompat: number;
  readonly featureRoCompat: number;
  readonly reservedGdtBlocks: number;
  readonly firstMetaBg: number;
  /** The two groups holding backups under sparse_super2. */
  readonly backupBgs: readonly [number, number];
  readonly inodesPerGroup: number;
  readonly inodeSizeBytes: number;
  /** The 16 UUID bytes as stored; group descriptor checksums are seeded with them. */
  readonly uuidBytes: Buffer;
  /** s_checksum_seed, meaningful only with the csum_seed feature. */
  readonly checksumSeed: number;
  readonly label: string | null;
  readonly uuid: string | null;
}

/** Decodes the 1024-byte superblock; null when the ext magic is not there. */
export function parseExtSuperblock(raw: Uint8Array): ExtSuperblock | null {
  if (raw.length < EXT.superblockBytes) return null;
  const b = Buffer.from(raw.buffer, raw.byteOffset, EXT.superblockBytes);
  if (b.readUInt16LE(EXT.magicOffset) !== EXT.magic) return null;
  const featureCompat = b.readUInt32LE(0x5c);
  const featureIncompat = b.readUInt32LE(0x60);
  const featureRoCompat = b.readUInt32LE(0x64);
  const is64 = (featureIncompat & EXT.incompat.is64bit) !== 0;
  const logBlockSize = b.readUInt32LE(0x18);
  const logClusterSize = b.readUInt32LE(0x1c);
  const bigalloc = (featureRoCompat & EXT.roCompat.bigalloc) !== 0;
  // Shifts by a garbage log size would wrap; validateExtSuperblock rejects those values.
  const blockSizeBytes = logBlockSize <= EXT.maxLogBlockSize ? 1024 << logBlockSize : 0;
  const clusterSizeBytes = bigalloc ? (logClusterSize <= 20 ? 1024 * 2 ** logClusterSize : 0) : blockSizeBytes;
  const uuidBytes = b.subarray(0x68, 0x78);
  return {
    kind: extKindOf(featureCompat, featureIncompat, featureRoCompat),
    blocksCount: b.readUInt32LE(0x04) + (is64 ? b.readUInt32LE(0x150) * 2 ** 32 : 0),
    firstDataBlock: b.readUInt32LE(0x14),
    logBlockSize,
    blockSizeBytes,
    clusterSizeBytes,
    blocksPerGroup: b.readUInt32LE(0x20),
    clustersPerGroup: bigalloc ? b.readUInt32LE(0x24) : b.readUInt32LE(0x20),
    descBytes: is64 ? b.readUInt16LE(0xfe) : EXT.descBytes32,
    featureCompat,
    featureIncompat,
    featureRoCompat,
    reservedGdtBlocks: b.readUInt16LE(0xce),
    firstMetaBg: b.readUInt32LE(0x104),
    backupBgs: [b.readUInt32LE(0x24c), b.readUInt32LE(0x250)],
    inodesPerGroup: b.readUInt32LE(0x28),
    // Revision 0 filesystems have fixed 128-byte inodes and no s_inode_size.
    inodeSizeBytes: b.readUInt32LE(0x4c) === 0 ? 128 : b.readUInt16LE(0x58),
    uuidBytes: Buffer.from(uuidBytes),
    checksumSeed: b.readUInt32LE(0x270),
    label: readCString(b.subarray(0x78, 0x88)),
    uuid: isAllZero(uuidBytes) ? null : formatUuid(uuidBytes),
  };
}

/** blkid's rule: a journal device is jbd; ext2 and ext3 are what their old drivers could mount; the rest is ext4. */
function extKindOf(compat: number, incompat: number, roCompat: number): ExtKind {
  if (incompat & EXT.incompat.journalDev) return 'jbd';
  const roOk = (roCompat & ~EXT_BLKID.ext23RoCompatAllowed) === 0;
  if (compat & EXT.compat.hasJournal) {
    return roOk && (incompat & ~EXT_BLKID.ext3IncompatAllowed) === 0 ? 'ext3' : 'ext4';
  }
  return roOk && (incompat & ~EXT_BLKID.ext2IncompatAllowed) === 0 ? 'ext2' : 'ext4';
}

/** Throws Corrupt when the geometry cannot describe a real filesystem. */
export function validateExtSuperblock(sb: ExtSuperblock, where: string): void {
  const bad = (what: string): never => {
    throw new StrataError('Corrupt', `The ext superblock ${where} is damaged: ${what}.`);
  };
  if (sb.blockSizeBytes === 0) bad(`block size 2^(10+${sb.logBlockSize}) is beyond 64 KiB`);
  if (sb.clusterSizeBytes < sb.blockSizeBytes || sb.clusterSizeBytes % sb.blockSizeBytes !== 0) bad(`cluster size ${sb.clusterSizeBytes} does not fit block size ${sb.blockSizeBytes}`);
  const ratio = sb.clusterSizeBytes / sb.blockSizeBytes;
  if (sb.clustersPerGroup === 0 || sb.clustersPerGroup > 8 * sb.blockSizeBytes) bad(`${sb.clustersPerGroup} clusters per group`);
  if (sb.blocksPerGroup !== sb.clustersPerGroup * ratio) bad(`${sb.blocksPerGroup} blocks per group disagrees with ${sb.clustersPerGroup} clusters of ${ratio} blocks`);
  if (sb.blocksCount === 0 || sb.blocksCount <= sb.firstDataBlock) bad(`${sb.blocksCount} blocks`);
  if (sb.firstDataBlock > 1) bad(`first data block ${sb.firstDataBlock}`);
  if (sb.descBytes < EXT.descBytes32 || sb.descBytes > sb.blockSizeBytes || (sb.descBytes & (sb.descBytes - 1)) !== 0) bad(`descriptor size ${sb.descBytes}`);
  if ((sb.featureIncompat & EXT.incompat.is64bit) !== 0 && sb.descBytes < EXT.descBytes64Min) bad(`descriptor size ${sb.descBytes} on a 64bit filesystem`);
  if (sb.inodesPerGroup === 0 || sb.inodeSizeBytes < 128 || sb.inodeSizeBytes > sb.blockSizeBytes) bad(`${sb.inodesPerGroup} inodes of ${sb.inodeSizeBytes} bytes per group`);
}
