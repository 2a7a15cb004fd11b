// A LUKS volume is opaque by design: without its key nothing says which encrypted blocks are free,
// so every byte is kept. The header is read only to say how large it is.
import type { BlockSource } from '../../agent-core/block-source.js';
import { StrataError } from '../../agent-core/api/errors.js';
import { LUKS } from './disk-magic.js';
import { finishUsedMap, volumeBytesOf, type UsedMap } from './used-map.js';

export interface LuksHeader {
  readonly version: 1 | 2;
  /** Bytes before the encrypted payload (header, key slots); null when the header does not say. */
  readonly headerBytes: number | null;
}

/** LUKS2 keeps the payload's offset in the JSON area: segments["0"].offset, a decimal string. */
function luks2PayloadOffset(json: string): number | null {
  try {
    const parsed = JSON.parse(json) as { segments?: Record<string, { offset?: unknown }> };
    const offsets = Object.values(parsed.segments ?? {}).map((s) => Number(s.offset));
    const valid = offsets.filter((o) => Number.isSafeInteger(o) && o > 0);
    return valid.length > 0 ? Math.min(...valid) : null;
  } catch {
    return null;
  }
}

/** Reads the LUKS header at the start of head; null when there is no LUKS magic. */
export function parseLuksHeader(head: Buffer): LuksHeader | null {
  if (head.length < 512 || !head.subarray(0, LUKS.magic.length).equals(LUKS.magic)) return null;
  const version = head.readUInt16BE(LUKS.versionOffset);
  if (version === 1) {
    const payloadSectors = head.readUInt32BE(LUKS.luks1PayloadOffset);
    return { version: 1, headerBytes: payloadSectors > 0 ? payloadSectors * 512 : null };
  }
  if (version !== 2) return null;
  const hdrSize = Number(head.readBigUInt64BE(LUKS.luks2HeaderSize));
  if (hdrSize <= LUKS.luks2BinaryBytes || hdrSize > head.length) return { version: 2, headerBytes: null };
  const jsonArea = head.subarray(LUKS.luks2BinaryBytes, hdrSize);
  const end = jsonArea.indexOf(0);
  return { version: 2, headerBytes: luks2PayloadOffset(jsonArea.subarray(0, end < 0 ? jsonArea.length : end).toString('utf8')) };
}

/** LUKS2 JSON areas are at most 4 MiB − 4 KiB; the binary header plus that is all that is read. */
const LUKS_HEAD_BYTES = 4 << 20;

/** Keeps the whole LUKS volume, with a warning that names the version and the header size. */
export async function readLuksUsedExtents(source: BlockSource, startBytes: number, sizeBytes: number): Promise<UsedMap> {
  const volumeBytes = volumeBytesOf(source.sizeBytes, startBytes, sizeBytes);
  const head = Buffer.from(await source.read(startBytes, Math.min(LUKS_HEAD_BYTES, volumeBytes)));
  const h = parseLuksHeader(head);
  if (!h) throw new StrataError('Corrupt', `The LUKS header at offset ${startBytes} is damaged or of an unknown version.`);
  const header = h.headerBytes === null ? 'a header of unknown size' : `a ${h.headerBytes}-byte header`;
  const warning = `The LUKS${h.version} volume at offset ${startBytes} is encrypted (${header}); Strata cannot tell its free blocks, so the whole volume is kept.`;
  return finishUsedMap([{ startBytes: 0, lengthBytes: volumeBytes }], startBytes, volumeBytes, volumeBytes, [warning]);
}
