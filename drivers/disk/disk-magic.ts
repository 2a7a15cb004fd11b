// Every on-disk signature, offset and feature bit the disk-anatomy readers rely on, in one place.
// Sources: the UEFI specification (GPT), the classic PC MBR layout, and each filesystem's own format.

/** MBR and EBR: 0x55 0xAA at byte 510 of the sector. */
export const MBR = {
  signatureOffset: 510,
  signature: 0xaa55,
  entriesOffset: 446,
  entryBytes: 16,
  entryCount: 4,
  /** Type of the protective entry of a GPT disk. */
  typeGptProtective: 0xee,
  /** CHS (0x05), LBA (0x0f) and Linux (0x85) extended containers. */
  extendedTypes: new Set([0x05, 0x0f, 0x85]),
  /** More logical partitions than this is a damaged chain, not a real disk. */
  maxLogicalPartitions: 1024,
} as const;

export const GPT = {
  signature: Buffer.from('EFI PART', 'ascii'),
  minHeaderBytes: 92,
  minEntryBytes: 128,
  /** Beyond this the entry array is damage, not a table (sgdisk caps far lower). */
  maxEntries: 65536,
  maxArrayBytes: 16 << 20,
} as const;

/** ext2/3/4: the superblock sits 1024 bytes into the volume. */
export const EXT = {
  superblockOffset: 1024,
  superblockBytes: 1024,
  magicOffset: 0x38,
  magic: 0xef53,
  minLogBlockSize: 0,
  /** 1024 << 6 = 64 KiB, the largest block size the format allows. */
  maxLogBlockSize: 6,
  descBytes32: 32,
  /** 2^22 groups is 512 TiB with 4 KiB blocks; more is a damaged superblock, not a filesystem. */
  maxGroups: 1 << 22,
  descBytes64Min: 64,
  compat: {
    hasJournal: 0x4,
    resizeInode: 0x10,
    sparseSuper2: 0x200,
  },
  incompat: {
    filetype: 0x2,
    recover: 0x4,
    journalDev: 0x8,
    metaBg: 0x10,
    is64bit: 0x80,
    csumSeed: 0x2000,
  },
  roCompat: {
    sparseSuper: 0x1,
    largeFile: 0x2,
    btreeDir: 0x4,
    gdtCsum: 0x10,
    bigalloc: 0x200,
    metadataCsum: 0x400,
  },
  /** Group descriptor bg_flags. */
  bgBlockUninit: 0x2,
  /** Offset of bg_checksum inside a group descriptor. */
  bgChecksumOffset: 0x1e,
} as const;

/** What an ext2 (no journal) or ext3 (journal) may use and still be called that, as blkid decides. */
export const EXT_BLKID = {
  ext2IncompatAllowed: EXT.incompat.filetype | EXT.incompat.metaBg,
  ext3IncompatAllowed: EXT.incompat.filetype | EXT.incompat.recover | EXT.incompat.metaBg,
  ext23RoCompatAllowed: EXT.roCompat.sparseSuper | EXT.roCompat.largeFile | EXT.roCompat.btreeDir,
} as const;

/** XFS: big-endian throughout; the superblock is sector 0 of the volume and of every AG. */
export const XFS = {
  magic: Buffer.from('XFSB', 'ascii'),
  uuidOffset: 32,
  labelOffset: 108,
  labelBytes: 12,
  /** Superblock fields used for the used-block map. */
  sb: {
    blockSize: 4,
    dataBlocks: 8,
    logStart: 48,
    agBlocks: 84,
    agCount: 88,
    logBlocks: 96,
    versionNum: 100,
    sectorSize: 102,
    agBlockLog: 124,
  },
  /** sb_versionnum & versionMask: 5 is the CRC (v5) format. */
  versionMask: 0xf,
  versionCrc: 5,
  /** The AGF is the AG's second sector. */
  agf: {
    magic: Buffer.from('XAGF', 'ascii'),
    seqno: 8,
    length: 12,
    bnoRoot: 16,
    bnoLevel: 28,
    freeBlocks: 52,
    /** v5: CRC-32C of the AGF's sector, stored little-endian. */
    crc: 216,
  },
  /** Free-space-by-block-number B+tree blocks, without and with CRC. */
  bnoMagics: [Buffer.from('ABTB', 'ascii'), Buffer.from('AB3B', 'ascii')],
  /** Short-form btree block header: 16 bytes, 56 with the v5 fields (blkno, lsn, uuid, owner, crc). */
  shortHeaderBytes: 16,
  shortHeaderBytesCrc: 56,
  /** v5: CRC-32C of the whole btree block, stored little-endian in the header. */
  shortHeaderCrcOffset: 52,
  /** A free-space record and a key are (startblock, blockcount); a node pointer is an AG block. */
  recordBytes: 8,
  ptrBytes: 4,
  /** Deeper than this is damage: a 2^31-block AG needs far fewer levels. */
  maxLevels: 12,
} as const;

