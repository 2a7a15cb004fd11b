// The geometry of the disk-map grid: the disk laid out row by row in cells of blockSize · 2^level
// bytes, a vertical scroll offset, and the maths of zooming about a point and hit-testing a pixel.

export interface GridMetrics {
  sizeBytes: number;
  blockSize: number;
  /** CSS pixels of the drawing area. */
  widthPx: number;
  heightPx: number;
  /** CSS pixels per cell side, gap included. */
  cellPx: number;
}

export interface ViewState {
  /** 0 = one block per cell; each level doubles the bytes per cell. */
  level: number;
  /** CSS pixels scrolled from the top of row 0. */
  scrollPx: number;
}

export function columns(m: GridMetrics): number {
  return Math.max(1, Math.floor(m.widthPx / m.cellPx));
}

/** Whole rows that fit in the drawing area (at least one). */
export function rowsInView(m: GridMetrics): number {
  return Math.max(1, Math.floor(m.heightPx / m.cellPx));
}

export function bytesPerCell(m: GridMetrics, level: number): number {
  return m.blockSize * 2 ** level;
}

export function totalCells(m: GridMetrics, level: number): number {
  return Math.ceil(m.sizeBytes / bytesPerCell(m, level));
}

export function totalRows(m: GridMetrics, level: number): number {
  return Math.ceil(totalCells(m, level) / columns(m));
}

/** The finest level at which the whole disk fits in the view: the zoomed-out limit. */
export function fitLevel(m: GridMetrics): number {
  const capacity = columns(m) * rowsInView(m);
  let level = 0;
  // At most ~50 steps: every step halves the cell count.
  while (totalCells(m, level) > capacity && level < 60) level++;
  return level;
}

export function maxScrollPx(m: GridMetrics, level: number): number {
  return Math.max(0, totalRows(m, level) * m.cellPx - m.heightPx);
}

export function clampView(m: GridMetrics, view: ViewState): ViewState {
  const level = Math.min(Math.max(0, Math.round(view.level)), fitLevel(m));
  const scrollPx = Math.min(Math.max(0, view.scrollPx), maxScrollPx(m, level));
  return { level, scrollPx };
}

export function resetView(m: GridMetrics): ViewState {
  return { level: fitLevel(m), scrollPx: 0 };
}

/** The cell holding a byte at a level. */
export function cellOfByte(m: GridMetrics, level: number, offsetBytes: number): number {
  return Math.floor(offsetBytes / bytesPerCell(m, level));
}

/**
 * Changes the level keeping the row that holds `anchorBytes` at `anchorYPx` (CSS px from the top of
 * the drawing area), so the byte under the pointer or the cursor stays where the eye is.
 */
export function zoomAbout(m: GridMetrics, view: ViewState, level: number, anchorBytes: number, anchorYPx: number): ViewState {
  const target = Math.min(Math.max(0, level), fitLevel(m));
  const row = Math.floor(cellOfByte(m, target, anchorBytes) / columns(m));
  return clampView(m, { level: target, scrollPx: row * m.cellPx + m.cellPx / 2 - anchorYPx });
}

/** The cell under a point in CSS px, or null outside the disk. */
export function cellAtPoint(m: GridMetrics, view: ViewState, xPx: number, yPx: number): number | null {
  const cols = columns(m);
  const col = Math.floor(xPx / m.cellPx);
  if (xPx < 0 || yPx < 0 || col >= cols || yPx >= m.heightPx) return null;
  const row = Math.floor((yPx + view.scrollPx) / m.cellPx);
  const cell = row * cols + col;
  return cell < totalCells(m, view.level) ? cell : null;
}

/** [start, end) bytes of a cell, clipped at the disk's end. */
export function cellRange(m: GridMetrics, level: number, cell: number): [startBytes: number, endBytes: number] {
  const size = bytesPerCell(m, level);
  return [cell * size, Math.min((cell + 1) * size, m.sizeBytes)];
}

/** The byte range the view shows, whole rows, clipped at the disk's end. */
export function visibleRange(m: GridMetrics, view: ViewState): [startBytes: number, endBytes: number] {
  const cols = columns(m);
  const firstRow = Math.floor(view.scrollPx / m.cellPx);
  const lastRow = Math.ceil((view.scrollPx + m.heightPx) / m.cellPx);
  const size = bytesPerCell(m, view.level);
  return [Math.min(firstRow * cols * size, m.sizeBytes), Math.min(lastRow * cols * size, m.sizeBytes)];
}

/** Scrolls the least amount that brings a cell's row fully into view. */
export function scrollToCell(m: GridMetrics, view: ViewState, cell: number): ViewState {
  const row = Math.floor(cell / columns(m));
  const top = row * m.cellPx;
  let scrollPx = view.scrollPx;
  if (top < scrollPx) scrollPx = top;
  else if (top + m.cellPx > scrollPx + m.heightPx) scrollPx = top + m.cellPx - m.heightPx;
  return clampView(m, { level: view.level, scrollPx });
}

/** Scrolls so a byte offset's row is at the top of the view. */
export function scrollToByte(m: GridMetrics, view: ViewState, offsetBytes: number): ViewState {
  const row = Math.floor(cellOfByte(m, view.level, offsetBytes) / columns(m));
  return clampView(m, { level: view.level, scrollPx: row * m.cellPx });
}
