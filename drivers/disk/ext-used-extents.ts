// Which bytes of an ext2/3/4 volume hold data or metadata, from its superblock, group descriptors
// and block bitmaps. Where a bitmap is not trusted (not initialised, or its descriptor fails its
// checksum) the group's fixed metadata or the whole group counts as used: never lose a block.
import type { BlockSource } from '../../agent-core/block-source.js';
import { StrataError } from '../../agent-core/api/errors.js';
import { alignExtents, bitmapToExtents, normalizeExtents, totalBytes, type Extent } from '../../agent-core/extents.js';
import { readBlocksInBatches } from './block-batches.js';
import { EXT } from './disk-magic.js';
import { groupDescChecksum, hasGroupDescChecksums } from './ext-group-desc-checksum.js';
import { parseExtSuperblock, validateExtSuperblock, type ExtSuperblock } from './ext-superblock.js';

export interface ExtUsedMap {
  /** Used byte ranges as absolute offsets on the source, normalized. */
  readonly extents: Extent[];
  /** Bytes of the volume counted as used (the filesystem's used blocks plus any tail past its end). */
  readonly usedBytes: number;
  readonly blockSizeBytes: number;
  readonly fsSizeBytes: number;
  readonly warnings: string[];
}

/** All group descriptors, in group order, as they are stored: fields are decoded on demand. */
class DescriptorTable {
  private readonly wide: boolean;

  constructor(
    private readonly bytes: Buffer,
    private readonly descBytes: number,
    readonly count: number,
  ) {
    this.wide = descBytes >= EXT.descBytes64Min;
  }

  raw(group: number): Buffer {
    return this.bytes.subarray(group * this.descBytes, (group + 1) * this.descBytes);
  }

  private field(group: number, lo: number, hi: number): number {
    const o = group * this.descBytes;
    return this.bytes.readUInt32LE(o + lo) + (this.wide ? this.bytes.readUInt32LE(o + hi) * 2 ** 32 : 0);
  }

  blockBitmap(group: number): number {
    return this.field(group, 0x00, 0x20);
  }

  inodeBitmap(group: number): number {
    return this.field(group, 0x04, 0x24);
  }

  inodeTable(group: number): number {
    return this.field(group, 0x08, 0x28);
  }

  flags(group: number): number {
    return this.bytes.readUInt16LE(group * this.descBytes + 0x12);
  }

  checksum(group: number): number {
    return this.bytes.readUInt16LE(group * this.descBytes + EXT.bgChecksumOffset);
  }
}

/** The fixed geometry every step below works from. */
class ExtGeometry {
  readonly groupCount: number;
  readonly descPerBlock: number;
  readonly descBlocks: number;
  readonly inodeTableBlocks: number;
  readonly metaBg: boolean;

  constructor(readonly sb: ExtSuperblock) {
    this.groupCount = Math.ceil((sb.blocksCount - sb.firstDataBlock) / sb.blocksPerGroup);
    this.descPerBlock = sb.blockSizeBytes / sb.descBytes;
    this.descBlocks = Math.ceil(this.groupCount / this.descPerBlock);
    this.inodeTableBlocks = Math.ceil((sb.inodesPerGroup * sb.inodeSizeBytes) / sb.blockSizeBytes);
    this.metaBg = (sb.featureIncompat & EXT.incompat.metaBg) !== 0;
  }

  groupFirstBlock(group: number): number {
    return this.sb.firstDataBlock + group * this.sb.blocksPerGroup;
  }

  groupBlockCount(group: number): number {
    return Math.min(this.sb.blocksPerGroup, this.sb.blocksCount - this.groupFirstBlock(group));
  }

  /** Whether group keeps a superblock copy (sparse_super: 0, 1 and powers of 3, 5, 7; sparse_super2: two chosen groups). */
  hasSuperblock(group: number): boolean {
    const sb = this.sb;
    if (group === 0) return true;
    if (sb.featureCompat & EXT.compat.sparseSuper2) return group === sb.backupBgs[0] || group === sb.backupBgs[1];
    if (group <= 1 || (sb.featureRoCompat & EXT.roCompat.sparseSuper) === 0) return true;
    if ((group & 1) === 0) return false;
    return isPowerOf(group, 3) || isPowerOf(group, 5) || isPowerOf(group, 7);
  }

  /**
   * The block a group's superblock copy starts at. On a 1 KiB-block filesystem with bigalloc group
   * 0 starts at block 0 but its superblock is block 1.
   */
  private superBlockOf(group: number): number {
    const first = this.groupFirstBlock(group);
    return first === 0 && this.sb.blockSizeBytes === 1024 ? 1 : first;
  }