export const BTRFS = {
  superblockOffset: 0x10000,
  magicOffset: 0x40,
  magic: Buffer.from('_BHRfS_M', 'ascii'),
  fsidOffset: 0x20,
  labelOffset: 0x12b,
  labelBytes: 256,
} as const;

export const NTFS = {
  oemOffset: 3,
  oem: Buffer.from('NTFS    ', 'ascii'),
  serialOffset: 0x48,
  /** Boot sector (BPB) fields. */
  bytesPerSectorOffset: 0x0b,
  sectorsPerClusterOffset: 0x0d,
  totalSectorsOffset: 0x28,
  mftLcnOffset: 0x30,
  mftMirrLcnOffset: 0x38,
  clustersPerMftRecordOffset: 0x40,
  /** MFT records: magic, update sequence array, first attribute, flags. */
  recordMagic: Buffer.from('FILE', 'ascii'),
  usaOffsetField: 0x04,
  usaCountField: 0x06,
  firstAttributeField: 0x14,
  recordFlagsField: 0x16,
  recordInUse: 0x1,
  /** Fixups protect every 512-byte stride of a record, whatever the sector size. */
  fixupStrideBytes: 512,
  /** Record numbers of the metadata files read here. */
  recordVolume: 3,
  recordBitmap: 6,
  /** $Volume's $VOLUME_INFORMATION: flags at byte 10 of its value; bit 0 is "dirty". */
  attrVolumeInformation: 0x70,
  /** $Volume's $VOLUME_NAME: the label in UTF-16LE. */
  attrVolumeName: 0x60,
  volumeFlagsOffset: 10,
  volumeDirty: 0x1,
  /** Attribute types and the end-of-attributes marker. */
  attrAttributeList: 0x20,
  attrData: 0x80,
  attrEnd: 0xffffffff,
  /** Non-resident attribute header fields. */
  attrLowestVcn: 0x10,
  attrMappingPairs: 0x20,
  attrDataSize: 0x30,
  /** Resident attribute header fields. */
  attrValueLength: 0x10,
  attrValueOffset: 0x14,
  /** Windows formats clusters up to 2 MiB; more is damage. */
  maxClusterBytes: 2 << 20,
} as const;

export const BTRFS_TREE = {
  /** Superblock fields, from the superblock's start. */
  sb: {
    bytenr: 0x30,
    rootLogical: 0x50,
    chunkRootLogical: 0x58,
    logRootLogical: 0x60,
    totalBytes: 0x70,
    numDevices: 0x88,
    sectorSize: 0x90,
    nodeSize: 0x94,
    sysChunkArraySize: 0xa0,
    incompat: 0xbc,
    csumType: 0xc4,
    rootLevel: 0xc6,
    chunkRootLevel: 0xc7,
    devItemDevid: 0xc9,
    /** This device's size: dev_item.total_bytes (the superblock's total_bytes sums every device). */
    devItemTotalBytes: 0xd1,
    sysChunkArray: 0x32b,
    sysChunkArrayMax: 2048,
  },
  superblockBytes: 4096,
  /** The superblock and its mirrors: 64 KiB, 64 MiB, 256 GiB. */
  superblockMirrors: [0x10000, 64 * 2 ** 20, 256 * 2 ** 30],
  /** Nothing of the filesystem lives in the first MiB but the superblock; it is kept whole anyway. */
  reservedBytes: 1 << 20,
  csumCrc32c: 0,
  /** Tree block header: checksum, fsid, bytenr, ..., nritems, level; 101 bytes. */
  header: { fsid: 0x20, bytenr: 0x30, owner: 0x58, nritems: 0x60, level: 0x64, bytes: 101 },
  keyBytes: 17,
  leafItemBytes: 25,
  nodePtrBytes: 33,
  maxLevel: 7,
  item: { rootItem: 132, extentItem: 168, metadataItem: 169, chunkItem: 228 },
  extentTreeObjectid: 2,
  /** ROOT_ITEM: root block and level after the 160-byte inode item. */
  rootItemBytenr: 176,
  rootItemLevel: 238,
  /** Chunk item: length, owner, stripe_len, type at 24, ..., num_stripes at 44; then 32-byte stripes (devid, offset, uuid). */
  chunkItemBytes: 48,
  chunkTypeOffset: 24,
  chunkNumStripesOffset: 44,
  stripeBytes: 32,
  /** Incompat bits: metadata_uuid (tree blocks carry it instead of the fsid), and the layouts not read here (zoned, extent tree v2, raid stripe tree). */
  incompatMetadataUuid: 1 << 10,
  incompatUnsupported: (1 << 12) | (1 << 13) | (1 << 14),
  metadataUuidOffset: 0x23b,
  /** Chunk profile bits: each stripe of a mirrored chunk (DUP, RAID1, RAID1C3, RAID1C4) is a whole copy. */
  chunkRaid0: 1 << 3,
  chunkMirrored: (1 << 4) | (1 << 5) | (1 << 9) | (1 << 10),
  /** RAID10, RAID5, RAID6: data striped with parity or pairs; not mapped. */
  chunkStripedParity: (1 << 6) | (1 << 7) | (1 << 8),
} as const;

