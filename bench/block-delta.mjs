// Counts the 4 KiB blocks that differ between two images of the same size: what a block-level
// incremental must at least store, file data plus the ext4 metadata and journal the change touched.
import { closeSync, openSync, readSync } from 'node:fs';

const BLOCK_BYTES = 4096;
const WINDOW_BYTES = 8 * 1024 * 1024;

export function differingBlockBytes(aPath, bPath) {
  const a = openSync(aPath, 'r');
  const b = openSync(bPath, 'r');
  const bufA = Buffer.alloc(WINDOW_BYTES);
  const bufB = Buffer.alloc(WINDOW_BYTES);
  let differing = 0;
  try {
    for (let offsetBytes = 0; ; offsetBytes += WINDOW_BYTES) {
      const n = readSync(a, bufA, 0, WINDOW_BYTES, offsetBytes);
      const m = readSync(b, bufB, 0, WINDOW_BYTES, offsetBytes);
      if (n !== m) throw new Error(`images differ in size: ${aPath} and ${bPath}`);
      if (n === 0) break;
      for (let i = 0; i < n; i += BLOCK_BYTES) {
        const end = Math.min(i + BLOCK_BYTES, n);
        if (bufA.compare(bufB, i, end, i, end) !== 0) differing++;
      }
    }
  } finally {
    closeSync(a);
    closeSync(b);
  }
  return differing * BLOCK_BYTES;
}
