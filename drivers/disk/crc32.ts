// CRC-32 as GPT headers and entry arrays carry it (IEEE 802.3, reflected, polynomial 0xEDB88320).
// Small and table-driven; GPT checks a few kilobytes per disk, so speed does not matter here.

import { CRC32_TABLE, crcUpdate } from './crc.js';

/** CRC-32 of data, as an unsigned 32-bit number. */
export function crc32(data: Uint8Array): number {
  return (crcUpdate(CRC32_TABLE, 0xffffffff, data) ^ 0xffffffff) >>> 0;
}
