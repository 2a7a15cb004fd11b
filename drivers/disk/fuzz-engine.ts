// One fuzz case over the disk-anatomy parsers: flip bytes of a real image (in memory, sparse), fix
// up the checksums that would stop the flips early, run mapDisk and the image's own reader, check what they return.
import { ComputedSource, type BlockSource } from '../../agent-core/block-source.js';
import { xorshift32 } from '../../agent-core/prng.js';
import { DiskLayoutSchema } from '../../agent-core/api/disk-layout.js';
import { isStrataError } from '../../agent-core/api/errors.js';
import { complementExtents, intersectExtents, normalizeExtents, totalBytes, type Extent } from '../../agent-core/extents.js';
import { FileSource } from '../source/file-source.js';
import { readBtrfsUsedExtents } from './btrfs-used-extents.js';
import { crc32 } from './crc32.js';
import { crc32c } from './crc32c.js';
import { exfatBootChecksum, readExfatUsedExtents } from './exfat-used-extents.js';
import { readExtUsedExtents } from './ext-used-extents.js';
import { readFatUsedExtents } from './fat-used-extents.js';
import type { FuzzImage, FuzzReader } from './fuzz-corpus.js';
import { readLuksUsedExtents } from './luks-used-extents.js';
import { lvmCrc, readLvmUsedExtents } from './lvm-used-extents.js';
import { mapDisk } from './map-disk.js';
import { readNtfsUsedExtents } from './ntfs-used-extents.js';
import { readPartitionTable } from './partition-table.js';
import { readSwapUsedExtents } from './swap-used-extents.js';
import type { UsedMap } from './used-map.js';
import { readXfsUsedExtents } from './xfs-used-extents.js';

const CHUNK = 64 << 10;

/** An image held in memory as its allocated 64 KiB chunks; holes read as zeros. Writes return an undo. */
export class SparseImage {
  private constructor(
    readonly sizeBytes: number,
    private readonly chunks: Map<number, Buffer>,
  ) {}

  static async load(file: string): Promise<SparseImage> {
    const source = await FileSource.open(file);
    try {
      const chunks = new Map<number, Buffer>();
      for (const e of await source.allocatedExtents()) {
        for (let c = Math.floor(e.startBytes / CHUNK); c * CHUNK < e.startBytes + e.lengthBytes; c++) {
          if (!chunks.has(c)) chunks.set(c, Buffer.from(await source.read(c * CHUNK, CHUNK)));
        }
      }
      return new SparseImage(source.sizeBytes, chunks);
    } finally {
      await source.close();
    }
  }

  /** Offsets of allocated bytes, for flips outside the hot ranges. */
  get allocatedChunks(): number[] {
    return [...this.chunks.keys()];
  }

  read(offset: number, length: number, into: Buffer): void {
    into.fill(0, 0, length);
    for (let at = offset; at < offset + length; ) {
      const c = Math.floor(at / CHUNK);
      const within = at - c * CHUNK;
      const take = Math.min(CHUNK - within, offset + length - at);
      const chunk = this.chunks.get(c);
      if (chunk) chunk.copy(into, at - offset, within, within + take);
      at += take;
    }
  }

  /** Writes bytes at offset; returns the write that undoes it. */
  write(offset: number, bytes: Uint8Array): [number, Buffer] {
    const old = Buffer.alloc(bytes.length);
    this.read(offset, bytes.length, old);
    for (let i = 0; i < bytes.length; i++) {
      const at = offset + i;
      if (at < 0 || at >= this.sizeBytes) continue;
      const c = Math.floor(at / CHUNK);
      let chunk = this.chunks.get(c);
      if (!chunk) {
        chunk = Buffer.alloc(CHUNK);
        this.chunks.set(c, chunk);
      }
      chunk[at - c * CHUNK] = bytes[i]!;
    }
    return [offset, old];
  }

  bytes(offset: number, length: number): Buffer {
    const b = Buffer.alloc(length);
    this.read(offset, length, b);
    return b;
  }
}

/** A BlockSource over a SparseImage that hands out one shared buffer, reused by the next read (as the contract allows). */
export class SparseSource extends ComputedSource {
  readonly kind = 'file' as const;
  readonly path: string;
  readonly logicalSectorSize = 512;
  readonly physicalSectorSize = 512;
  private shared = Buffer.alloc(0);

  constructor(
    private readonly image: SparseImage,
    readonly sizeBytes: number,
    name: string,
  ) {
    super();
    this.path = name;
  }

  async read(offsetBytes: number, lengthBytes: number): Promise<Buffer> {
    const length = Math.max(0, Math.min(lengthBytes, this.sizeBytes - offsetBytes));
    if (this.shared.length < length) this.shared = Buffer.alloc(length);
    this.image.read(offsetBytes, length, this.shared);
    return this.shared.subarray(0, length);
  }

}

