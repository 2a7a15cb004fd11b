// Which bytes of a single-device btrfs volume hold data or metadata: every extent and tree block the
// extent tree lists, mapped from logical to physical through the chunk tree, plus the superblocks.
import type { BlockSource } from '../../agent-core/block-source.js';
import { StrataError } from '../../agent-core/api/errors.js';
import { type Extent } from '../../agent-core/extents.js';
import { crc32c } from './crc32c.js';
import { BTRFS, BTRFS_TREE } from './disk-magic.js';
import { isPowerOfTwoIn } from './geometry-checks.js';
import { finishUsedMap, volumeBytesOf, type UsedMap } from './used-map.js';

export interface BtrfsChunk {
  readonly logical: number;
  readonly lengthBytes: number;
  readonly type: number;
  readonly stripes: Array<{ devid: number; offsetBytes: number }>;
}

export interface BtrfsSuperblock {
  readonly fsid: Buffer;
  /** Bytes of this device the filesystem uses. */
  readonly deviceBytes: number;
  readonly numDevices: number;
  readonly sectorSize: number;
  readonly nodeSize: number;
  readonly rootLogical: number;
  readonly rootLevel: number;
  readonly chunkRootLogical: number;
  readonly chunkRootLevel: number;
  readonly logRootLogical: number;
  readonly incompat: number;
  readonly csumType: number;
  readonly devid: number;
  readonly sysChunks: BtrfsChunk[];
}

const u64 = (b: Buffer, o: number): number => {
  const v = b.readBigUInt64LE(o);
  return v > BigInt(Number.MAX_SAFE_INTEGER) ? Number.NaN : Number(v);
};

/** A chunk item at o in b, or null when it is malformed or runs past end. */
function parseChunk(b: Buffer, o: number, end: number, logical: number): { chunk: BtrfsChunk; bytes: number } | null {
  const T = BTRFS_TREE;
  if (o + T.chunkItemBytes > end) return null;
  const numStripes = b.readUInt16LE(o + T.chunkNumStripesOffset);
  const bytes = T.chunkItemBytes + numStripes * T.stripeBytes;
  if (numStripes === 0 || o + bytes > end) return null;
  const lengthBytes = u64(b, o);
  if (!(lengthBytes > 0) || !Number.isSafeInteger(logical)) return null;
  const stripes: Array<{ devid: number; offsetBytes: number }> = [];
  for (let i = 0; i < numStripes; i++) {
    const s = o + T.chunkItemBytes + i * T.stripeBytes;
    stripes.push({ devid: u64(b, s), offsetBytes: u64(b, s + 8) });
  }
  return { chunk: { logical, lengthBytes, type: Number(b.readBigUInt64LE(o + T.chunkTypeOffset) & 0xffffffffn), stripes }, bytes };
}

