// The disk map's canvas controller, free of React: owns the view state (zoom level, scroll, cursor,
// hover), turns pointer, wheel and key input into view changes, and repaints on the next animation
// frame only when something changed.
import type { VolumeInfo } from '../../../../agent-core/api/disk-layout.js';
import { buildExtentIndex, coveredBytes, EMPTY_INDEX, fillCellCoverageFromList, isExtentIndex, type ExtentIndex, type ExtentSource } from './coverage.js';
import { cellWindow, DEFAULT_PALETTE, packPalette, paintGrid, PaintScratch, type PackedPalette, type Palette } from './paint.js';
import {
  bytesPerCell,
  cellAtPoint,
  cellOfByte,
  cellRange,
  clampView,
  columns,
  fitLevel,
  resetView,
  rowsInView,
  scrollToByte,
  scrollToCell,
  totalCells,
  visibleRange,
  zoomAbout,
  type GridMetrics,
  type ViewState,
} from './viewport.js';
import { describeCell } from './volumes.js';
import { formatByteRange, formatBytes } from '../format.js';

export interface DiskMapData {
  sizeBytes: number;
  blockSize: number;
  volumes: readonly VolumeInfo[];
  /**
   * The used map: an index built beforehand, or the list itself. A list's first picture is painted
   * straight from the list (fillCellCoverageFromList) and its index is built just after, in a task
   * of its own, or at once when something needs it sooner (a zoom, a hover, an overlay).
   */
  used: ExtentSource;
  changed: ExtentIndex | null;
  snapshot: ExtentIndex | null;
  /** How the status line names the changed overlay ("changed", "differs"). */
  changedName: string;
}

/** What the surrounding UI shows about the view: zoom, the range in sight, the status sentence. */
export interface ViewInfo {
  level: number;
  fitLevel: number;
  bytesPerCell: number;
  visibleStartBytes: number;
  visibleEndBytes: number;
}

export interface PaintStats {
  durationMs: number;
  /** The part of durationMs spent handing the pixels to the canvas. */
  putImageDataMs: number;
  /** Whether the changed or snapshot overlay was in this picture (they may follow the first one). */
  overlays: boolean;
}

export interface DiskMapViewOptions {
  cellPx: number;
  palette?: Palette;
  onStatus(text: string): void;
  onView(info: ViewInfo): void;
  /** Called after each paint; the bench and first-paint marks hang off it. */
  onPaint?(stats: PaintStats): void;
}

/** Wheel delta (in pixels) that makes one zoom level; trackpads send many small deltas. */
const WHEEL_STEP_PX = 60;

export class DiskMapView {
  private data: DiskMapData | null = null;
  /** data.used's index, once there is one. */
  private usedIndex: ExtentIndex | null = null;
  /** data.used has had its picture painted from the list: the next paint uses the index. */
  private usedListPainted = false;
  private indexTimer: ReturnType<typeof setTimeout> | null = null;
  private metrics: GridMetrics = { sizeBytes: 0, blockSize: 4096, widthPx: 0, heightPx: 0, cellPx: 8 };
  private view: ViewState = { level: 0, scrollPx: 0 };
  private scale = 1;
  private image: ImageData | null = null;
  private pixels = new Uint32Array(0);
  private readonly scratch = new PaintScratch();
  private readonly colors: PackedPalette;
  private readonly ctx: CanvasRenderingContext2D | null;
  private frame = 0;
  private paintedOnce = false;
  private hoverPoint: { x: number; y: number } | null = null;
  private cursorByte: number | null = null;
  private focused = false;
  private wheelAccumulator = 0;
  private drag: { pointerId: number; lastY: number } | null = null;
  private readonly touches = new Map<number, { x: number; y: number }>();
  private pinchStart: { distance: number; level: number } | null = null;
  private lastStatus = '';
  private lastViewKey = '';
  private readonly detach: () => void;

