// CRC-32C (Castagnoli, reflected, polynomial 0x82F63B78), as XFS v5 metadata carries it.
// Table-driven; the XFS reader checks a few blocks per allocation group.

import { CRC32C_TABLE, crcUpdate } from './crc.js';

/**
 * CRC-32C of data as an unsigned 32-bit number, with the four bytes at skipOffset read as zeros
 * (where the checksum itself is stored).
 */
export function crc32c(data: Uint8Array, skipOffset?: number): number {
  if (skipOffset === undefined) return (crcUpdate(CRC32C_TABLE, 0xffffffff, data) ^ 0xffffffff) >>> 0;
  let c = crcUpdate(CRC32C_TABLE, 0xffffffff, data.subarray(0, skipOffset));
  c = crcUpdate(CRC32C_TABLE, c, new Uint8Array(Math.max(0, Math.min(4, data.length - skipOffset))));
  c = crcUpdate(CRC32C_TABLE, c, data.subarray(skipOffset + 4));
  return (c ^ 0xffffffff) >>> 0;
}
