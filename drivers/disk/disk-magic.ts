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

export const NTFS = { oemOffset: 3, oem: Buffer.from('NTFS    ', 'ascii'), serialOffset: 0x48 } as const;

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
} as const;

export const LUKS = {
  magic: Buffer.from([0x4c, 0x55, 0x4b, 0x53, 0xba, 0xbe]),
  versionOffset: 6,
  labelOffset: 24,
  labelBytes: 48,
  uuidOffset: 168,
  uuidBytes: 40,
} as const;