export interface LoadedImage {
  readonly spec: FuzzImage;
  readonly image: SparseImage;
}

export async function loadImages(specs: FuzzImage[]): Promise<LoadedImage[]> {
  const out: LoadedImage[] = [];
  for (const spec of specs) out.push({ spec, image: await SparseImage.load(spec.file) });
  return out;
}

/** A finding: the parser threw something other than a typed error, or returned a map that breaks the rules. */
export class FuzzFailure extends Error {}

type Reader = (source: BlockSource, startBytes: number, sizeBytes: number) => Promise<UsedMap>;

const wholeLv = async (_s: BlockSource, startBytes: number, sizeBytes: number) => ({
  filesystem: 'unknown' as const,
  extents: [{ startBytes, lengthBytes: sizeBytes }],
  warnings: [],
});

const READERS: Record<Exclude<FuzzReader, 'partition-table'>, Reader> = {
  ext: readExtUsedExtents,
  xfs: readXfsUsedExtents,
  fat: readFatUsedExtents,
  exfat: readExfatUsedExtents,
  ntfs: readNtfsUsedExtents,
  btrfs: readBtrfsUsedExtents,
  swap: readSwapUsedExtents,
  luks: readLuksUsedExtents,
  lvm: (s, a, b) => readLvmUsedExtents(s, a, b, wholeLv),
};


function checkExtents(what: string, extents: Extent[], limitBytes: number): void {
  const normalized = normalizeExtents(extents);
  if (normalized.length !== extents.length || normalized.some((e, i) => e.startBytes !== extents[i]!.startBytes || e.lengthBytes !== extents[i]!.lengthBytes)) {
    throw new FuzzFailure(`${what} returned extents that are not normalized`);
  }
  const last = extents.at(-1);
  if (last && last.startBytes + last.lengthBytes > limitBytes) throw new FuzzFailure(`${what} returned extents past the end of the source`);
  if (extents.some((e) => !Number.isSafeInteger(e.startBytes) || !Number.isSafeInteger(e.lengthBytes) || e.startBytes < 0 || e.lengthBytes <= 0)) {
    throw new FuzzFailure(`${what} returned an extent with a bad offset or length`);
  }
}

/** Recomputes the checksums named by the image's fixups over the current (flipped) bytes. */
function applyFixups(img: LoadedImage, flipped: number[], undo: Array<[number, Buffer]>): void {
  const im = img.image;
  const put = (offset: number, bytes: Buffer): void => {
    undo.push(im.write(offset, bytes));
  };
  for (const fixup of img.spec.fixups) {
    if (fixup === 'exfat-boot') {
      const sum = exfatBootChecksum(im.bytes(0, 12 * 512), 512);
      const sector = Buffer.alloc(512);
      for (let o = 0; o < 512; o += 4) sector.writeUInt32LE(sum, o);
      put(11 * 512, sector);
    } else if (fixup === 'btrfs-csum') {
      const sb = 0x10000;
      const nodeSize = im.bytes(sb + 0x94, 4).readUInt32LE(0);
      const blocks = new Set<number>();
      for (const at of flipped) {
        if (at >= sb && at < sb + 4096) blocks.add(sb);
        else if (nodeSize >= 4096 && nodeSize <= 65536 && (nodeSize & (nodeSize - 1)) === 0) blocks.add(Math.floor(at / nodeSize) * nodeSize);
      }
      for (const start of blocks) {
        const length = start === sb ? 4096 : nodeSize;
        const b = im.bytes(start, length);
        const sum = Buffer.alloc(4);
        sum.writeUInt32LE(crc32c(b.subarray(32)), 0);
        put(start, sum);
      }
    } else if (fixup === 'lvm-crc') {
      const mda = 4096;
      const h = im.bytes(mda, 512);
      const textOffset = Number(h.readBigUInt64LE(40) & 0xffffffn);
      const textBytes = Math.min(Number(h.readBigUInt64LE(48) & 0xffffffn), 1 << 20);
      const text = im.bytes(mda + textOffset, textBytes);
      h.writeUInt32LE(lvmCrc(text), 56);
      h.writeUInt32LE(lvmCrc(h.subarray(4)), 0);
      put(mda, h);
      const label = im.bytes(512, 512);
      label.writeUInt32LE(lvmCrc(label.subarray(20)), 16);
      put(512, label);
    } else if (fixup === 'gpt-crc') {
      const h = im.bytes(512, 512);
      const headerBytes = Math.max(92, Math.min(512, h.readUInt32LE(12)));
      const entriesBytes = Math.min(h.readUInt32LE(80) * h.readUInt32LE(84), 1 << 20);
      const entriesAt = Number(h.readBigUInt64LE(72) & 0xffffffn) * 512;
      h.writeUInt32LE(crc32(im.bytes(entriesAt, entriesBytes)), 88);
      h.writeUInt32LE(0, 16);
      h.writeUInt32LE(crc32(h.subarray(0, headerBytes)), 16);
      put(512, h);
    }
  }
}

