// <DiskMap>: one disk's valid-sector bitmap on a canvas, with its partition strip, zoom controls, a
// live status line and a legend. The drawing and input logic live in DiskMapView (plain TS).
import { startTransition, useDeferredValue, useEffect, useId, useLayoutEffect, useMemo, useRef, useState, type KeyboardEvent } from 'react';
import type { VolumeInfo } from '../../../../agent-core/api/disk-layout.js';
import { formatBytes } from '../format.js';
import { toExtentIndex, type ExtentSource } from './coverage.js';
import { DiskMapView, type PaintStats, type ViewInfo } from './disk-map-view.js';
import { describeSegment, stripSegments } from './volumes.js';

export interface DiskMapProps {
  sizeBytes: number;
  /** The map's granularity (4096): the deepest zoom shows one block per cell. */
  blockSize: number;
  /** From DiskLayout: drawn as the partition strip above the bitmap. */
  volumes: readonly VolumeInfo[];
  /**
   * Sorted, non-overlapping [startBytes, lengthBytes] — or an index built from them with
   * buildExtentIndex, so a store can pay the O(n) build once per map rather than once per mount.
   */
  used: ExtentSource;
  /** Overlay: changed since the last backup, or differing between two snapshots. */
  changed?: ExtentSource | undefined;
  /** Legend and status name of the changed overlay; default "Changed since last backup". */
  changedLabel?: string | undefined;
  /** Overlay: contained in a chosen snapshot. */
  snapshot?: ExtentSource | undefined;
  /** Accessible name of the map. */
  label: string;
  /** CSS height of the bitmap; default 320. */
  heightPx?: number | undefined;
  /** CSS size of one cell, gap included; default 8. */
  cellPx?: number | undefined;
  /** After every paint; for speed measurements. */
  onPaint?: ((stats: PaintStats) => void) | undefined;
}

const BUTTON =
  'inline-flex h-7 min-w-7 items-center justify-center rounded border border-slate-300 bg-white px-2 text-sm text-slate-700 ' +
  'hover:bg-slate-50 focus-visible:outline-2 focus-visible:outline-offset-1 focus-visible:outline-sky-600 disabled:cursor-not-allowed disabled:opacity-40';