  constructor(
    private readonly canvas: HTMLCanvasElement,
    private readonly options: DiskMapViewOptions,
  ) {
    // A CPU-backed canvas: putImageData is then a copy, not an upload to the GPU each frame.
    this.ctx = canvas.getContext('2d', { alpha: false, willReadFrequently: true });
    this.colors = packPalette(options.palette ?? DEFAULT_PALETTE);
    this.metrics.cellPx = options.cellPx;
    this.detach = this.attach();
  }

  destroy(): void {
    this.detach();
    if (this.frame) cancelAnimationFrame(this.frame);
    this.frame = 0;
    this.cancelIndexing();
  }

  setData(data: DiskMapData): void {
    const geometryChanged = !this.data || this.data.sizeBytes !== data.sizeBytes || this.data.blockSize !== data.blockSize;
    if (!this.data || this.data.used !== data.used) {
      this.cancelIndexing();
      this.usedIndex = isExtentIndex(data.used) ? data.used : null;
      this.usedListPainted = false;
    }
    this.data = data;
    this.metrics = { ...this.metrics, sizeBytes: data.sizeBytes, blockSize: data.blockSize };
    if (geometryChanged) {
      this.view = resetView(this.metrics);
      this.cursorByte = null;
    }
    this.changed();
  }

  /** Size of the drawing area in CSS px and the device pixel ratio. */
  resize(widthPx: number, heightPx: number, devicePixelRatio: number): void {
    const w = Math.max(1, Math.floor(widthPx));
    const h = Math.max(1, Math.floor(heightPx));
    const fitBefore = this.metrics.widthPx > 0 ? fitLevel(this.metrics) : -1;
    const wasFit = this.view.level === fitBefore && this.view.scrollPx === 0;
    this.metrics = { ...this.metrics, widthPx: w, heightPx: h };
    // Cells are flat squares: at a whole device-pixel ratio (2, 3) the canvas is drawn at CSS
    // resolution and scaled up crisply by the compositor (image-rendering: pixelated), which paints
    // a quarter or a ninth of the pixels; fractional ratios are drawn at full resolution so that
    // cells and gaps stay even.
    const dpr = devicePixelRatio > 0 ? devicePixelRatio : 1;
    this.scale = Number.isInteger(dpr) ? 1 : dpr;
    const dw = Math.round(w * this.scale);
    const dh = Math.round(h * this.scale);
    if (this.canvas.width !== dw) this.canvas.width = dw;
    if (this.canvas.height !== dh) this.canvas.height = dh;
    this.canvas.style.width = `${w}px`;
    this.canvas.style.height = `${h}px`;
    if (!this.image || this.image.width !== dw || this.image.height !== dh) {
      this.image = new ImageData(dw, dh);
      this.pixels = new Uint32Array(this.image.data.buffer);
    }
    this.view = wasFit || fitBefore < 0 ? resetView(this.metrics) : clampView(this.metrics, this.view);
    this.changed();
  }

  // ----- commands (buttons, keys) -----

  zoomIn(): void {
    this.zoomTo(this.view.level - 1);
  }

  zoomOut(): void {
    this.zoomTo(this.view.level + 1);
  }

  reset(): void {
    this.view = resetView(this.metrics);
    this.changed();
  }

  /**
   * Shows [startBytes, endBytes) as large as it fits (a volume from the strip), its start at the
   * top, and puts the keyboard cursor there.
   */
  goTo(startBytes: number, endBytes = startBytes + 1): void {
    const m = this.metrics;
    const capacity = columns(m) * rowsInView(m);
    let level = 0;
    while (level < fitLevel(m) && Math.ceil((endBytes - startBytes) / bytesPerCell(m, level)) + columns(m) > capacity) level++;
    this.view = scrollToByte(m, { level, scrollPx: this.view.scrollPx }, startBytes);
    this.cursorByte = this.alignToCell(startBytes);
    this.changed();
  }