  /** Descriptor blocks kept in the classic layout: all of them, or those before s_first_meta_bg. */
  private oldDescBlocks(): number {
    return this.metaBg ? Math.min(this.sb.firstMetaBg, this.descBlocks) : this.descBlocks;
  }

  /**
   * The superblock copy, descriptor copies and reserved GDT blocks at the start of a group, as
   * [firstBlock, blockCount]. Reserved GDT blocks are counted under meta_bg too, as the kernel does.
   */
  baseMetadata(group: number): [number, number] {
    const start = this.superBlockOf(group);
    const hasSuper = this.hasSuperblock(group);
    let count = hasSuper ? 1 : 0;
    const metaGroup = Math.floor(group / this.descPerBlock);
    if (!this.metaBg || metaGroup < this.sb.firstMetaBg) {
      if (hasSuper) count += this.oldDescBlocks() + this.sb.reservedGdtBlocks;
    } else {
      const r = group % this.descPerBlock;
      if (r === 0 || r === 1 || r === this.descPerBlock - 1) count += 1;
    }
    return [start, count];
  }

  /** Where descriptor block i lives: after the primary superblock, or at the start of its meta group. */
  descBlockLocation(i: number): number {
    if (!this.metaBg || i < this.sb.firstMetaBg) return this.superBlockOf(0) + 1 + i;
    const group = i * this.descPerBlock;
    return this.superBlockOf(group) + (this.hasSuperblock(group) ? 1 : 0);
  }
}

function isPowerOf(n: number, base: number): boolean {
  let x = base;
  while (x < n) x *= base;
  return x === n;
}

function corrupt(where: string, what: string): never {
  throw new StrataError('Corrupt', `The ext filesystem ${where} is damaged: ${what}.`);
}

async function readDescriptors(source: BlockSource, startBytes: number, geo: ExtGeometry, where: string): Promise<DescriptorTable> {
  const sb = geo.sb;
  const bs = sb.blockSizeBytes;
  const slotOf = new Map<number, number>();
  for (let i = 0; i < geo.descBlocks; i++) {
    const block = geo.descBlockLocation(i);
    if (block >= sb.blocksCount) corrupt(where, `group descriptor block ${i} would be at block ${block}, past the end`);
    slotOf.set(block, i);
  }
  // Descriptor block i holds groups [i × descPerBlock, (i + 1) × descPerBlock): laid end to end
  // in that order, group g's descriptor is at g × descBytes.
  const bytes = Buffer.alloc(geo.descBlocks * bs);
  await readBlocksInBatches(source, slotOf.keys(), { baseBytes: startBytes, blockSizeBytes: bs, maxGapBlocks: 0 }, (block, data) => {
    data.copy(bytes, slotOf.get(block)! * bs);
  });
  return new DescriptorTable(bytes, sb.descBytes, geo.groupCount);
}

/** Appends a run, merging it into the previous one when they touch (flex_bg packs metadata tightly). */
function pushRun(list: Extent[], startBytes: number, lengthBytes: number): void {
  const last = list[list.length - 1];
  if (last && last.startBytes + last.lengthBytes === startBytes) {
    list[list.length - 1] = { startBytes: last.startBytes, lengthBytes: last.lengthBytes + lengthBytes };
  } else {
    list.push({ startBytes, lengthBytes });
  }
}

/**
 * Maps the used blocks of the ext2/3/4 filesystem at startBytes. Throws InvalidInput when the
 * volume is shorter than the filesystem says it is (a truncated image must be refused, not backed
 * up with holes), Corrupt when its metadata cannot be made sense of.
 */
