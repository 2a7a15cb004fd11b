import { describe, expect, it } from 'vitest';
import { buildExtentIndex } from './coverage.js';
import { DEFAULT_PALETTE, packPalette, packRgb, paintGrid, PaintScratch, rampIndex } from './paint.js';
import type { GridMetrics } from './viewport.js';

describe('disk map painting', () => {
  // 4 columns of 4 px cells (3 px + 1 px gap), 2 rows, one block per cell.
  const m: GridMetrics = { sizeBytes: 7 * 4096, blockSize: 4096, widthPx: 16, heightPx: 8, cellPx: 4 };
  const colors = packPalette(DEFAULT_PALETTE);
  const at = (pixels: Uint32Array, x: number, y: number) => pixels[y * 16 + x];

  it('colours free, partly used, used and changed cells, and leaves gaps and the tail as background', () => {
    const pixels = new Uint32Array(16 * 8);
    const used = buildExtentIndex([
      [4096, 4096],
      [2 * 4096, 1024],
      [4 * 4096, 3 * 4096],
    ]);
    const changed = buildExtentIndex([[5 * 4096, 4096]]);
    const cells = paintGrid({ pixels, width: 16, height: 8, scale: 1 }, m, { level: 0, scrollPx: 0 }, { used, changed, snapshot: null }, colors, new PaintScratch());
    expect(cells).toBe(7);
    expect(at(pixels, 0, 0)).toBe(colors.free);
    expect(at(pixels, 4, 0)).toBe(colors.used[255]);
    expect(at(pixels, 8, 0)).toBe(colors.used[rampIndex(0.25)]);
    expect(at(pixels, 3, 0)).toBe(colors.background); // the gap column
    expect(at(pixels, 1, 3)).toBe(colors.background); // the gap row
    expect(at(pixels, 4, 4)).toBe(colors.changed[255]);
    expect(at(pixels, 13, 4)).toBe(colors.background); // past the disk's 7th cell
  });

  it('marks snapshot cells with a stripe at the cell’s foot', () => {
    const pixels = new Uint32Array(16 * 8);
    const used = buildExtentIndex([[0, 7 * 4096]]);
    const snapshot = buildExtentIndex([[0, 4096]]);
    paintGrid({ pixels, width: 16, height: 8, scale: 1 }, m, { level: 0, scrollPx: 0 }, { used, changed: null, snapshot }, colors, new PaintScratch());
    expect(at(pixels, 0, 0)).toBe(colors.used[255]);
    expect(at(pixels, 0, 2)).toBe(colors.snapshot);
    expect(at(pixels, 4, 2)).toBe(colors.used[255]);
  });

  it('packs colours in ImageData byte order', () => {
    const word = packRgb([1, 2, 3]);
    expect(Array.from(new Uint8Array(new Uint32Array([word]).buffer))).toEqual([1, 2, 3, 255]);
  });

  it('draws any use at all in a visible shade', () => {
    expect(rampIndex(0)).toBe(-1);
    expect(rampIndex(1e-9)).toBe(0);
    expect(rampIndex(1)).toBe(255);
  });
});