/** Parses and checks the primary superblock (4 KiB at 64 KiB); null when it is not a sane btrfs. */
export function parseBtrfsSuperblock(b: Buffer): BtrfsSuperblock | null {
  const S = BTRFS_TREE.sb;
  if (b.length < BTRFS_TREE.superblockBytes || !b.subarray(BTRFS.magicOffset, BTRFS.magicOffset + 8).equals(BTRFS.magic)) return null;
  const csumType = b.readUInt16LE(S.csumType);
  if (csumType === BTRFS_TREE.csumCrc32c && b.readUInt32LE(0) !== crc32c(b.subarray(32, BTRFS_TREE.superblockBytes))) return null;
  const incompat = Number(b.readBigUInt64LE(S.incompat) & 0xffffffffn);
  const fsidAt = incompat & BTRFS_TREE.incompatMetadataUuid ? BTRFS_TREE.metadataUuidOffset : BTRFS.fsidOffset;
  const sysSize = b.readUInt32LE(S.sysChunkArraySize);
  if (sysSize > S.sysChunkArrayMax) return null;
  const sysChunks: BtrfsChunk[] = [];
  const end = S.sysChunkArray + sysSize;
  for (let o = S.sysChunkArray; o < end; ) {
    if (o + BTRFS_TREE.keyBytes > end || b[o + 8] !== BTRFS_TREE.item.chunkItem) return null;
    const parsed = parseChunk(b, o + BTRFS_TREE.keyBytes, end, u64(b, o + 9));
    if (!parsed) return null;
    sysChunks.push(parsed.chunk);
    o += BTRFS_TREE.keyBytes + parsed.bytes;
  }
  const sb: BtrfsSuperblock = {
    fsid: Buffer.from(b.subarray(fsidAt, fsidAt + 16)),
    deviceBytes: u64(b, S.devItemTotalBytes),
    numDevices: u64(b, S.numDevices),
    sectorSize: b.readUInt32LE(S.sectorSize),
    nodeSize: b.readUInt32LE(S.nodeSize),
    rootLogical: u64(b, S.rootLogical),
    rootLevel: b[S.rootLevel]!,
    chunkRootLogical: u64(b, S.chunkRootLogical),
    chunkRootLevel: b[S.chunkRootLevel]!,
    logRootLogical: u64(b, S.logRootLogical),
    incompat,
    csumType,
    devid: u64(b, S.devItemDevid),
    sysChunks,
  };
  const ok =
    isPowerOfTwoIn(sb.sectorSize, 4096, 65536) &&
    isPowerOfTwoIn(sb.nodeSize, sb.sectorSize, 65536) &&
    sb.deviceBytes > 0 &&
    sysChunks.length > 0 &&
    sb.rootLevel <= BTRFS_TREE.maxLevel &&
    sb.chunkRootLevel <= BTRFS_TREE.maxLevel &&
    Number.isSafeInteger(sb.rootLogical) &&
    Number.isSafeInteger(sb.chunkRootLogical);
  return ok ? sb : null;
}

class ChunkMap {
  private readonly chunks: BtrfsChunk[];

  constructor(chunks: BtrfsChunk[]) {
    this.chunks = [...chunks].sort((a, b) => a.logical - b.logical);
  }

  get all(): readonly BtrfsChunk[] {
    return this.chunks;
  }

  find(logical: number): BtrfsChunk | undefined {
    let lo = 0;
    let hi = this.chunks.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const c = this.chunks[mid]!;
      if (logical < c.logical) hi = mid - 1;
      else if (logical >= c.logical + c.lengthBytes) lo = mid + 1;
      else return c;
    }
    return undefined;
  }
}

interface WalkContext {
  readonly source: BlockSource;
  readonly startBytes: number;
  readonly fsBytes: number;
  readonly sb: BtrfsSuperblock;
  readonly where: string;
  readonly used: Extent[];
}

function corrupt(where: string, why: string): StrataError {
  return new StrataError('Corrupt', `The btrfs filesystem ${where} is damaged: ${why}.`);
}

/**
 * Physical ranges of [logical, logical + length) in a single-device chunk: one per copy (DUP keeps
 * two on the device; single and one-stripe RAID0 one). Throws Corrupt when the range leaves its chunk or the device.
 */
function physicalOf(ctx: WalkContext, chunks: ChunkMap, logical: number, lengthBytes: number): Extent[] {
  const c = Number.isSafeInteger(logical) && Number.isSafeInteger(lengthBytes) ? chunks.find(logical) : undefined;
  if (!c || logical + lengthBytes > c.logical + c.lengthBytes) throw corrupt(ctx.where, `logical range ${logical}+${lengthBytes} lies in no chunk`);
  return c.stripes.map((s) => {
    const start = s.offsetBytes + (logical - c.logical);
    if (start + lengthBytes > ctx.fsBytes) throw corrupt(ctx.where, `logical range ${logical} maps past the end of the device`);
    return { startBytes: start, lengthBytes };
  });
}

/**
 * Walks a tree from its root, level by level, calling onItem for every leaf item. Every block must
 * carry its own address, the filesystem's id, the expected level and (with CRC-32C) a valid checksum.
 */
