// Table-driven reflected CRCs, the one mechanism behind GPT's CRC-32, XFS's CRC-32C and ext4's
// descriptor checksums (CRC-16/ARC and raw CRC-32C). Metadata checks read a few kilobytes per
// disk, so a byte-at-a-time table is fast enough.

/** The 256-entry table of a reflected CRC with the given (reflected) polynomial. */
export function reflectedCrcTable(reflectedPoly: number): Uint32Array {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let bit = 0; bit < 8; bit++) c = c & 1 ? (reflectedPoly ^ (c >>> 1)) >>> 0 : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
}

/** Feeds data into a running CRC value, without pre- or post-inversion. */
export function crcUpdate(table: Uint32Array, crc: number, data: Uint8Array): number {
  let c = crc >>> 0;
  for (let i = 0; i < data.length; i++) c = (table[(c ^ data[i]!) & 0xff]! ^ (c >>> 8)) >>> 0;
  return c;
}

export const CRC32_TABLE = reflectedCrcTable(0xedb88320);
export const CRC32C_TABLE = reflectedCrcTable(0x82f63b78);
export const CRC16_ARC_TABLE = reflectedCrcTable(0xa001);