export async function readExtUsedExtents(source: BlockSource, startBytes: number, sizeBytes: number): Promise<ExtUsedMap> {
  const where = `at offset ${startBytes}`;
  const volumeBytes = Math.max(0, Math.min(sizeBytes, source.sizeBytes - startBytes));
  const raw = await source.read(startBytes + EXT.superblockOffset, EXT.superblockBytes);
  const sb = parseExtSuperblock(raw);
  if (!sb) throw new StrataError('Corrupt', `There is no ext superblock ${where}.`);
  if (sb.kind === 'jbd') throw new StrataError('Unsupported', `The ext volume ${where} is an external journal, which has no block bitmaps.`);
  validateExtSuperblock(sb, where);
  const bs = sb.blockSizeBytes;
  const fsSizeBytes = sb.blocksCount * bs;
  if (fsSizeBytes > volumeBytes) {
    throw new StrataError(
      'InvalidInput',
      `The ${sb.kind} filesystem at offset ${startBytes} claims ${fsSizeBytes} bytes but its volume holds only ${volumeBytes}; the image may be truncated.`,
    );
  }
  const geo = new ExtGeometry(sb);
  if (geo.groupCount > EXT.maxGroups) corrupt(where, `${geo.groupCount} block groups is beyond any real filesystem`);
  const descs = await readDescriptors(source, startBytes, geo, where);
  const warnings: string[] = [];
  const checksummed = hasGroupDescChecksums(sb);

  // Volume-relative byte ranges; shifted to disk offsets at the end. `fixed` holds metadata found
  // by position rather than by bitmap: under bigalloc it marks the whole clusters it lives in.
  const used: Extent[] = [];
  const fixed: Extent[] = [];
  const blocks = (first: number, count: number): Extent => ({ startBytes: first * bs, lengthBytes: count * bs });
  // The boot block, the primary superblock and the primary descriptors, whatever the bitmaps say.
  fixed.push({ startBytes: 0, lengthBytes: EXT.superblockOffset + EXT.superblockBytes });
  fixed.push(blocks(...geo.baseMetadata(0)));

  // Every group's bitmaps and inode table are in use wherever flex_bg placed them. One list per
  // kind, so that a flex group's runs of bitmaps and tables merge as they are collected.
  const kinds: Extent[][] = [[], [], []];
  for (let g = 0; g < descs.count; g++) {
    const places: Array<[number, number]> = [[descs.blockBitmap(g), 1], [descs.inodeBitmap(g), 1], [descs.inodeTable(g), geo.inodeTableBlocks]];
    places.forEach(([block, count], kind) => {
      if (block === 0 || block + count > sb.blocksCount) corrupt(where, `group ${g} places metadata at block ${block}, outside the filesystem`);
      pushRun(kinds[kind]!, block * bs, count * bs);
    });
  }
  for (const list of kinds) fixed.push(...list);

  const toRead: number[] = [];
  const groupsOfBitmap = new Map<number, number[]>();
  for (let g = 0; g < descs.count; g++) {
    if (checksummed && descs.flags(g) & EXT.bgBlockUninit) {
      if (groupDescChecksum(sb, g, descs.raw(g)) === descs.checksum(g)) {
        // The kernel builds this group's bitmap from its fixed metadata; so do we.
        fixed.push(blocks(...geo.baseMetadata(g)));
      } else {
        warnings.push(`Group ${g} of the ext filesystem ${where} says its block bitmap is not initialised, but its descriptor fails its checksum; the whole group is kept.`);
        used.push(blocks(geo.groupFirstBlock(g), geo.groupBlockCount(g)));
      }
      continue;
    }
    const bitmap = descs.blockBitmap(g);
    toRead.push(bitmap);
    const groups = groupsOfBitmap.get(bitmap);
    if (groups) groups.push(g);
    else groupsOfBitmap.set(bitmap, [g]);
  }

  const ratio = sb.clusterSizeBytes / bs;
  await readBlocksInBatches(source, toRead, { baseBytes: startBytes, blockSizeBytes: bs }, (block, bitmap) => {
    for (const g of groupsOfBitmap.get(block)!) {
      const first = geo.groupFirstBlock(g);
      // Bits past the filesystem's last block are padding (set by mke2fs) and mean nothing.
      const bits = Math.ceil(geo.groupBlockCount(g) / ratio);
      for (const e of bitmapToExtents(bitmap, bits, sb.clusterSizeBytes, first * bs)) used.push(e);
    }
  });

  for (const e of ratio > 1 ? alignExtents(normalizeExtents(fixed), sb.clusterSizeBytes, fsSizeBytes) : fixed) used.push(e);
  // Within the volume, nothing past the filesystem's end is known to be free.
  if (volumeBytes > fsSizeBytes) used.push({ startBytes: fsSizeBytes, lengthBytes: volumeBytes - fsSizeBytes });

  const relative = clip(normalizeExtents(used), volumeBytes);
  const extents = relative.map((e) => ({ startBytes: startBytes + e.startBytes, lengthBytes: e.lengthBytes }));
  return { extents, usedBytes: totalBytes(extents), blockSizeBytes: bs, fsSizeBytes, warnings };
}

/** Drops whatever lies at or past limitBytes (bitmap runs of a last cluster that overhangs the volume). */
function clip(extents: Extent[], limitBytes: number): Extent[] {
  const out: Extent[] = [];
  for (const e of extents) {
    if (e.startBytes >= limitBytes) break;
    out.push({ startBytes: e.startBytes, lengthBytes: Math.min(e.lengthBytes, limitBytes - e.startBytes) });
  }
  return out;
}