export interface CaseResult {
  readonly image: string;
  /** 'mapped' when mapDisk returned a map, 'refused' when it threw InvalidInput. */
  readonly disk: 'mapped' | 'warned' | 'refused';
  /** The image's own reader: mapped, or refused with a typed error other than Internal. */
  readonly reader: 'mapped' | 'refused';
}

/**
 * Runs case number caseIndex of a run seeded with seed: deterministic, so a finding is replayed by
 * its number. Throws FuzzFailure (or the parser's own exception) on a finding; the image is restored either way.
 */
export async function runFuzzCase(images: readonly LoadedImage[], seed: number, caseIndex: number): Promise<CaseResult> {
  const next = xorshift32((seed ^ Math.imul(caseIndex + 1, 0x9e3779b1)) >>> 0);
  const img = images[caseIndex % images.length]!;
  const im = img.image;
  const undo: Array<[number, Buffer]> = [];
  const flipped: number[] = [];
  let sizeBytes = im.sizeBytes;
  const mode = next() % 100;
  const [hotStart, hotLength] = img.spec.hot[next() % img.spec.hot.length]!;
  if (mode < 65) {
    const flips = 1 + (next() % 8);
    for (let i = 0; i < flips; i++) {
      const at = hotStart + (next() % hotLength);
      undo.push(im.write(at, Buffer.from([next() & 0xff])));
      flipped.push(at);
    }
  } else if (mode < 85) {
    // A field set to an edge value: 0, 1, all ones, the sign bit, or noise, 2 to 8 bytes wide.
    const width = [2, 4, 8][next() % 3]!;
    const at = hotStart + ((next() % hotLength) & ~(width - 1));
    const edge = [0x00, 0x01, 0xff, 0x80, next() & 0xff][next() % 5]!;
    const b = Buffer.alloc(width, edge === 0x01 ? 0 : edge);
    if (edge === 0x01) b[0] = 1;
    if (edge === 0x80) b.fill(0, 0, width - 1);
    undo.push(im.write(at, b));
    flipped.push(at);
  } else if (mode < 96) {
    const chunks = im.allocatedChunks;
    const flips = 1 + (next() % 4);
    for (let i = 0; i < flips && chunks.length > 0; i++) {
      const at = chunks[next() % chunks.length]! * CHUNK + (next() % CHUNK);
      undo.push(im.write(at, Buffer.from([next() & 0xff])));
      flipped.push(at);
    }
  } else {
    sizeBytes = next() % im.sizeBytes;
  }
  if (img.spec.fixups.length > 0 && next() % 2 === 0) applyFixups(img, flipped, undo);

  try {
    const source = new SparseSource(im, sizeBytes, img.spec.name);
    let disk: CaseResult['disk'];
    try {
      const map = await mapDisk(source);
      if (!DiskLayoutSchema.safeParse(map.layout).success) throw new FuzzFailure('mapDisk returned a layout that breaks its schema');
      checkExtents('mapDisk', map.validExtents, sizeBytes);
      const volumes = normalizeExtents(map.layout.volumes.map((v) => ({ startBytes: v.startBytes, lengthBytes: v.sizeBytes })));
      const outside = complementExtents(volumes, sizeBytes);
      if (totalBytes(intersectExtents(map.validExtents, outside)) !== totalBytes(outside)) throw new FuzzFailure('mapDisk dropped bytes outside every volume');
      disk = map.layout.warnings.length > 0 ? 'warned' : 'mapped';
    } catch (err) {
      if (err instanceof FuzzFailure) throw err;
      if (!isStrataError(err) || err.code !== 'InvalidInput') throw err;
      disk = 'refused';
    }
    let reader: CaseResult['reader'];
    try {
      if (img.spec.reader === 'partition-table') {
        const table = await readPartitionTable(source);
        for (const p of table.partitions) {
          if (p.startBytes < 0 || p.sizeBytes <= 0 || p.startBytes + p.sizeBytes > sizeBytes) throw new FuzzFailure(`partition ${p.index} lies outside the disk`);
        }
      } else {
        const map = await READERS[img.spec.reader](source, 0, sizeBytes);
        checkExtents(img.spec.reader, map.extents, sizeBytes);
        if (map.usedBytes !== totalBytes(map.extents)) throw new FuzzFailure(`${img.spec.reader} reports usedBytes unlike its extents`);
      }
      reader = 'mapped';
    } catch (err) {
      if (err instanceof FuzzFailure) throw err;
      // A reader may also refuse what it does not handle (Unsupported); only Internal is a finding.
      if (!isStrataError(err) || err.code === 'Internal') throw err;
      reader = 'refused';
    }
    return { image: img.spec.name, disk, reader };
  } finally {
    for (const [at, bytes] of undo.reverse()) im.write(at, bytes);
  }
}
