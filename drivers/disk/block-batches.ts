// Reads many scattered metadata blocks (bitmaps, descriptor blocks) with few large reads: blocks
// are sorted and neighbours merged into runs, so a flex_bg filesystem's bitmaps come in one read.
import type { BlockSource } from '../../agent-core/block-source.js';
import { StrataError } from '../../agent-core/api/errors.js';

export interface BatchOptions {
  /** Byte offset of block 0 on the source. */
  readonly baseBytes: number;
  readonly blockSizeBytes: number;
  /** Blocks between two wanted ones that may be read and thrown away rather than split the run. */
  readonly maxGapBlocks?: number;
  readonly maxRunBytes?: number;
}

/**
 * Calls onBlock(block, data) for every distinct block in blocks, in ascending order. data is valid
 * only during the call: the next read may reuse its memory.
 */
export async function readBlocksInBatches(
  source: BlockSource,
  blocks: Iterable<number>,
  options: BatchOptions,
  onBlock: (block: number, data: Buffer) => void,
): Promise<void> {
  const { baseBytes, blockSizeBytes } = options;
  const maxGap = options.maxGapBlocks ?? 4;
  const maxRunBlocks = Math.max(1, Math.floor((options.maxRunBytes ?? 4 << 20) / blockSizeBytes));
  const sorted = [...new Set(blocks)].sort((a, b) => a - b);
  let buffer = Buffer.alloc(0);
  let i = 0;
  while (i < sorted.length) {
    const first = sorted[i]!;
    let j = i + 1;
    while (j < sorted.length && sorted[j]! - sorted[j - 1]! <= maxGap + 1 && sorted[j]! - first < maxRunBlocks) j++;
    const last = sorted[j - 1]!;
    const length = (last - first + 1) * blockSizeBytes;
    // One buffer for every run: a 1 TiB ext4's 32 MiB of bitmaps pass through one 4 MiB buffer.
    if (buffer.length < length) buffer = Buffer.alloc(Math.max(length, Math.min(maxRunBlocks * blockSizeBytes, 1 << 20)));
    const got = await source.readInto(buffer, 0, length, baseBytes + first * blockSizeBytes);
    const data = buffer.subarray(0, got);
    if (data.length < length) {
      throw new StrataError('Corrupt', `Blocks ${first}–${last} at offset ${baseBytes} lie past the end of the source (${source.sizeBytes} bytes).`);
    }
    for (let k = i; k < j; k++) {
      const off = (sorted[k]! - first) * blockSizeBytes;
      onBlock(sorted[k]!, data.subarray(off, off + blockSizeBytes));
    }
    i = j;
  }
}
