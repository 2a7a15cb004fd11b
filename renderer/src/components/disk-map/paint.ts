// Paints the disk-map grid into a 32-bit pixel buffer (an ImageData's): one coverage pass per layer
// over the visible cells, then a span fill per cell row. No DOM here, so tests can check pixels.
import { fillCellCoverage, type ExtentIndex } from './coverage.js';
import { bytesPerCell, columns, totalCells, type GridMetrics, type ViewState } from './viewport.js';

export type Rgb = readonly [number, number, number];

export interface Palette {
  background: Rgb;
  free: Rgb;
  /** The used ramp: a sliver of use … a full cell. */
  usedLow: Rgb;
  usedHigh: Rgb;
  changedLow: Rgb;
  changedHigh: Rgb;
  snapshot: Rgb;
  cursor: Rgb;
  hover: Rgb;
}

/** Tailwind's slate, sky (the accent), amber and violet, as the legend names them. */
export const DEFAULT_PALETTE: Palette = {
  background: [255, 255, 255],
  free: [226, 232, 240], // slate-200
  usedLow: [125, 211, 252], // sky-300
  usedHigh: [3, 105, 161], // sky-700
  changedLow: [253, 230, 138], // amber-200
  changedHigh: [217, 119, 6], // amber-600
  snapshot: [124, 58, 237], // violet-600
  cursor: [15, 23, 42], // slate-900
  hover: [71, 85, 105], // slate-600
};

export interface PaintLayers {
  used: ExtentIndex;
  changed: ExtentIndex | null;
  snapshot: ExtentIndex | null;
}

/** Device pixels: `pixels` is width × height RGBA words; `scale` is device px per CSS px. */
export interface PaintTarget {
  pixels: Uint32Array;
  width: number;
  height: number;
  scale: number;
}

export interface Highlight {
  hover: number | null;
  cursor: number | null;
}

/** RGBA bytes as one little-endian word, the order ImageData's bytes take in a Uint32Array. */
export function packRgb([r, g, b]: Rgb): number {
  return ((255 << 24) | (b << 16) | (g << 8) | r) >>> 0;
}

const RAMP_STEPS = 256;

function ramp(low: Rgb, high: Rgb): Uint32Array {
  const out = new Uint32Array(RAMP_STEPS);
  for (let i = 0; i < RAMP_STEPS; i++) {
    const t = i / (RAMP_STEPS - 1);
    out[i] = packRgb([
      Math.round(low[0] + (high[0] - low[0]) * t),
      Math.round(low[1] + (high[1] - low[1]) * t),
      Math.round(low[2] + (high[2] - low[2]) * t),
    ]);
  }
  return out;
}

/** Colour tables built once per palette. */
export interface PackedPalette {
  background: number;
  free: number;
  used: Uint32Array;
  changed: Uint32Array;
  snapshot: number;
  cursor: number;
  hover: number;
}

export function packPalette(p: Palette): PackedPalette {
  return {
    background: packRgb(p.background),
    free: packRgb(p.free),
    used: ramp(p.usedLow, p.usedHigh),
    changed: ramp(p.changedLow, p.changedHigh),
    snapshot: packRgb(p.snapshot),
    cursor: packRgb(p.cursor),
    hover: packRgb(p.hover),
  };
}

/** Which ramp step a fraction takes; any use at all is at least the first (visible) step. */
export function rampIndex(fraction: number): number {
  if (!(fraction > 0)) return -1;
  return Math.min(RAMP_STEPS - 1, Math.floor(fraction * (RAMP_STEPS - 1)));
}

/** Per-frame buffers, kept between frames so painting allocates nothing. */
export class PaintScratch {
  used = new Float32Array(0);
  changed = new Float32Array(0);
  snapshot = new Float32Array(0);
  color = new Uint32Array(0);
  ensure(cells: number): void {
    if (this.used.length >= cells) return;
    const size = Math.max(cells, this.used.length * 2);
    this.used = new Float32Array(size);
    this.changed = new Float32Array(size);
    this.snapshot = new Float32Array(size);
    this.color = new Uint32Array(size);
  }
}

function fillRect(t: PaintTarget, x0: number, y0: number, x1: number, y1: number, color: number): void {
  const xa = Math.max(0, x0);
  const xb = Math.min(t.width, x1);
  if (xb <= xa) return;
  const ya = Math.max(0, y0);
  const yb = Math.min(t.height, y1);
  for (let y = ya; y < yb; y++) t.pixels.fill(color, y * t.width + xa, y * t.width + xb);
}

function outline(t: PaintTarget, x0: number, y0: number, x1: number, y1: number, width: number, color: number): void {
  fillRect(t, x0, y0, x1, y0 + width, color);
  fillRect(t, x0, y1 - width, x1, y1, color);
  fillRect(t, x0, y0, x0 + width, y1, color);
  fillRect(t, x1 - width, y0, x1, y1, color);
}

/** Gap between cells in CSS px: none when cells are too small to spare one. */
export function cellGapPx(cellPx: number): number {
  return cellPx >= 4 ? 1 : 0;
}

