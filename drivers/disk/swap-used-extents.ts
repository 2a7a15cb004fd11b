// Which bytes of a Linux swap volume matter: only its first page (the header and the bad-page list).
// Swapped-out pages are worthless once the system that wrote them has stopped, so they are skipped.
import type { BlockSource } from '../../agent-core/block-source.js';
import { StrataError } from '../../agent-core/api/errors.js';
import { SWAP } from './disk-magic.js';
import { finishUsedMap, volumeBytesOf, type UsedMap } from './used-map.js';

/**
 * Maps a swap volume: its header page is used, the swap area behind it is not, and anything past
 * the area's last page (a volume larger than the swap) is kept.
 */
export async function readSwapUsedExtents(source: BlockSource, startBytes: number, sizeBytes: number): Promise<UsedMap> {
  const volumeBytes = volumeBytesOf(source.sizeBytes, startBytes, sizeBytes);
  const maxPage = SWAP.pageSizes[SWAP.pageSizes.length - 1]!;
  const head = Buffer.from(await source.read(startBytes, Math.min(maxPage, volumeBytes)));
  const pageBytes = SWAP.pageSizes.find(
    (page) => page <= head.length && SWAP.signatures.some((s) => head.subarray(page - SWAP.signatureBytes, page).equals(s)),
  );
  if (pageBytes === undefined) throw new StrataError('Corrupt', `There is no swap signature at offset ${startBytes}.`);
  // The header is in the writer's byte order: version 1 tells which.
  const le = head.readUInt32LE(SWAP.versionOffset) === 1;
  const be = head.readUInt32BE(SWAP.versionOffset) === 1;
  let areaBytes = volumeBytes;
  if (le || be) {
    const lastPage = le ? head.readUInt32LE(SWAP.lastPageOffset) : head.readUInt32BE(SWAP.lastPageOffset);
    areaBytes = Math.min(volumeBytes, (lastPage + 1) * pageBytes);
  }
  const header = { startBytes: 0, lengthBytes: Math.min(pageBytes, volumeBytes) };
  return finishUsedMap([header], startBytes, volumeBytes, Math.max(areaBytes, header.lengthBytes), []);
}
