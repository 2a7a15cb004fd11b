// Which bytes of an LVM2 physical volume matter: the label and metadata areas, and for each logical
// volume on it either the used blocks of its filesystem (read through the LV's segments) or its whole extents.
import { ComputedSource, type BlockSource } from '../../agent-core/block-source.js';
import type { FilesystemKind } from '../../agent-core/api/disk-layout.js';
import { StrataError } from '../../agent-core/api/errors.js';
import type { Extent } from '../../agent-core/extents.js';
import { CRC32_TABLE, crcUpdate } from './crc.js';
import { LVM2 } from './disk-magic.js';
import { parseLvmText, readVolumeGroup, type LvmLogicalVolume, type LvmVolumeGroup } from './lvm-metadata.js';
import { finishUsedMap, volumeBytesOf, type UsedMap } from './used-map.js';

/** Maps one volume (here: a logical volume seen as a source of its own) the way mapDisk maps a partition. */
export type VolumeMapper = (
  source: BlockSource,
  startBytes: number,
  sizeBytes: number,
  name: string,
) => Promise<{ filesystem: FilesystemKind; extents: Extent[]; warnings: string[] }>;

/** LVM's own CRC-32: the IEEE table, a fixed seed, no final inversion. */
export function lvmCrc(data: Uint8Array): number {
  return crcUpdate(CRC32_TABLE, LVM2.crcSeed, data);
}

interface DiskLocation {
  readonly offsetBytes: number;
  readonly sizeBytes: number;
}

interface PvLabel {
  readonly uuid: string;
  readonly metadataAreas: DiskLocation[];
}

function u64(b: Buffer, o: number): number {
  const v = b.readBigUInt64LE(o);
  return v > BigInt(Number.MAX_SAFE_INTEGER) ? Number.NaN : Number(v);
}

/** Finds and checks the PV label in the first four sectors; null when there is none. */
export function parsePvLabel(head: Buffer): PvLabel | null {
  for (let sector = 0; sector < LVM2.labelSectors; sector++) {
    const o = sector * 512;
    if (o + 512 > head.length) break;
    const s = head.subarray(o, o + 512);
    if (!s.subarray(0, 8).equals(LVM2.labelId) || !s.subarray(LVM2.typeOffset, LVM2.typeOffset + 8).equals(LVM2.labelType)) continue;
    if (u64(s, 8) !== sector || s.readUInt32LE(16) !== lvmCrc(s.subarray(20))) return null;
    let p = s.readUInt32LE(LVM2.contentOffsetField);
    if (p < 32 || p + LVM2.uuidChars + 8 > 512) return null;
    const uuid = s.subarray(p, p + LVM2.uuidChars).toString('latin1');
    p += LVM2.uuidChars + 8;
    // Two zero-terminated lists of (offset, size): data areas, then metadata areas.
    const lists: DiskLocation[][] = [[], []];
    for (const list of lists) {
      while (true) {
        if (p + 16 > 512) return null;
        const offsetBytes = u64(s, p);
        const sizeBytes = u64(s, p + 8);
        p += 16;
        if (offsetBytes === 0) break;
        if (!Number.isSafeInteger(offsetBytes) || !Number.isSafeInteger(sizeBytes)) return null;
        list.push({ offsetBytes, sizeBytes });
      }
    }
    return { uuid, metadataAreas: lists[1]! };
  }
  return null;
}

