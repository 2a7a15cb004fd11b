// Which bytes of an XFS volume hold data or metadata: every allocation group minus the free extents
// its by-block-number free-space B+tree lists. An AG whose AGF or tree does not check out is kept whole.
import type { BlockSource } from '../../agent-core/block-source.js';
import { StrataError } from '../../agent-core/api/errors.js';
import { complementExtents, normalizeExtents, type Extent } from '../../agent-core/extents.js';
import { readBlocksInBatches } from './block-batches.js';
import { crc32c } from './crc32c.js';
import { XFS } from './disk-magic.js';
import { finishUsedMap, volumeBytesOf, type UsedMap } from './used-map.js';
import { isPowerOfTwoIn } from './geometry-checks.js';

export interface XfsSuperblock {
  readonly blockSizeBytes: number;
  readonly sectorSizeBytes: number;
  readonly dataBlocks: number;
  readonly agBlocks: number;
  readonly agCount: number;
  readonly agBlockLog: number;
  /** Filesystem block number of the internal log; 0 when the log is on another device. */
  readonly logStart: number;
  readonly logBlocks: number;
  readonly crc: boolean;
}

/** Parses and sanity-checks the primary superblock; null when the geometry cannot be a real XFS. */
export function parseXfsSuperblock(b: Buffer): XfsSuperblock | null {
  if (b.length < 512 || !b.subarray(0, 4).equals(XFS.magic)) return null;
  const s = XFS.sb;
  const sb: XfsSuperblock = {
    blockSizeBytes: b.readUInt32BE(s.blockSize),
    sectorSizeBytes: b.readUInt16BE(s.sectorSize),
    dataBlocks: Number(b.readBigUInt64BE(s.dataBlocks)),
    agBlocks: b.readUInt32BE(s.agBlocks),
    agCount: b.readUInt32BE(s.agCount),
    agBlockLog: b[s.agBlockLog]!,
    logStart: Number(b.readBigUInt64BE(s.logStart)),
    logBlocks: b.readUInt32BE(s.logBlocks),
    crc: (b.readUInt16BE(s.versionNum) & XFS.versionMask) === XFS.versionCrc,
  };
  const ok =
    isPowerOfTwoIn(sb.blockSizeBytes, 512, 65536) &&
    isPowerOfTwoIn(sb.sectorSizeBytes, 512, 32768) &&
    sb.sectorSizeBytes <= sb.blockSizeBytes &&
    sb.agBlocks > 0 &&
    sb.agCount > 0 &&
    sb.agBlockLog < 32 &&
    2 ** sb.agBlockLog >= sb.agBlocks &&
    Number.isSafeInteger(sb.dataBlocks * sb.blockSizeBytes) &&
    sb.dataBlocks > (sb.agCount - 1) * sb.agBlocks &&
    sb.dataBlocks <= sb.agCount * sb.agBlocks;
  return ok ? sb : null;
}

/** Why an AG cannot be mapped; caught per AG so that one bad AG costs only itself. */
class BadAg extends Error {}

/**
 * The free extents (AG block, count) of one AG from its bnobt, walked level by level from the root
 * so that every block is read once and a loop or a wrong level is noticed.
 */
async function readAgFree(source: BlockSource, sb: XfsSuperblock, agBaseBytes: number, agLength: number, agf: Buffer): Promise<Array<[number, number]>> {
  const bs = sb.blockSizeBytes;
  const root = agf.readUInt32BE(XFS.agf.bnoRoot);
  const levels = agf.readUInt32BE(XFS.agf.bnoLevel);
  if (levels < 1 || levels > XFS.maxLevels) throw new BadAg(`its free-space tree claims ${levels} levels`);
  const headerBytes = sb.crc ? XFS.shortHeaderBytesCrc : XFS.shortHeaderBytes;
  const magic = XFS.bnoMagics[sb.crc ? 1 : 0];
  const maxLeafRecs = Math.floor((bs - headerBytes) / XFS.recordBytes);
  const maxNodeRecs = Math.floor((bs - headerBytes) / (XFS.recordBytes + XFS.ptrBytes));
  const seen = new Set<number>();
  const free: Array<[number, number]> = [];
  let current = [root];
  for (let level = levels - 1; level >= 0; level--) {
    const next: number[] = [];
    for (const block of current) {
      if (block === 0 || block >= agLength || seen.has(block)) throw new BadAg(`its free-space tree points at block ${block} twice or outside the AG`);
      seen.add(block);
    }
    await readBlocksInBatches(source, current, { baseBytes: agBaseBytes, blockSizeBytes: bs }, (block, data) => {
      if (!data.subarray(0, 4).equals(magic)) throw new BadAg(`free-space tree block ${block} has no ${magic.toString('latin1')} magic`);
      if (sb.crc && data.readUInt32LE(XFS.shortHeaderCrcOffset) !== crc32c(data, XFS.shortHeaderCrcOffset)) {
        throw new BadAg(`free-space tree block ${block} fails its checksum`);
      }
      if (data.readUInt16BE(4) !== level) throw new BadAg(`free-space tree block ${block} is at level ${data.readUInt16BE(4)}, expected ${level}`);
      const recs = data.readUInt16BE(6);
      if (recs > (level === 0 ? maxLeafRecs : maxNodeRecs)) throw new BadAg(`free-space tree block ${block} claims ${recs} records`);
      if (level > 0) {
        // Pointers follow the room for maxNodeRecs keys, not the keys in use.
        const ptrs = headerBytes + maxNodeRecs * XFS.recordBytes;
        for (let i = 0; i < recs; i++) next.push(data.readUInt32BE(ptrs + i * XFS.ptrBytes));
        return;
      }
      for (let i = 0; i < recs; i++) {
        const o = headerBytes + i * XFS.recordBytes;
        const start = data.readUInt32BE(o);
        const count = data.readUInt32BE(o + 4);
        if (count === 0 || start + count > agLength) throw new BadAg(`free extent ${start}+${count} lies outside the AG`);
        free.push([start, count]);
      }
    });
    current = next;
  }
  free.sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < free.length; i++) {
    if (free[i]![0] < free[i - 1]![0] + free[i - 1]![1]) throw new BadAg(`free extents at blocks ${free[i - 1]![0]} and ${free[i]![0]} overlap`);
  }
  return free;
}