  panBy(dyPx: number): void {
    this.view = clampView(this.metrics, { level: this.view.level, scrollPx: this.view.scrollPx + dyPx });
    this.changed();
  }

  /**
   * Keyboard handling for the focused canvas; true when the key was used. Arrows move the cursor
   * cell (the view follows it), Page Up/Down move it a screen, + and - zoom about it, Home shows the
   * whole disk with the cursor at its start, End goes to the last cell.
   */
  handleKey(key: string): boolean {
    const m = this.metrics;
    const cols = columns(m);
    const cellStep = (cells: number) => {
      const last = totalCells(m, this.view.level) - 1;
      const current = this.cursorCell() ?? cellOfByte(m, this.view.level, visibleRange(m, this.view)[0]);
      const next = Math.min(last, Math.max(0, current + cells));
      this.cursorByte = next * bytesPerCell(m, this.view.level);
      this.view = scrollToCell(m, this.view, next);
      this.changed();
    };
    switch (key) {
      case '+':
      case '=':
        this.zoomIn();
        return true;
      case '-':
      case '_':
        this.zoomOut();
        return true;
      case 'Home':
        this.view = resetView(m);
        this.cursorByte = 0;
        this.changed();
        return true;
      case 'End':
        cellStep(Number.MAX_SAFE_INTEGER);
        return true;
      case 'ArrowLeft':
        cellStep(-1);
        return true;
      case 'ArrowRight':
        cellStep(1);
        return true;
      case 'ArrowUp':
        cellStep(-cols);
        return true;
      case 'ArrowDown':
        cellStep(cols);
        return true;
      case 'PageUp':
        cellStep(-cols * rowsInView(m));
        return true;
      case 'PageDown':
        cellStep(cols * rowsInView(m));
        return true;
      default:
        return false;
    }
  }

  setFocused(focused: boolean): void {
    this.focused = focused;
    if (focused && this.cursorByte === null) this.cursorByte = visibleRange(this.metrics, this.view)[0];
    this.changed();
  }

  /** Paints now (outside the animation frame); for first paint and tests. */
  paintNow(): void {
    if (this.frame) cancelAnimationFrame(this.frame);
    this.frame = 0;
    this.paint();
  }

  getView(): ViewState {
    return this.view;
  }

  getMetrics(): GridMetrics {
    return this.metrics;
  }

  // ----- internals -----

  private zoomTo(level: number, anchor?: { x: number; y: number }): void {
    const m = this.metrics;
    let anchorByte: number;
    let anchorY: number;
    const pointCell = anchor ? cellAtPoint(m, this.view, anchor.x, anchor.y) : null;
    if (anchor && pointCell !== null) {
      anchorByte = cellRange(m, this.view.level, pointCell)[0];
      anchorY = anchor.y;
    } else if (this.cursorByte !== null && this.focused) {
      anchorByte = this.cursorByte;
      const row = Math.floor(cellOfByte(m, this.view.level, anchorByte) / columns(m));
      anchorY = row * m.cellPx - this.view.scrollPx + m.cellPx / 2;
    } else {
      const [start, end] = visibleRange(m, this.view);
      anchorByte = (start + end) / 2;
      anchorY = m.heightPx / 2;
    }
    this.view = zoomAbout(m, this.view, level, anchorByte, anchorY);
    if (this.cursorByte !== null) this.cursorByte = this.alignToCell(this.cursorByte);
    this.changed();
  }

  private alignToCell(offsetBytes: number): number {
    const size = bytesPerCell(this.metrics, this.view.level);
    return Math.floor(Math.min(Math.max(0, offsetBytes), Math.max(0, this.metrics.sizeBytes - 1)) / size) * size;
  }

  private cursorCell(): number | null {
    return this.cursorByte === null ? null : cellOfByte(this.metrics, this.view.level, this.cursorByte);
  }

  private hoverCell(): number | null {
    return this.hoverPoint ? cellAtPoint(this.metrics, this.view, this.hoverPoint.x, this.hoverPoint.y) : null;
  }