/** The newest well-formed metadata text of a metadata area, or a reason it has none. */
async function readMetadataArea(source: BlockSource, startBytes: number, volumeBytes: number, mda: DiskLocation): Promise<string | { problem: string }> {
  const H = LVM2.mdaHeader;
  if (mda.sizeBytes <= H.bytes || mda.offsetBytes + mda.sizeBytes > volumeBytes) return { problem: 'the metadata area lies outside the volume' };
  const header = Buffer.from(await source.read(startBytes + mda.offsetBytes, H.bytes));
  if (header.length < H.bytes || !header.subarray(4, 4 + H.magic.length).equals(H.magic)) return { problem: 'the metadata area header has no magic' };
  if (header.readUInt32LE(0) !== lvmCrc(header.subarray(4))) return { problem: 'the metadata area header fails its checksum' };
  if (u64(header, H.start) !== mda.offsetBytes || u64(header, H.size) !== mda.sizeBytes) return { problem: 'the metadata area header names another area' };
  const textOffset = u64(header, H.rawLocn);
  const textBytes = u64(header, H.rawLocn + 8);
  const textCrc = header.readUInt32LE(H.rawLocn + 16);
  const ring = mda.sizeBytes - H.bytes;
  if (!(textOffset >= H.bytes && textOffset < mda.sizeBytes && textBytes > 0 && textBytes <= ring && textBytes <= LVM2.maxTextBytes)) {
    return { problem: 'the metadata area holds no metadata text' };
  }
  // The area is a ring after its header: text that reaches the end wraps to just after the header.
  const first = Math.min(textBytes, mda.sizeBytes - textOffset);
  const parts = [Buffer.from(await source.read(startBytes + mda.offsetBytes + textOffset, first))];
  if (first < textBytes) parts.push(Buffer.from(await source.read(startBytes + mda.offsetBytes + H.bytes, textBytes - first)));
  const text = Buffer.concat(parts);
  if (text.length !== textBytes || lvmCrc(text) !== textCrc) return { problem: 'the metadata text fails its checksum' };
  // The text is stored NUL-terminated.
  const nul = text.indexOf(0);
  return text.subarray(0, nul < 0 ? text.length : nul).toString('utf8');
}

/** A piece of an LV on the PV: LV bytes [lvOffset, lvOffset + length) are PV bytes from pvOffset, chunked by stripes. */
interface LvArea {
  readonly lvStartBytes: number;
  readonly lengthBytes: number;
  /** PV byte offset of each stripe's area, in stripe order. */
  readonly stripeStarts: number[];
  readonly stripeSizeBytes: number;
}

/** Splits LV bytes [offset, offset + length) into PV ranges. */
function* lvToPv(areas: readonly LvArea[], offset: number, length: number): Generator<Extent> {
  const end = offset + length;
  for (const a of areas) {
    const from = Math.max(offset, a.lvStartBytes);
    const to = Math.min(end, a.lvStartBytes + a.lengthBytes);
    if (from >= to) continue;
    const n = a.stripeStarts.length;
    if (n === 1) {
      yield { startBytes: a.stripeStarts[0]! + (from - a.lvStartBytes), lengthBytes: to - from };
      continue;
    }
    let o = from - a.lvStartBytes;
    while (o < to - a.lvStartBytes) {
      const chunk = Math.floor(o / a.stripeSizeBytes);
      const within = o % a.stripeSizeBytes;
      const take = Math.min(a.stripeSizeBytes - within, to - a.lvStartBytes - o);
      yield { startBytes: a.stripeStarts[chunk % n]! + Math.floor(chunk / n) * a.stripeSizeBytes + within, lengthBytes: take };
      o += take;
    }
  }
}

/** A logical volume read through its segments, as a BlockSource of its own. */
class LogicalVolumeSource extends ComputedSource {
  readonly kind = 'file' as const;
  readonly logicalSectorSize: number;
  readonly physicalSectorSize: number;

  constructor(
    private readonly pv: BlockSource,
    private readonly pvStartBytes: number,
    private readonly areas: readonly LvArea[],
    readonly path: string,
    readonly sizeBytes: number,
  ) {
    super();
    this.logicalSectorSize = pv.logicalSectorSize;
    this.physicalSectorSize = pv.physicalSectorSize;
  }