/**
 * Maps the used blocks of the XFS filesystem at startBytes. Throws InvalidInput when the volume is
 * shorter than the filesystem, Corrupt when the superblock makes no sense.
 */
export async function readXfsUsedExtents(source: BlockSource, startBytes: number, sizeBytes: number): Promise<UsedMap> {
  const where = `at offset ${startBytes}`;
  const volumeBytes = volumeBytesOf(source.sizeBytes, startBytes, sizeBytes);
  const sb = parseXfsSuperblock(Buffer.from(await source.read(startBytes, 512)));
  if (!sb) throw new StrataError('Corrupt', `The XFS superblock ${where} is damaged: its geometry is impossible.`);
  const bs = sb.blockSizeBytes;
  const fsSizeBytes = sb.dataBlocks * bs;
  if (fsSizeBytes > volumeBytes) {
    throw new StrataError('InvalidInput', `The xfs filesystem ${where} claims ${fsSizeBytes} bytes but its volume holds only ${volumeBytes}; the image may be truncated.`);
  }
  const warnings: string[] = [];
  const used: Extent[] = [];
  for (let ag = 0; ag < sb.agCount; ag++) {
    const agFirst = ag * sb.agBlocks;
    const agLength = Math.min(sb.agBlocks, sb.dataBlocks - agFirst);
    const agBaseBytes = startBytes + agFirst * bs;
    const whole: Extent = { startBytes: agFirst * bs, lengthBytes: agLength * bs };
    // The AG's superblock copy, AGF, AGI and AGFL sectors, whatever the tree says.
    used.push({ startBytes: whole.startBytes, lengthBytes: 4 * sb.sectorSizeBytes });
    try {
      const agf = Buffer.from(await source.read(agBaseBytes + sb.sectorSizeBytes, sb.sectorSizeBytes));
      if (!agf.subarray(0, 4).equals(XFS.agf.magic)) throw new BadAg('its AGF has no XAGF magic');
      if (sb.crc && agf.readUInt32LE(XFS.agf.crc) !== crc32c(agf, XFS.agf.crc)) throw new BadAg('its AGF fails its checksum');
      if (agf.readUInt32BE(XFS.agf.seqno) !== ag || agf.readUInt32BE(XFS.agf.length) !== agLength) throw new BadAg('its AGF names another AG or length');
      const free = await readAgFree(source, sb, agBaseBytes, agLength, agf);
      const freeBlocks = free.reduce((n, [, count]) => n + count, 0);
      const agfFree = agf.readUInt32BE(XFS.agf.freeBlocks);
      if (freeBlocks !== agfFree) throw new BadAg(`its free-space tree lists ${freeBlocks} free blocks but the AGF counts ${agfFree}`);
      const freeExtents = free.map(([start, count]) => ({ startBytes: start * bs, lengthBytes: count * bs }));
      for (const e of complementExtents(freeExtents, agLength * bs)) used.push({ startBytes: whole.startBytes + e.startBytes, lengthBytes: e.lengthBytes });
    } catch (err) {
      if (!(err instanceof BadAg)) throw err;
      warnings.push(`Allocation group ${ag} of the XFS filesystem ${where} cannot be mapped (${err.message}); the whole group is kept.`);
      used.push(whole);
    }
  }
  if (sb.logStart !== 0) {
    // The internal log is allocated space already; it is added by position too in case the trees disagree.
    const mask = 2 ** sb.agBlockLog;
    const logAg = Math.floor(sb.logStart / mask);
    const logBlock = sb.logStart % mask;
    used.push({ startBytes: (logAg * sb.agBlocks + logBlock) * bs, lengthBytes: sb.logBlocks * bs });
  }
  return finishUsedMap(normalizeExtents(used), startBytes, volumeBytes, fsSizeBytes, warnings);
}