export const EXFAT = {
  oemOffset: 3,
  oem: Buffer.from('EXFAT   ', 'ascii'),
  serialOffset: 0x64,
  volumeLengthOffset: 0x48,
  fatOffsetOffset: 0x50,
  fatLengthOffset: 0x54,
  clusterHeapOffsetOffset: 0x58,
  clusterCountOffset: 0x5c,
  rootClusterOffset: 0x60,
  bytesPerSectorShiftOffset: 0x6c,
  sectorsPerClusterShiftOffset: 0x6d,
  fatCountOffset: 0x6e,
  /** Directory entries are 32 bytes; the allocation bitmap's has type 0x81, end of directory 0x00. */
  dirEntryBytes: 32,
  entryBitmap: 0x81,
  entryEnd: 0x00,
  bitmapFirstClusterOffset: 20,
  bitmapLengthOffset: 24,
  /** FAT entries at or above this end a chain (0xFFFFFFF7 is a bad cluster). */
  chainEndMin: 0xfffffff7,
  firstCluster: 2,
} as const;

export const FAT = {
  bytesPerSectorOffset: 0x0b,
  sectorsPerClusterOffset: 0x0d,
  reservedSectorsOffset: 0x0e,
  fatCountOffset: 0x10,
  mediaOffset: 0x15,
  fat16TypeOffset: 0x36,
  fat16SerialOffset: 0x27,
  fat16LabelOffset: 0x2b,
  fat32TypeOffset: 0x52,
  fat32SerialOffset: 0x43,
  fat32LabelOffset: 0x47,
  labelBytes: 11,
  types: ['FAT12   ', 'FAT16   ', 'FAT     ', 'FAT32   '],
  noLabel: 'NO NAME',
  rootEntriesOffset: 0x11,
  totalSectors16Offset: 0x13,
  fatSectors16Offset: 0x16,
  totalSectors32Offset: 0x20,
  fatSectors32Offset: 0x24,
  dirEntryBytes: 32,
  /** The first data cluster is number 2. */
  firstCluster: 2,
  /** Fewer clusters than this is FAT12, fewer than fat32MinClusters FAT16 (the Microsoft rule). */
  fat16MinClusters: 4085,
  fat32MinClusters: 65525,
  /** FAT32 entries use 28 bits; the top four are reserved. */
  fat32EntryMask: 0x0fffffff,
} as const;

export const SWAP = {
  signatures: [Buffer.from('SWAPSPACE2', 'ascii'), Buffer.from('SWAP-SPACE', 'ascii')],
  signatureBytes: 10,
  pageSizes: [4096, 8192, 16384, 65536],
  /** swap v1 header: version, last_page, nr_badpages, then uuid and label; the bad-page list from 1536. */
  versionOffset: 1024,
  lastPageOffset: 1028,
  uuidOffset: 1036,
  labelOffset: 1052,
  labelBytes: 16,
} as const;

export const LVM2 = {
  labelId: Buffer.from('LABELONE', 'ascii'),
  labelType: Buffer.from('LVM2 001', 'ascii'),
  /** The label may sit in any of the first four sectors. */
  labelSectors: 4,
  typeOffset: 24,
  contentOffsetField: 20,
  uuidChars: 32,
  /** LVM's CRC-32 starts from this value and is not inverted at the end. */
  crcSeed: 0xf597a6cf,
  /** The header of each metadata area; the text lives in the ring after it, raw_locn[0] points at it. */
  mdaHeader: {
    bytes: 512,
    magic: Buffer.from(' LVM2 x[5A%r0N*>', 'ascii'),
    start: 24,
    size: 32,
    rawLocn: 40,
  },
  /** Metadata text larger than this is damage (LVM's own limit is far lower in practice). */
  maxTextBytes: 16 << 20,
} as const;

export const LUKS = {
  magic: Buffer.from([0x4c, 0x55, 0x4b, 0x53, 0xba, 0xbe]),
  /** LUKS2's second binary header carries its own magic. */
  magic2: Buffer.from([0x53, 0x4b, 0x55, 0x4c, 0xba, 0xbe]),
  /** LUKS1: payload offset in 512-byte sectors, big-endian. */
  luks1PayloadOffset: 104,
  /** LUKS2: binary header size (big-endian u64); the JSON area follows the 4096-byte binary part. */
  luks2HeaderSize: 8,
  luks2BinaryBytes: 4096,
  versionOffset: 6,
  labelOffset: 24,
  labelBytes: 48,
  uuidOffset: 168,
  uuidBytes: 40,
} as const;