export function DiskMap(props: DiskMapProps) {
  const { sizeBytes, blockSize, volumes, used, changed, snapshot, label } = props;
  const heightPx = props.heightPx ?? 320;
  const cellPx = props.cellPx ?? 8;
  const changedLabel = props.changedLabel ?? 'Changed since last backup';
  const canvasRef = useRef<HTMLCanvasElement>(null);
  const boxRef = useRef<HTMLDivElement>(null);
  const windowRef = useRef<HTMLDivElement>(null);
  const viewRef = useRef<DiskMapView | null>(null);
  const onPaintRef = useRef(props.onPaint);
  const sizeRef = useRef(sizeBytes);
  useLayoutEffect(() => {
    onPaintRef.current = props.onPaint;
    sizeRef.current = sizeBytes;
  });
  const [status, setStatus] = useState('');
  const [zoom, setZoom] = useState<Pick<ViewInfo, 'level' | 'fitLevel' | 'bytesPerCell'> | null>(null);
  const helpId = useId();
  const statusId = useId();
  // The map's pixels come first. The first commit holds the canvas and the boxes that its controls,
  // partition strip, status line and legend will fill, at their final sizes but with no text in them:
  // the layout that sizes the canvas then needs no fonts, and the first paint waits for no React work
  // but the map's own. The text follows in a transition, a frame later at most, and moves nothing.
  const [chrome, setChrome] = useState(false);
  useEffect(() => {
    if (!chrome) startTransition(() => setChrome(true));
  }, [chrome]);

  // The used list goes to the view as it is: the view paints the first picture straight from it and
  // builds the index just after, so a new map does not wait for an O(n) index build.

  // Overlays are indexed in a background render: the used map shows at once, the overlays a frame
  // or two later, and a newly chosen overlay never holds up a pan or a zoom.
  // (null, not undefined, as the initial value: React defers the first render only given one.)
  const deferredChanged = useDeferredValue<ExtentSource | null | undefined>(changed, null);
  const deferredSnapshot = useDeferredValue<ExtentSource | null | undefined>(snapshot, null);
  const changedIndex = useMemo(() => (deferredChanged ? toExtentIndex(deferredChanged) : null), [deferredChanged]);
  const snapshotIndex = useMemo(() => (deferredSnapshot ? toExtentIndex(deferredSnapshot) : null), [deferredSnapshot]);
  const segments = useMemo(() => stripSegments(sizeBytes, volumes), [sizeBytes, volumes]);

  useLayoutEffect(() => {
    const canvas = canvasRef.current;
    if (!canvas) return;
    const view = new DiskMapView(canvas, {
      cellPx,
      onStatus: setStatus,
      onView: (info) => {
        // The strip's window follows every pan frame without a React render.
        const w = windowRef.current;
        const size = sizeRef.current;
        if (w && size > 0) {
          w.style.left = `${(info.visibleStartBytes / size) * 100}%`;
          w.style.width = `${((info.visibleEndBytes - info.visibleStartBytes) / size) * 100}%`;
        }
        setZoom((old) =>
          old && old.level === info.level && old.fitLevel === info.fitLevel ? old : { level: info.level, fitLevel: info.fitLevel, bytesPerCell: info.bytesPerCell },
        );
      },
      onPaint: (stats) => onPaintRef.current?.(stats),
    });
    viewRef.current = view;
    return () => {
      view.destroy();
      viewRef.current = null;
    };
    // Rebuilt only when the cell size changes; data and size flow in through the effects below.
  }, [cellPx]);

  useLayoutEffect(() => {
    viewRef.current?.setData({ sizeBytes, blockSize, volumes, used, changed: changedIndex, snapshot: snapshotIndex, changedName: changedLabel.charAt(0).toLowerCase() + changedLabel.slice(1) });
  }, [sizeBytes, blockSize, volumes, used, changedIndex, snapshotIndex, changedLabel, cellPx]);

  useLayoutEffect(() => {
    const box = boxRef.current;
    if (!box) return;
    const measure = () => viewRef.current?.resize(box.clientWidth, heightPx, window.devicePixelRatio || 1);
    measure();
    const observer = new ResizeObserver(measure);
    observer.observe(box);
    return () => observer.disconnect();
  }, [heightPx, cellPx]);

  // A moved window (another monitor) changes the pixel ratio without a resize; the query matches
  // one ratio only, so it is made anew after each change.
  const [ratioChanges, setRatioChanges] = useState(0);
  useEffect(() => {
    const query = window.matchMedia(`(resolution: ${window.devicePixelRatio || 1}dppx)`);
    const onChange = () => {
      const box = boxRef.current;
      if (box) viewRef.current?.resize(box.clientWidth, heightPx, window.devicePixelRatio || 1);
      setRatioChanges((n) => n + 1);
    };
    query.addEventListener('change', onChange);
    return () => query.removeEventListener('change', onChange);
  }, [heightPx, ratioChanges]);

  const onKeyDown = (e: KeyboardEvent<HTMLCanvasElement>) => {
    if (e.altKey || e.ctrlKey || e.metaKey) return;
    if (viewRef.current?.handleKey(e.key)) e.preventDefault();
  };

  const atFinest = !zoom || zoom.level <= 0;
  const atCoarsest = !zoom || zoom.level >= zoom.fitLevel;

  return (
    <div className="flex flex-col gap-2 text-sm text-slate-700">
      <div className="flex h-7 items-center gap-1.5">
        {chrome && (
          <>
            <button type="button" className={BUTTON} aria-label="Zoom out" disabled={atCoarsest} onClick={() => viewRef.current?.zoomOut()}>
              −
            </button>
            <button type="button" className={BUTTON} aria-label="Zoom in" disabled={atFinest} onClick={() => viewRef.current?.zoomIn()}>
              +
            </button>
            <button type="button" className={BUTTON} aria-label="Reset zoom" disabled={atCoarsest} onClick={() => viewRef.current?.reset()}>
              Fit
            </button>
            <span className="ml-2 text-xs text-slate-500 tabular-nums">
              {zoom ? `1 cell = ${formatBytes(zoom.bytesPerCell)}` : ''}
              {zoom && zoom.level === 0 ? ' (one block)' : ''}
            </span>
            <span className="ml-auto text-xs text-slate-500 tabular-nums">{formatBytes(sizeBytes)}</span>
          </>
        )}
      </div>

      <div className="relative h-6 overflow-hidden rounded border border-slate-300 bg-slate-100" role="group" aria-label="Partitions">
        {chrome &&
          segments.map((segment) => (
            <button
              key={`${segment.startBytes}`}
              type="button"
              className={
                'absolute inset-y-0 min-w-px truncate border-r border-white px-1 text-left text-[11px] leading-6 focus-visible:z-10 focus-visible:outline-2 focus-visible:outline-sky-600 ' +
                (segment.volume ? 'bg-slate-300 text-slate-800 hover:bg-slate-400' : 'bg-slate-100 text-slate-400 hover:bg-slate-200')
              }
              style={{ left: `${segment.leftPct}%`, width: `${segment.widthPct}%` }}
              aria-label={`Go to ${describeSegment(segment)}`}
              title={describeSegment(segment)}
              onClick={() => viewRef.current?.goTo(segment.startBytes, segment.startBytes + segment.sizeBytes)}
            >
              {segment.volume && segment.widthPct > 6 ? `${segment.volume.index} · ${segment.volume.filesystem}${segment.volume.label ? ` · ${segment.volume.label}` : ''}` : ''}
            </button>
          ))}
        <div ref={windowRef} aria-hidden="true" className="pointer-events-none absolute inset-y-0 min-w-0.5 rounded-sm border-2 border-sky-600 bg-sky-600/10" />
      </div>

      <div ref={boxRef} className="w-full">
        <canvas
          ref={canvasRef}
          role="img"
          aria-label={label}
          aria-describedby={`${helpId} ${statusId}`}
          tabIndex={0}
          className="block cursor-grab touch-none rounded [image-rendering:pixelated] border border-slate-200 focus-visible:outline-2 focus-visible:outline-offset-2 focus-visible:outline-sky-600 active:cursor-grabbing"
          onKeyDown={onKeyDown}
          onFocus={() => viewRef.current?.setFocused(true)}
          onBlur={() => viewRef.current?.setFocused(false)}
        />
      </div>
      <p id={helpId} className="sr-only">
        {chrome ? 'Arrow keys move the cursor cell, Page Up and Page Down move a screen, plus and minus zoom, Home shows the whole disk.' : ''}
      </p>

      <p id={statusId} role="status" aria-live="polite" className="min-h-5 truncate font-mono text-xs text-slate-600">
        {chrome ? status : ''}
      </p>

      <ul className="flex min-h-4 flex-wrap items-center gap-x-4 gap-y-1 text-xs text-slate-600" aria-label="Legend">
        {chrome && (
          <>
            <li className="flex items-center gap-1.5">
              <span aria-hidden="true" className="size-3 rounded-sm bg-slate-200" />
              Free
            </li>
            <li className="flex items-center gap-1.5">
              <span aria-hidden="true" className="h-3 w-6 rounded-sm bg-linear-to-r from-sky-300 to-sky-700" />
              Used (lighter: partly used)
            </li>
            {changed && (
              <li className="flex items-center gap-1.5">
                <span aria-hidden="true" className="h-3 w-6 rounded-sm bg-linear-to-r from-amber-200 to-amber-600" />
                {changedLabel}
              </li>
            )}
            {snapshot && (
              <li className="flex items-center gap-1.5">
                <span aria-hidden="true" className="flex size-3 items-end overflow-hidden rounded-sm bg-slate-200">
                  <span className="h-1 w-full bg-violet-600" />
                </span>
                In the chosen snapshot (bar at the cell’s foot)
              </li>
            )}
          </>
        )}
      </ul>
    </div>
  );
}
