// Turning the identifiers and names stored on disk into the strings blkid, sgdisk and users see.

/** A GUID as GPT stores it: the first three fields little-endian, the last two as bytes. */
export function formatGuid(bytes: Uint8Array): string {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, 16);
  const hex = (from: number, to: number): string => b.subarray(from, to).toString('hex');
  return [
    b.readUInt32LE(0).toString(16).padStart(8, '0'),
    b.readUInt16LE(4).toString(16).padStart(4, '0'),
    b.readUInt16LE(6).toString(16).padStart(4, '0'),
    hex(8, 10),
    hex(10, 16),
  ].join('-');
}

/** A UUID stored as 16 bytes in order (ext, xfs, btrfs, swap), lowercase 8-4-4-4-12. */
export function formatUuid(bytes: Uint8Array): string {
  const h = Buffer.from(bytes.buffer, bytes.byteOffset, 16).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** True when every byte is zero: an unset UUID, or an unused GPT entry. */
export function isAllZero(bytes: Uint8Array): boolean {
  for (const b of bytes) if (b !== 0) return false;
  return true;
}

/** A fixed-size, NUL-padded UTF-8 field; null when empty. */
export function readCString(bytes: Uint8Array): string | null {
  let end = bytes.indexOf(0);
  if (end < 0) end = bytes.length;
  const s = Buffer.from(bytes.buffer, bytes.byteOffset, end).toString('utf8');
  return s.length > 0 ? s : null;
}

/** A fixed-size, NUL-padded UTF-16LE field (GPT partition names); null when empty. */
export function readUtf16Name(bytes: Uint8Array): string | null {
  let end = 0;
  while (end + 1 < bytes.length && (bytes[end] !== 0 || bytes[end + 1] !== 0)) end += 2;
  const s = Buffer.from(bytes.buffer, bytes.byteOffset, end).toString('utf16le');
  return s.length > 0 ? s : null;
}