async function walkTree(
  ctx: WalkContext,
  chunks: ChunkMap,
  rootLogical: number,
  rootLevel: number,
  onItem: (objectid: number, type: number, offset: number, data: Buffer) => void,
): Promise<void> {
  const T = BTRFS_TREE;
  const ns = ctx.sb.nodeSize;
  const maxNodes = Math.ceil(ctx.fsBytes / ns);
  const seen = new Set<number>();
  let current = [rootLogical];
  for (let level = rootLevel; level >= 0; level--) {
    const next: number[] = [];
    for (const logical of current) {
      if (seen.has(logical) || seen.size >= maxNodes) throw corrupt(ctx.where, `tree block ${logical} is reached twice`);
      seen.add(logical);
      const copies = physicalOf(ctx, chunks, logical, ns);
      let node: Buffer | null = null;
      let problem = '';
      for (const copy of copies) {
        const b = Buffer.from(await ctx.source.read(ctx.startBytes + copy.startBytes, ns));
        if (b.length < ns) problem = 'it lies past the end of the source';
        else if (u64(b, T.header.bytenr) !== logical) problem = 'it names another address';
        else if (!b.subarray(T.header.fsid, T.header.fsid + 16).equals(ctx.sb.fsid)) problem = 'it belongs to another filesystem';
        else if (ctx.sb.csumType === T.csumCrc32c && b.readUInt32LE(0) !== crc32c(b.subarray(32))) problem = 'it fails its checksum';
        else if (b[T.header.level] !== level) problem = `it is at level ${b[T.header.level]}, expected ${level}`;
        else {
          node = b;
          break;
        }
      }
      if (!node) throw corrupt(ctx.where, `tree block ${logical} cannot be used (${problem})`);
      for (const copy of copies) ctx.used.push(copy);
      const nritems = node.readUInt32LE(T.header.nritems);
      const body = ns - T.header.bytes;
      if (nritems > body / (level > 0 ? T.nodePtrBytes : T.leafItemBytes)) throw corrupt(ctx.where, `tree block ${logical} claims ${nritems} items`);
      for (let i = 0; i < nritems; i++) {
        if (level > 0) {
          next.push(u64(node, T.header.bytes + i * T.nodePtrBytes + T.keyBytes));
          continue;
        }
        const o = T.header.bytes + i * T.leafItemBytes;
        const dataOffset = node.readUInt32LE(o + T.keyBytes);
        const dataSize = node.readUInt32LE(o + T.keyBytes + 4);
        if (dataOffset + dataSize > body) throw corrupt(ctx.where, `an item of tree block ${logical} runs past the block`);
        const start = T.header.bytes + dataOffset;
        onItem(u64(node, o), node[o + 8]!, u64(node, o + 9), node.subarray(start, start + dataSize));
      }
    }
    current = next;
  }
}

/** Why the extent tree cannot be used; the caller keeps every chunk (or the volume) whole. */
function whyNotMappable(sb: BtrfsSuperblock): string | null {
  if (sb.numDevices !== 1) return `it spans ${sb.numDevices} devices, and Strata maps only single-device btrfs`;
  if (sb.incompat & BTRFS_TREE.incompatUnsupported) return 'it uses a zoned, extent-tree-v2 or raid-stripe-tree layout that Strata does not read';
  return null;
}

/**
 * Maps the used bytes of the btrfs filesystem at startBytes. Throws InvalidInput when the volume is
 * shorter than the filesystem, Corrupt when the superblock, chunk tree or extent tree cannot be trusted.
 * A multi-device filesystem, a striping profile (RAID0 over several stripes, RAID10/5/6), or a tree log to replay keeps
 * more than the extents (the volume, or every chunk), with a warning that says why.
 */
