// Bit operations on one-bit-per-block bitmaps (LSB first within each byte, as extents.ts reads them),
// shared by the change map's bitmap regions and its whole-device fallback. Bit numbers may pass 2^31
// on large devices, so indices use arithmetic, not 32-bit shifts.

const POPCOUNT = new Uint8Array(256);
for (let i = 1; i < 256; i++) POPCOUNT[i] = (i & 1) + POPCOUNT[i >> 1]!;

/** Sets bits [from, to) and returns how many were clear before. */
export function setBits(bitmap: Uint8Array, from: number, to: number): number {
  let added = 0;
  let i = from;
  const headEnd = Math.min(to, Math.ceil(from / 8) * 8);
  for (; i < headEnd; i++) added += setOne(bitmap, i);
  // Whole bytes in the middle: a huge range costs one pass over its bytes, not one step per bit.
  const wholeEnd = Math.floor(to / 8) * 8;
  for (let byteIndex = i / 8; i < wholeEnd; i += 8, byteIndex++) {
    const byte = bitmap[byteIndex]!;
    if (byte !== 0xff) {
      added += 8 - POPCOUNT[byte]!;
      bitmap[byteIndex] = 0xff;
    }
  }
  for (; i < to; i++) added += setOne(bitmap, i);
  return added;
}

function setOne(bitmap: Uint8Array, bit: number): number {
  const byteIndex = Math.floor(bit / 8);
  const mask = 1 << bit % 8;
  if ((bitmap[byteIndex]! & mask) !== 0) return 0;
  bitmap[byteIndex] = bitmap[byteIndex]! | mask;
  return 1;
}

export function testBit(bitmap: Uint8Array, bit: number): boolean {
  return ((bitmap[Math.floor(bit / 8)]! >> bit % 8) & 1) === 1;
}

/** Runs of set bits among the first bitCount, as [base + start, base + end) pairs in ascending order. */
export function* bitRuns(bitmap: Uint8Array, bitCount: number, base: number): Generator<[number, number]> {
  let runStart = -1;
  let i = 0;
  while (i < bitCount) {
    const byte = bitmap[Math.floor(i / 8)]!;
    if (i % 8 === 0 && i + 8 <= bitCount && (byte === 0 || byte === 0xff)) {
      if (byte === 0xff) {
        if (runStart < 0) runStart = i;
      } else if (runStart >= 0) {
        yield [base + runStart, base + i];
        runStart = -1;
      }
      i += 8;
      continue;
    }
    const set = ((byte >> i % 8) & 1) === 1;
    if (set && runStart < 0) runStart = i;
    else if (!set && runStart >= 0) {
      yield [base + runStart, base + i];
      runStart = -1;
    }
    i++;
  }
  if (runStart >= 0) yield [base + runStart, base + bitCount];
}