  async read(offsetBytes: number, lengthBytes: number): Promise<Buffer> {
    const length = Math.max(0, Math.min(lengthBytes, this.sizeBytes - offsetBytes));
    const out = Buffer.alloc(length);
    let at = 0;
    for (const piece of lvToPv(this.areas, offsetBytes, length)) {
      const data = await this.pv.read(this.pvStartBytes + piece.startBytes, piece.lengthBytes);
      data.copy(out, at);
      at += piece.lengthBytes;
      if (data.length < piece.lengthBytes) return out.subarray(0, at - piece.lengthBytes + data.length);
    }
    return out;
  }

}

/** Mapping back through many small stripe chunks costs this many pieces at most; beyond, the LV is kept whole. */
const MAX_MAPPED_PIECES = 1 << 20;

/**
 * Maps an LVM2 physical volume. The label, the metadata areas and everything outside the PV's
 * extents are kept. Each logical volume whose segments are all linear or striped on this PV is read
 * as a volume of its own through mapVolume and its used blocks are mapped back; every other LV
 * (spread over several PVs, a RAID, thin or cache part, a snapshot store, an unknown type) keeps its
 * extents on this PV whole, with a warning. Free extents are skipped. Throws Corrupt when the label
 * or every metadata area is damaged, InvalidInput when the PV claims more extents than the volume holds.
 */
