import { describe, expect, it } from 'vitest';
import { cellAtPoint, cellRange, clampView, columns, fitLevel, maxScrollPx, resetView, scrollToCell, totalCells, visibleRange, zoomAbout, type GridMetrics } from './viewport.js';

const TiB = 1024 ** 4;
// 150 columns × 50 rows of 8 px cells.
const m: GridMetrics = { sizeBytes: 2 * TiB, blockSize: 4096, widthPx: 1200, heightPx: 400, cellPx: 8 };

describe('disk map viewport', () => {
  it('fits the whole disk at the finest level that holds it', () => {
    expect(columns(m)).toBe(150);
    const level = fitLevel(m);
    expect(totalCells(m, level)).toBeLessThanOrEqual(150 * 50);
    expect(totalCells(m, level - 1)).toBeGreaterThan(150 * 50);
    expect(resetView(m)).toEqual({ level, scrollPx: 0 });
    expect(maxScrollPx(m, level)).toBe(0);
  });

  it('shows one block per cell at level 0 and clips the last cell at the disk end', () => {
    const small: GridMetrics = { ...m, sizeBytes: 10 * 4096 + 100 };
    expect(fitLevel(small)).toBe(0);
    expect(totalCells(small, 0)).toBe(11);
    expect(cellRange(small, 0, 10)).toEqual([40960, 41060]);
  });

  it('keeps the anchored byte’s row under the pointer when zooming in', () => {
    const start = resetView(m);
    const anchor = 1.234 * TiB;
    const zoomed = zoomAbout(m, start, 0, anchor, 200);
    expect(zoomed.level).toBe(0);
    const cell = cellAtPoint(m, zoomed, 0, 200)!;
    const [s] = cellRange(m, 0, cell);
    // Same row: within one row's bytes of the anchor.
    expect(Math.abs(s - anchor)).toBeLessThan(150 * 4096);
  });

  it('never zooms past single blocks nor out past the whole disk, nor scrolls off the disk', () => {
    expect(clampView(m, { level: -3, scrollPx: -50 })).toEqual({ level: 0, scrollPx: 0 });
    expect(clampView(m, { level: 99, scrollPx: 0 }).level).toBe(fitLevel(m));
    expect(clampView(m, { level: 0, scrollPx: 1e18 }).scrollPx).toBe(maxScrollPx(m, 0));
  });

  it('hit-tests points to cells and nothing outside the grid', () => {
    const view = { level: 0, scrollPx: 16 };
    expect(cellAtPoint(m, view, 9, 1)).toBe(2 * 150 + 1);
    expect(cellAtPoint(m, view, 1201, 1)).toBeNull();
    expect(cellAtPoint(m, view, -1, 1)).toBeNull();
  });

  it('scrolls just enough to bring a cell into view and reports the range in sight', () => {
    const view = scrollToCell(m, { level: 0, scrollPx: 0 }, 150 * 100);
    expect(view.scrollPx).toBe(101 * 8 - 400);
    const [start, end] = visibleRange(m, view);
    expect(start).toBe(51 * 150 * 4096);
    expect(end).toBe(101 * 150 * 4096);
  });
});