export async function readBtrfsUsedExtents(source: BlockSource, startBytes: number, sizeBytes: number): Promise<UsedMap> {
  const where = `at offset ${startBytes}`;
  const T = BTRFS_TREE;
  const volumeBytes = volumeBytesOf(source.sizeBytes, startBytes, sizeBytes);
  const sb = parseBtrfsSuperblock(Buffer.from(await source.read(startBytes + BTRFS.superblockOffset, T.superblockBytes)));
  if (!sb) throw new StrataError('Corrupt', `The btrfs superblock ${where} is damaged: bad checksum, system chunk array or geometry.`);
  if (sb.deviceBytes > volumeBytes) {
    throw new StrataError('InvalidInput', `The btrfs filesystem ${where} claims ${sb.deviceBytes} bytes but its volume holds only ${volumeBytes}; the image may be truncated.`);
  }
  const whole = (why: string): UsedMap =>
    finishUsedMap([{ startBytes: 0, lengthBytes: volumeBytes }], startBytes, volumeBytes, volumeBytes, [
      `The btrfs filesystem ${where} is kept whole: ${why}.`,
    ]);
  const reason = whyNotMappable(sb);
  if (reason) return whole(reason);

  const used: Extent[] = [{ startBytes: 0, lengthBytes: T.reservedBytes }];
  for (const mirror of T.superblockMirrors) {
    if (mirror + T.superblockBytes <= sb.deviceBytes) used.push({ startBytes: mirror, lengthBytes: T.superblockBytes });
  }
  const ctx: WalkContext = { source, startBytes, fsBytes: sb.deviceBytes, sb, where, used };
  const checkChunk = (c: BtrfsChunk): void => {
    if (c.stripes.some((s) => s.devid !== sb.devid)) throw corrupt(where, `chunk ${c.logical} names another device`);
    if (c.stripes.some((s) => !Number.isSafeInteger(s.offsetBytes) || s.offsetBytes + c.lengthBytes > sb.deviceBytes)) {
      throw corrupt(where, `chunk ${c.logical} lies past the end of the device`);
    }
  };
  for (const c of sb.sysChunks) checkChunk(c);

  // The chunk tree lives in the system chunks that the superblock carries.
  const chunkList: BtrfsChunk[] = [];
  await walkTree(ctx, new ChunkMap(sb.sysChunks), sb.chunkRootLogical, sb.chunkRootLevel, (objectid, type, offset, data) => {
    if (type !== T.item.chunkItem) return;
    const parsed = parseChunk(data, 0, data.length, offset);
    if (!parsed) throw corrupt(where, `the chunk item at logical ${offset} is malformed`);
    checkChunk(parsed.chunk);
    chunkList.push(parsed.chunk);
  });
  chunkList.sort((a, b) => a.logical - b.logical);
  for (let i = 1; i < chunkList.length; i++) {
    const prev = chunkList[i - 1]!;
    if (chunkList[i]!.logical < prev.logical + prev.lengthBytes) throw corrupt(where, `chunks at logical ${prev.logical} and ${chunkList[i]!.logical} overlap`);
  }
  const chunks = new ChunkMap(chunkList);
  // Single and mirrored chunks map stripe by stripe (every stripe a whole copy); so does RAID0 with
  // one stripe, which is what mkfs makes on one device. Real striping is not followed.
  const striped = chunkList.find((c) => c.type & T.chunkStripedParity || (c.type & T.chunkRaid0 && c.stripes.length > 1));
  const keepChunks = (why: string): UsedMap => {
    for (const c of chunkList) for (const s of c.stripes) used.push({ startBytes: s.offsetBytes, lengthBytes: c.lengthBytes });
    return finishUsedMap(used, startBytes, volumeBytes, sb.deviceBytes, [`Every allocated chunk of the btrfs filesystem ${where} is kept whole: ${why}.`]);
  };
  if (striped) return keepChunks(`chunk ${striped.logical} stripes its data, and Strata maps only single, DUP, RAID1 and one-stripe RAID0 chunks`);
  // Blocks of the tree log are in no extent tree until the log is replayed at the next mount.
  if (sb.logRootLogical !== 0) return keepChunks('it holds a tree log that the next mount replays');

  let extentRoot: { logical: number; level: number } | null = null;
  await walkTree(ctx, chunks, sb.rootLogical, sb.rootLevel, (objectid, type, _offset, data) => {
    if (objectid !== T.extentTreeObjectid || type !== T.item.rootItem) return;
    if (data.length <= T.rootItemLevel) throw corrupt(where, 'the extent tree root item is short');
    extentRoot = { logical: u64(data, T.rootItemBytenr), level: data[T.rootItemLevel]! };
  });
  const root = extentRoot as { logical: number; level: number } | null;
  if (!root || root.level > T.maxLevel) throw corrupt(where, 'the root tree names no extent tree');
  await walkTree(ctx, chunks, root.logical, root.level, (objectid, type, offset) => {
    if (type === T.item.extentItem) {
      if (!(offset > 0)) throw corrupt(where, `the extent item at logical ${objectid} has length ${offset}`);
      for (const e of physicalOf(ctx, chunks, objectid, offset)) used.push(e);
    } else if (type === T.item.metadataItem) {
      for (const e of physicalOf(ctx, chunks, objectid, sb.nodeSize)) used.push(e);
    }
  });
  return finishUsedMap(used, startBytes, volumeBytes, sb.deviceBytes, []);
}