  /** The used map's index, built now if it is not built yet. */
  private usedMap(data: DiskMapData): ExtentIndex {
    if (!this.usedIndex) {
      this.cancelIndexing();
      this.usedIndex = isExtentIndex(data.used) ? data.used : buildExtentIndex(data.used);
    }
    return this.usedIndex;
  }

  private cancelIndexing(): void {
    if (this.indexTimer !== null) clearTimeout(this.indexTimer);
    this.indexTimer = null;
  }

  private changed(): void {
    this.report();
    // The first picture goes out at once rather than a frame later.
    if (!this.paintedOnce && this.data && this.image && this.metrics.widthPx > 0) {
      this.paintNow();
      return;
    }
    if (this.frame || !this.ctx) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.paint();
    });
  }

  private paint(): void {
    const data = this.data;
    if (!data || !this.ctx || !this.image || this.metrics.widthPx <= 0) return;
    const started = performance.now();
    let usedFilled = false;
    if (!this.usedIndex && !this.usedListPainted && !isExtentIndex(data.used)) {
      // A new list: its first picture comes straight from the list; the index follows.
      const w = cellWindow(this.metrics, this.view);
      this.scratch.ensure(w.cells);
      usedFilled = fillCellCoverageFromList(data.used, w.firstByte, w.bytesPerCell, w.cells, this.metrics.sizeBytes, this.scratch.used);
      this.usedListPainted = true;
      if (usedFilled) {
        this.indexTimer = setTimeout(() => {
          this.indexTimer = null;
          if (this.data) this.usedMap(this.data);
        }, 0);
      }
    }
    paintGrid(
      { pixels: this.pixels, width: this.image.width, height: this.image.height, scale: this.scale },
      this.metrics,
      this.view,
      { used: usedFilled ? EMPTY_INDEX : this.usedMap(data), changed: data.changed, snapshot: data.snapshot },
      this.colors,
      this.scratch,
      { hover: this.hoverCell(), cursor: this.focused ? this.cursorCell() : null },
      usedFilled,
    );
    const drawn = performance.now();
    this.ctx.putImageData(this.image, 0, 0);
    this.paintedOnce = true;
    const done = performance.now();
    this.options.onPaint?.({ durationMs: done - started, putImageDataMs: done - drawn, overlays: data.changed !== null || data.snapshot !== null });
  }

  /** Tells the UI about the view and the status line, only when they changed. */
  private report(): void {
    const data = this.data;
    if (!data || this.metrics.widthPx <= 0) return;
    const m = this.metrics;
    const [visibleStartBytes, visibleEndBytes] = visibleRange(m, this.view);
    const info: ViewInfo = { level: this.view.level, fitLevel: fitLevel(m), bytesPerCell: bytesPerCell(m, this.view.level), visibleStartBytes, visibleEndBytes };
    const viewKey = `${info.level}/${info.fitLevel}/${visibleStartBytes}/${visibleEndBytes}`;
    if (viewKey !== this.lastViewKey) {
      this.lastViewKey = viewKey;
      this.options.onView(info);
    }
    const cell = this.hoverCell() ?? (this.focused ? this.cursorCell() : null);
    let status: string;
    if (cell === null) {
      status = `Showing ${formatByteRange(visibleStartBytes, visibleEndBytes)} of ${formatBytes(m.sizeBytes)}; one cell is ${formatBytes(info.bytesPerCell)}`;
    } else {
      const [start, end] = cellRange(m, this.view.level, cell);
      const fraction = (index: ExtentIndex | null) => (index ? coveredBytes(index, start, end) / (end - start) : null);
      status = describeCell({ startBytes: start, endBytes: end, used: fraction(this.usedMap(data)) ?? 0, changed: fraction(data.changed), snapshot: fraction(data.snapshot) }, data.volumes, data.changedName);
    }
    if (status !== this.lastStatus) {
      this.lastStatus = status;
      this.options.onStatus(status);
    }
  }

  private localPoint(e: { clientX: number; clientY: number }): { x: number; y: number } {
    const rect = this.canvas.getBoundingClientRect();
    return { x: e.clientX - rect.left, y: e.clientY - rect.top };
  }

  private attach(): () => void {
    const c = this.canvas;
    const onWheel = (e: WheelEvent) => {
      e.preventDefault();
      // Lines and pages (Firefox, some mice) count as whole steps.
      const delta = e.deltaMode === 0 ? e.deltaY : Math.sign(e.deltaY) * WHEEL_STEP_PX;
      this.wheelAccumulator += delta;
      const steps = Math.trunc(this.wheelAccumulator / WHEEL_STEP_PX);
      if (steps !== 0) {
        this.wheelAccumulator -= steps * WHEEL_STEP_PX;
        this.zoomTo(this.view.level + steps, this.localPoint(e));
      }
    };
    const onPointerDown = (e: PointerEvent) => {
      if (e.pointerType === 'touch') {
        this.touches.set(e.pointerId, this.localPoint(e));
        if (this.touches.size === 2) {
          this.drag = null;
          this.pinchStart = { distance: this.touchDistance(), level: this.view.level };
          return;
        }
      }
      if (e.button !== 0) return;
      this.drag = { pointerId: e.pointerId, lastY: e.clientY };
      try {
        c.setPointerCapture(e.pointerId);
      } catch {
        // A pointer the browser no longer tracks: the drag still works while it stays on the canvas.
      }
    };
    const onPointerMove = (e: PointerEvent) => {
      if (this.touches.has(e.pointerId)) {
        this.touches.set(e.pointerId, this.localPoint(e));
        if (this.pinchStart && this.touches.size === 2) {
          const ratio = this.touchDistance() / Math.max(1, this.pinchStart.distance);
          const level = this.pinchStart.level - Math.round(Math.log2(ratio));
          if (level !== this.view.level) this.zoomTo(level, this.touchCentre());
          return;
        }
      }
      if (this.drag && this.drag.pointerId === e.pointerId) {
        const dy = e.clientY - this.drag.lastY;
        this.drag.lastY = e.clientY;
        if (dy !== 0) this.panBy(-dy);
        return;
      }
      this.hoverPoint = this.localPoint(e);
      this.changed();
    };
    const onPointerUp = (e: PointerEvent) => {
      this.touches.delete(e.pointerId);
      if (this.touches.size < 2) this.pinchStart = null;
      if (this.drag?.pointerId === e.pointerId) this.drag = null;
    };
    const onPointerLeave = () => {
      if (this.drag) return;
      this.hoverPoint = null;
      this.changed();
    };
    c.addEventListener('wheel', onWheel, { passive: false });
    c.addEventListener('pointerdown', onPointerDown);
    c.addEventListener('pointermove', onPointerMove);
    c.addEventListener('pointerup', onPointerUp);
    c.addEventListener('pointercancel', onPointerUp);
    c.addEventListener('pointerleave', onPointerLeave);
    return () => {
      c.removeEventListener('wheel', onWheel);
      c.removeEventListener('pointerdown', onPointerDown);
      c.removeEventListener('pointermove', onPointerMove);
      c.removeEventListener('pointerup', onPointerUp);
      c.removeEventListener('pointercancel', onPointerUp);
      c.removeEventListener('pointerleave', onPointerLeave);
    };
  }

  private touchDistance(): number {
    const [a, b] = [...this.touches.values()];
    return a && b ? Math.hypot(a.x - b.x, a.y - b.y) : 1;
  }

  private touchCentre(): { x: number; y: number } {
    const [a, b] = [...this.touches.values()];
    return a && b ? { x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 } : { x: this.metrics.widthPx / 2, y: this.metrics.heightPx / 2 };
  }
}