export async function readLvmUsedExtents(source: BlockSource, startBytes: number, sizeBytes: number, mapVolume: VolumeMapper): Promise<UsedMap> {
  const where = `at offset ${startBytes}`;
  const volumeBytes = volumeBytesOf(source.sizeBytes, startBytes, sizeBytes);
  const label = parsePvLabel(Buffer.from(await source.read(startBytes, Math.min(LVM2.labelSectors * 512, volumeBytes))));
  if (!label) throw new StrataError('Corrupt', `The LVM2 label ${where} is damaged: bad checksum or area lists.`);
  let vg: LvmVolumeGroup | null = null;
  const problems: string[] = [];
  for (const mda of label.metadataAreas) {
    const text = await readMetadataArea(source, startBytes, volumeBytes, mda);
    if (typeof text !== 'string') {
      problems.push(text.problem);
      continue;
    }
    const parsed = parseLvmText(text);
    const candidate = parsed ? readVolumeGroup(parsed) : null;
    if (!candidate) problems.push('the metadata text does not parse');
    else if (!vg || candidate.seqno > vg.seqno) vg = candidate;
  }
  if (!vg) {
    const why = label.metadataAreas.length === 0 ? 'it has no metadata area' : problems.join('; ');
    throw new StrataError('Corrupt', `The LVM2 physical volume ${where} has no usable metadata (${why}).`);
  }
  const ownId = label.uuid;
  const pv = vg.pvs.find((p) => p.id.replace(/-/g, '') === ownId);
  if (!pv) throw new StrataError('Corrupt', `The LVM2 metadata ${where} does not list this physical volume.`);
  const ext = vg.extentBytes;
  const peEndBytes = pv.peStartBytes + pv.peCount * ext;
  if (!Number.isSafeInteger(peEndBytes)) throw new StrataError('Corrupt', `The LVM2 metadata ${where} describes an impossible extent area.`);
  if (peEndBytes > volumeBytes) {
    throw new StrataError('InvalidInput', `The LVM2 physical volume ${where} claims ${peEndBytes} bytes but its volume holds only ${volumeBytes}; the image may be truncated.`);
  }

  const warnings: string[] = [];
  const used: Extent[] = [{ startBytes: 0, lengthBytes: pv.peStartBytes }];
  for (const mda of label.metadataAreas) used.push({ startBytes: mda.offsetBytes, lengthBytes: Math.min(mda.sizeBytes, volumeBytes - mda.offsetBytes) });
  const whole = (): UsedMap => {
    used.push({ startBytes: pv.peStartBytes, lengthBytes: peEndBytes - pv.peStartBytes });
    return finishUsedMap(used, startBytes, volumeBytes, peEndBytes, warnings);
  };

  // LVs named by another LV's segment are parts (RAID images, thin data, snapshot stores): never mapped alone.
  const lvNames = new Set(vg.lvs.map((lv) => lv.name));
  const referenced = new Set<string>();
  for (const lv of vg.lvs) for (const seg of lv.segments) if (seg.type !== 'striped') for (const r of seg.references) if (lvNames.has(r)) referenced.add(r);

  for (const lv of vg.lvs) {
    const ownAreas: Extent[] = [];
    let onlyHere = true;
    for (const seg of lv.segments) {
      if (seg.type !== 'striped') {
        if (seg.references.includes(pv.name)) {
          warnings.push(`Logical volume ${lv.name} ${where} has a ${seg.type} segment that Strata does not read; the whole physical volume is kept.`);
          return whole();
        }
        continue;
      }
      const perStripe = (seg.extentCount / seg.stripes.length) * ext;
      for (const s of seg.stripes) {
        if (s.pvName !== pv.name) {
          onlyHere = false;
          continue;
        }
        const at = pv.peStartBytes + s.startExtent * ext;
        if (s.startExtent * ext + perStripe > pv.peCount * ext) throw new StrataError('Corrupt', `The LVM2 metadata ${where} puts logical volume ${lv.name} past the physical volume's extents.`);
        ownAreas.push({ startBytes: at, lengthBytes: perStripe });
      }
    }
    if (ownAreas.length === 0) continue;
    const reason = whyNotMapped(lv, referenced, onlyHere, ext);
    if (reason) {
      if (reason !== 'part') warnings.push(`Logical volume ${lv.name} ${where} ${reason}; its extents on this physical volume are kept whole.`);
      used.push(...ownAreas);
      continue;
    }
    const areas: LvArea[] = lv.segments.map((seg) => ({
      lvStartBytes: seg.startExtent * ext,
      lengthBytes: seg.extentCount * ext,
      stripeStarts: seg.stripes.map((s) => pv.peStartBytes + s.startExtent * ext),
      stripeSizeBytes: seg.stripeSizeBytes,
    }));
    const lvBytes = lv.segments.reduce((n, s) => n + s.extentCount * ext, 0);
    const lvSource = new LogicalVolumeSource(source, startBytes, areas, `${source.path}:${vg.name}/${lv.name}`, lvBytes);
    const mapped = await mapVolume(lvSource, 0, lvBytes, `${vg.name}/${lv.name}`);
    warnings.push(...mapped.warnings);
    const pieces: Extent[] = [];
    for (const e of mapped.extents) {
      for (const p of lvToPv(areas, e.startBytes, e.lengthBytes)) {
        pieces.push(p);
        if (pieces.length > MAX_MAPPED_PIECES) break;
      }
      if (pieces.length > MAX_MAPPED_PIECES) break;
    }
    if (pieces.length > MAX_MAPPED_PIECES) {
      warnings.push(`Logical volume ${lv.name} ${where} maps to too many stripe pieces; its extents are kept whole.`);
      used.push(...ownAreas);
    } else {
      for (const p of pieces) used.push(p);
    }
  }
  return finishUsedMap(used, startBytes, volumeBytes, peEndBytes, warnings);
}

/** Why an LV is not read through its filesystem: 'part' for a sub-LV of another (no warning), a sentence otherwise, null when it can be. */
function whyNotMapped(lv: LvmLogicalVolume, referenced: ReadonlySet<string>, onlyHere: boolean, extentBytes: number): string | null {
  if (referenced.has(lv.name)) return 'part';
  const unknown = lv.segments.find((s) => s.type !== 'striped');
  if (unknown) return `has a ${unknown.type} segment`;
  if (!onlyHere) return 'spans other physical volumes';
  let next = 0;
  for (const s of lv.segments) {
    if (s.startExtent !== next) return 'has a gap between its segments';
    if (s.stripes.length > 1 && (s.stripeSizeBytes === 0 || (extentBytes * (s.extentCount / s.stripes.length)) % s.stripeSizeBytes !== 0)) {
      return 'has a stripe size that does not divide its extents';
    }
    next += s.extentCount;
  }
  return null;
}
