// Which bytes of an ext2/3/4 volume hold data or metadata, from its superblock, group descriptors
// and block bitmaps. Where a bitmap is not trusted (not initialised, or its descriptor fails its
// checksum) the group's fixed metadata or the whole group counts as used: never lose a block.
import type { BlockSource } from '../../agent-core/block-source.js';
import { StrataError } from '../../agent-core/api/errors.js';
import { alignExtents, normalizeExtents, totalBytes, type Extent } from '../../agent-core/extents.js';
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
    readonly bytes: Buffer,
    readonly descBytes: number,
    readonly count: number,
  ) {
    this.wide = descBytes >= EXT.descBytes64Min;
  }

  private field(group: number, lo: number, hi: number): number {
    const o = group * this.descBytes;
    const low = this.bytes.readUInt32LE(o + lo);
    if (!this.wide) return low;
    const high = this.bytes.readUInt32LE(o + hi);
    return high === 0 ? low : low + high * 2 ** 32;
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
   * The superblock copy, descriptor copies and reserved GDT blocks at the start of a group: they
   * start at baseMetadataStart(group) and run for baseMetadataBlocks(group) blocks. Reserved GDT
   * blocks are counted under meta_bg too, as the kernel does.
   */
  baseMetadataStart(group: number): number {
    return this.superBlockOf(group);
  }

  baseMetadataBlocks(group: number): number {
    const hasSuper = this.hasSuperblock(group);
    let count = hasSuper ? 1 : 0;
    const metaGroup = Math.floor(group / this.descPerBlock);
    if (!this.metaBg || metaGroup < this.sb.firstMetaBg) {
      if (hasSuper) count += this.oldDescBlocks() + this.sb.reservedGdtBlocks;
    } else {
      const r = group % this.descPerBlock;
      if (r === 0 || r === 1 || r === this.descPerBlock - 1) count += 1;
    }
    return count;
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

/** Reads at most this many bytes of bitmaps at once, into one buffer reused from read to read. */
const MAX_BITMAP_READ_BYTES = 256 << 10;
/** Unwanted blocks between two bitmaps that are read and thrown away rather than split the read. */
const MAX_BITMAP_GAP_BLOCKS = 4;
/** Descriptor blocks are read straight into the table, at most this many bytes per read. */
const MAX_DESC_READ_BYTES = 4 << 20;

function pastTheEnd(source: BlockSource, first: number, last: number, baseBytes: number): never {
  throw new StrataError('Corrupt', `Blocks ${first}–${last} at offset ${baseBytes} lie past the end of the source (${source.sizeBytes} bytes).`);
}

/**
 * Reads every descriptor block straight into its place in the table, neighbours in one read. A block
 * two descriptor blocks claim holds only the later one's descriptors; the earlier slot stays zero.
 */
async function readDescriptors(source: BlockSource, startBytes: number, geo: ExtGeometry, where: string): Promise<DescriptorTable> {
  const sb = geo.sb;
  const bs = sb.blockSizeBytes;
  const n = geo.descBlocks;
  const location = new Float64Array(n);
  let ascending = true;
  for (let i = 0; i < n; i++) {
    const block = geo.descBlockLocation(i);
    if (block >= sb.blocksCount) corrupt(where, `group descriptor block ${i} would be at block ${block}, past the end`);
    location[i] = block;
    if (i > 0 && block <= location[i - 1]!) ascending = false;
  }
  // Only meta_bg places descriptor blocks out of order, and only a damaged one places two in one block.
  let owner: Map<number, number> | null = null;
  if (!ascending) {
    owner = new Map();
    for (let i = 0; i < n; i++) owner.set(location[i]!, i);
  }
  const owns = (i: number): boolean => owner === null || owner.get(location[i]!) === i;
  // Descriptor block i holds groups [i × descPerBlock, (i + 1) × descPerBlock): laid end to end
  // in that order, group g's descriptor is at g × descBytes.
  const bytes = Buffer.alloc(n * bs);
  const maxRun = Math.max(1, Math.floor(MAX_DESC_READ_BYTES / bs));
  for (let i = 0; i < n; ) {
    if (!owns(i)) {
      i++;
      continue;
    }
    let j = i + 1;
    while (j < n && j - i < maxRun && location[j] === location[j - 1]! + 1 && owns(j)) j++;
    const length = (j - i) * bs;
    const got = await source.readInto(bytes, i * bs, length, startBytes + location[i]! * bs);
    if (got < length) pastTheEnd(source, location[i]!, location[j - 1]!, startBytes);
    i = j;
  }
  return new DescriptorTable(bytes, sb.descBytes, geo.groupCount);
}

/**
 * Collects ranges of blocks, growing the last one while the next starts where it ends, so a run of
 * neighbours (full groups, a flex group's bitmaps) costs one object rather than one each. Counting
 * in blocks keeps the numbers small integers, which V8 does not box; bytes come out at the end.
 */
class RunList {
  private readonly runs: Extent[] = [];
  private start = 0;
  private length = 0;

  constructor(private readonly blockSizeBytes: number) {}

  add(firstBlock: number, blockCount: number): void {
    // Empty ranges mean nothing (normalizeExtents would drop them).
    if (blockCount <= 0) return;
    if (this.length > 0 && this.start + this.length === firstBlock) {
      this.length += blockCount;
      return;
    }
    this.flush();
    this.start = firstBlock;
    this.length = blockCount;
  }

  /** The ranges collected so far as byte ranges (not normalized: they may overlap or come out of order). */
  done(): Extent[] {
    this.flush();
    return this.runs;
  }

  private flush(): void {
    if (this.length > 0) this.runs.push({ startBytes: this.start * this.blockSizeBytes, lengthBytes: this.length * this.blockSizeBytes });
    this.length = 0;
  }
}

/**
 * Adds the runs of set bits among the first bitCount bits of the bitmap at data[offset] to runs. Bit
 * i (LSB-first within each byte) stands for the ratio blocks from firstBlock + i × ratio. words
 * views the same memory as data; offset is a multiple of 4. Whole 32-bit words of 0 or ~0 (the
 * same in either byte order) are taken at once, other words bit by bit through their bytes.
 */
function addBitmapRuns(data: Buffer, words: Int32Array, offset: number, bitCount: number, ratio: number, firstBlock: number, runs: RunList): void {
  let runStart = -1;
  const wholeWords = bitCount >>> 5;
  const firstWord = offset >>> 2;
  let i = 0;
  for (let w = 0; w < wholeWords; w++, i += 32) {
    const word = words[firstWord + w]!;
    if (word === -1) {
      if (runStart < 0) runStart = i;
    } else if (word === 0) {
      if (runStart >= 0) {
        runs.add(firstBlock + runStart * ratio, (i - runStart) * ratio);
        runStart = -1;
      }
    } else {
      runStart = addBits(data, offset, i, i + 32, runStart, ratio, firstBlock, runs);
    }
  }
  if (i < bitCount) runStart = addBits(data, offset, i, bitCount, runStart, ratio, firstBlock, runs);
  if (runStart >= 0) runs.add(firstBlock + runStart * ratio, (bitCount - runStart) * ratio);
}

/** Bits [from, to) of the bitmap at data[offset], one at a time; returns the run still open (or -1). */
function addBits(data: Buffer, offset: number, from: number, to: number, runStart: number, ratio: number, firstBlock: number, runs: RunList): number {
  for (let i = from; i < to; i++) {
    const set = (data[offset + (i >> 3)]! >> (i & 7)) & 1;
    if (set && runStart < 0) runStart = i;
    else if (!set && runStart >= 0) {
      runs.add(firstBlock + runStart * ratio, (i - runStart) * ratio);
      runStart = -1;
    }
  }
  return runStart;
}

/**
 * Reads the block bitmaps of groups (in the order of their bitmap blocks) and adds their set bits to
 * runs. Neighbouring bitmaps (a flex group's) come in one read, into one buffer reused throughout.
 */
async function addBitmaps(source: BlockSource, startBytes: number, geo: ExtGeometry, descs: DescriptorTable, groups: Int32Array, runs: RunList): Promise<void> {
  const sb = geo.sb;
  const bs = sb.blockSizeBytes;
  const ratio = sb.clusterSizeBytes / bs;
  const maxRunBlocks = Math.max(1, Math.floor(MAX_BITMAP_READ_BYTES / bs));
  let buffer = Buffer.alloc(0);
  let words = new Int32Array(0);
  for (let i = 0; i < groups.length; ) {
    const first = descs.blockBitmap(groups[i]!);
    let last = first;
    let j = i + 1;
    for (; j < groups.length; j++) {
      const next = descs.blockBitmap(groups[j]!);
      if (next - last > MAX_BITMAP_GAP_BLOCKS + 1 || next - first >= maxRunBlocks) break;
      last = next;
    }
    const length = (last - first + 1) * bs;
    if (buffer.length < length) {
      // Its own memory, so that offsets in it are 4-byte aligned for the word view.
      buffer = Buffer.alloc(length);
      words = new Int32Array(buffer.buffer, buffer.byteOffset, length >>> 2);
    }
    const got = await source.readInto(buffer, 0, length, startBytes + first * bs);
    if (got < length) pastTheEnd(source, first, last, startBytes);
    for (let k = i; k < j; k++) {
      const g = groups[k]!;
      // Bits past the filesystem's last block are padding (set by mke2fs) and mean nothing.
      const bits = Math.ceil(geo.groupBlockCount(g) / ratio);
      addBitmapRuns(buffer, words, (descs.blockBitmap(g) - first) * bs, bits, ratio, geo.groupFirstBlock(g), runs);
    }
    i = j;
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

  // Volume-relative block ranges, byte ranges once done, shifted to disk offsets at the end. `fixed`
  // holds metadata found by position rather than by bitmap: under bigalloc it marks the whole
  // clusters it lives in.
  const used = new RunList(bs);
  const fixed = new RunList(bs);
  // The primary superblock and descriptors, whatever the bitmaps say (the boot block: below).
  fixed.add(geo.baseMetadataStart(0), geo.baseMetadataBlocks(0));

  // Every group's bitmaps and inode table are in use wherever flex_bg placed them. One list per
  // kind, so that a flex group's runs of bitmaps and tables merge as they are collected.
  const blockBitmaps = new RunList(bs);
  const inodeBitmaps = new RunList(bs);
  const inodeTables = new RunList(bs);
  const place = (g: number, block: number, count: number, into: RunList): void => {
    if (block === 0 || block + count > sb.blocksCount) corrupt(where, `group ${g} places metadata at block ${block}, outside the filesystem`);
    into.add(block, count);
  };
  for (let g = 0; g < descs.count; g++) {
    place(g, descs.blockBitmap(g), 1, blockBitmaps);
    place(g, descs.inodeBitmap(g), 1, inodeBitmaps);
    place(g, descs.inodeTable(g), geo.inodeTableBlocks, inodeTables);
  }

  // The groups whose bitmaps are read, sorted by bitmap block (mke2fs lays them out in group order).
  const withBitmap = new Int32Array(descs.count);
  let count = 0;
  let ascending = true;
  for (let g = 0; g < descs.count; g++) {
    if (checksummed && descs.flags(g) & EXT.bgBlockUninit) {
      if (groupDescChecksum(sb, g, descs.bytes, g * descs.descBytes, descs.descBytes) === descs.checksum(g)) {
        // The kernel builds this group's bitmap from its fixed metadata; so do we.
        fixed.add(geo.baseMetadataStart(g), geo.baseMetadataBlocks(g));
      } else {
        warnings.push(`Group ${g} of the ext filesystem ${where} says its block bitmap is not initialised, but its descriptor fails its checksum; the whole group is kept.`);
        used.add(geo.groupFirstBlock(g), geo.groupBlockCount(g));
      }
      continue;
    }
    if (count > 0 && descs.blockBitmap(g) < descs.blockBitmap(withBitmap[count - 1]!)) ascending = false;
    withBitmap[count++] = g;
  }
  const groups = withBitmap.subarray(0, count);
  if (!ascending) groups.sort((a, b) => descs.blockBitmap(a) - descs.blockBitmap(b) || a - b);
  await addBitmaps(source, startBytes, geo, descs, groups, used);

  const all = used.done();
  const fixedRuns = fixed.done();
  for (const list of [blockBitmaps, inodeBitmaps, inodeTables]) for (const e of list.done()) fixedRuns.push(e);
  // The boot block and the primary superblock: the first 2 KiB, less than a block when blocks are larger.
  fixedRuns.push({ startBytes: 0, lengthBytes: EXT.superblockOffset + EXT.superblockBytes });
  for (const e of sb.clusterSizeBytes > bs ? alignExtents(normalizeExtents(fixedRuns), sb.clusterSizeBytes, fsSizeBytes) : fixedRuns) all.push(e);
  // Within the volume, nothing past the filesystem's end is known to be free.
  if (volumeBytes > fsSizeBytes) all.push({ startBytes: fsSizeBytes, lengthBytes: volumeBytes - fsSizeBytes });

  // Shifted to disk offsets; whatever lies at or past the volume's end (bitmap runs of a last
  // cluster that overhangs it) is dropped.
  const extents: Extent[] = [];
  for (const e of normalizeExtents(all)) {
    if (e.startBytes >= volumeBytes) break;
    extents.push({ startBytes: startBytes + e.startBytes, lengthBytes: Math.min(e.lengthBytes, volumeBytes - e.startBytes) });
  }
  return { extents, usedBytes: totalBytes(extents), blockSizeBytes: bs, fsSizeBytes, warnings };
}
