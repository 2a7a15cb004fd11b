// Sanity checks shared by the superblock and boot-sector parsers: a field that must be a power of
// two within bounds (sector and block sizes) rejects garbage before it drives any arithmetic.

export function isPowerOfTwoIn(n: number, min: number, max: number): boolean {
  return n >= min && n <= max && (n & (n - 1)) === 0;
}