/** The cells a view shows: `cells` of `bytesPerCell` from `firstCell`, the first of row `firstRow`. */
export interface CellWindow {
  firstRow: number;
  firstCell: number;
  cells: number;
  bytesPerCell: number;
  firstByte: number;
}

export function cellWindow(m: GridMetrics, view: ViewState): CellWindow {
  const cols = columns(m);
  const firstRow = Math.floor(view.scrollPx / m.cellPx);
  const lastRow = Math.ceil((view.scrollPx + m.heightPx) / m.cellPx);
  const firstCell = firstRow * cols;
  const cells = Math.max(0, Math.min((lastRow - firstRow) * cols, totalCells(m, view.level) - firstCell));
  const size = bytesPerCell(m, view.level);
  return { firstRow, firstCell, cells, bytesPerCell: size, firstByte: firstCell * size };
}

/**
 * Paints the visible cells; returns how many cells it drew. `usedFilled`: scratch.used holds the
 * used layer's fractions for this view's cellWindow already (layers.used is then not read).
 */
export function paintGrid(
  target: PaintTarget,
  m: GridMetrics,
  view: ViewState,
  layers: PaintLayers,
  colors: PackedPalette,
  scratch: PaintScratch,
  highlight: Highlight = { hover: null, cursor: null },
  usedFilled = false,
): number {
  target.pixels.fill(colors.background);
  const cols = columns(m);
  const { firstRow, firstCell, cells, bytesPerCell: size, firstByte } = cellWindow(m, view);
  if (cells === 0) return 0;
  scratch.ensure(cells);
  if (!usedFilled) fillCellCoverage(layers.used, firstByte, size, cells, m.sizeBytes, scratch.used);
  if (layers.changed) fillCellCoverage(layers.changed, firstByte, size, cells, m.sizeBytes, scratch.changed);
  if (layers.snapshot) fillCellCoverage(layers.snapshot, firstByte, size, cells, m.sizeBytes, scratch.snapshot);

  const s = target.scale;
  const gap = cellGapPx(m.cellPx);
  const inner = m.cellPx - gap;
  const stripe = Math.max(1, Math.round((inner * s) / 4));
  const xs = new Int32Array(cols);
  const xe = new Int32Array(cols);
  for (let c = 0; c < cols; c++) {
    xs[c] = Math.min(target.width, Math.round(c * m.cellPx * s));
    xe[c] = Math.min(target.width, Math.round((c * m.cellPx + inner) * s));
  }
  const color = scratch.color;
  for (let i = 0; i < cells; i++) {
    const changedStep = layers.changed ? rampIndex(scratch.changed[i]!) : -1;
    if (changedStep >= 0) color[i] = colors.changed[changedStep]!;
    else {
      const usedStep = rampIndex(scratch.used[i]!);
      color[i] = usedStep >= 0 ? colors.used[usedStep]! : colors.free;
    }
  }
  // Row by row: paint one pixel line of the cell row, copy it down the row's height, then the
  // snapshot stripe's line likewise; a few span fills per cell instead of one per pixel line.
  const { pixels, width } = target;
  const snap = layers.snapshot ? scratch.snapshot : null;
  const paintLine = (y: number, rowFirst: number, rowCells: number, withStripe: boolean) => {
    const base = y * width;
    for (let c = 0; c < rowCells; c++) {
      const i = rowFirst + c;
      const value = withStripe && snap && snap[i]! > 0 ? colors.snapshot : color[i]!;
      pixels.fill(value, base + xs[c]!, base + xe[c]!);
    }
  };
  const copyLine = (from: number, to: number) => pixels.copyWithin(to * width, from * width, from * width + width);
  for (let rowFirst = 0; rowFirst < cells; rowFirst += cols) {
    const row = firstRow + rowFirst / cols;
    const rowCells = Math.min(cols, cells - rowFirst);
    const y0 = Math.round((row * m.cellPx - view.scrollPx) * s);
    const y1 = Math.round((row * m.cellPx + inner - view.scrollPx) * s);
    const ya = Math.max(0, y0);
    const yb = Math.min(target.height, y1);
    if (yb <= ya) continue;
    const ys = snap ? Math.max(ya, y1 - stripe) : yb;
    if (ys > ya) {
      paintLine(ya, rowFirst, rowCells, false);
      for (let y = ya + 1; y < ys; y++) copyLine(ya, y);
    }
    if (yb > ys) {
      paintLine(ys, rowFirst, rowCells, true);
      for (let y = ys + 1; y < yb; y++) copyLine(ys, y);
    }
  }
  const ring = Math.max(1, Math.round(s * (m.cellPx >= 6 ? 2 : 1)));
  for (const [cell, ringColor] of [
    [highlight.hover, colors.hover],
    [highlight.cursor, colors.cursor],
  ] as const) {
    if (cell === null || cell < firstCell || cell >= firstCell + cells) continue;
    const row = Math.floor(cell / cols);
    const col = cell % cols;
    const y0 = Math.round((row * m.cellPx - view.scrollPx) * s);
    const y1 = Math.round((row * m.cellPx + inner - view.scrollPx) * s);
    outline(target, xs[col]!, y0, xe[col]!, y1, ring, ringColor);
  }
  return cells;
}
