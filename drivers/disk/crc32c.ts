// CRC-32C (Castagnoli, reflected, polynomial 0x82F63B78), as XFS v5 metadata carries it.
// Table-driven; the XFS reader checks a few blocks per allocation group.

const TABLE = buildTable();

function buildTable(): Uint32Array {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let bit = 0; bit < 8; bit++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
}

/**
 * CRC-32C of data as an unsigned 32-bit number, with the four bytes at skipOffset read as zeros
 * (where the checksum itself is stored).
 */
export function crc32c(data: Uint8Array, skipOffset?: number): number {
  const skipFrom = skipOffset ?? data.length;
  let c = 0xffffffff;
  for (let i = 0; i < data.length; i++) {
    const byte = i >= skipFrom && i < skipFrom + 4 ? 0 : data[i]!;
    c = TABLE[(c ^ byte) & 0xff]! ^ (c >>> 8);
  }
  return (c ^ 0xffffffff) >>> 0;
}
