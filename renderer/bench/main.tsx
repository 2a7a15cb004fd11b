// The UI speed bench page (npm run bench:ui): renders <DiskMap> over a synthetic 2 TiB disk of one
// million extents and <SnapshotTree> over 1,000 snapshots, drives pans and zooms with real DOM events
// one per animation frame, and leaves its measurements in window.__benchResult for Playwright.
import { useState } from 'react';
import { flushSync } from 'react-dom';
import { createRoot, type Root } from 'react-dom/client';
import { buildExtentIndex, type ExtentSource } from '../src/components/disk-map/coverage.js';
import { DiskMap } from '../src/components/disk-map/disk-map.js';
import type { PaintStats } from '../src/components/disk-map/disk-map-view.js';
import { SnapshotTree } from '../src/components/snapshot-tree/snapshot-tree.js';
import { syntheticDisk, syntheticSnapshots, type SyntheticDisk } from './synthetic.js';
import './bench.css';

export interface BenchRow {
  name: string;
  value: number;
  unit: string;
  /** Upper bound for pass (fps rows: lower bound). */
  target?: number;
  /** Higher is better for this row (fps). */
  higherIsBetter?: boolean;
  note?: string;
}

declare global {
  interface Window {
    __benchResult?: { rows: BenchRow[]; environment: Record<string, string | number> };
    __benchError?: string;
  }
}

const RUNS = 7;

function nextFrame(): Promise<number> {
  return new Promise((resolve) => requestAnimationFrame(resolve));
}

function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

function median(values: readonly number[]): number {
  return quantile(values, 0.5);
}

function mean(values: readonly number[]): number {
  return values.reduce((a, b) => a + b, 0) / Math.max(1, values.length);
}

let paintListener: ((stats: PaintStats) => void) | null = null;
const onPaint = (stats: PaintStats) => paintListener?.(stats);

type DiskData = Omit<SyntheticDisk, 'used' | 'changed' | 'snapshot'> & { used: ExtentSource; changed: ExtentSource; snapshot: ExtentSource };

function renderDiskMap(root: Root, disk: DiskData, withOverlays: boolean): void {
  flushSync(() =>
    root.render(
      <div className="w-[1200px] p-4">
        <DiskMap
          sizeBytes={disk.sizeBytes}
          blockSize={disk.blockSize}
          volumes={disk.volumes}
          used={disk.used}
          changed={withOverlays ? disk.changed : undefined}
          snapshot={withOverlays ? disk.snapshot : undefined}
          label="Disk map of the synthetic 2 TiB disk"
          heightPx={400}
          onPaint={onPaint}
        />
      </div>,
    ),
  );
}

/** ms from render to the first paint, and to the first paint that has the overlays (when asked for). */
async function firstPaintMs(root: Root, disk: SyntheticDisk, withOverlays: boolean, run: number, prebuilt = false): Promise<{ first: number; complete: number }> {
  flushSync(() => root.render(null));
  // Fresh arrays each run (copied before the clock starts) so the component builds its indexes
  // again, as when a disk's map first arrives; or, `prebuilt`, indexes a store made beforehand.
  const fresh: DiskData = prebuilt
    ? { ...disk, used: buildExtentIndex(disk.used), changed: buildExtentIndex(disk.changed), snapshot: buildExtentIndex(disk.snapshot) }
    : { ...disk, used: disk.used.slice(), changed: disk.changed.slice(), snapshot: disk.snapshot.slice() };
  await nextFrame();
  const tag = `diskmap${withOverlays ? '+overlays' : ''}${prebuilt ? '+prebuilt' : ''}#${run}`;
  let firstSeen = false;
  const painted = new Promise<void>((resolve) => {
    paintListener = (stats) => {
      if (!firstSeen) {
        firstSeen = true;
        performance.mark(`${tag}:first-paint`);
      }
      if (withOverlays && !stats.overlays) return;
      paintListener = null;
      performance.mark(`${tag}:complete`);
      resolve();
    };
  });
  performance.mark(`${tag}:start`);
  renderDiskMap(root, fresh, withOverlays);
  await painted;
  return {
    first: performance.measure(`${tag} first paint`, `${tag}:start`, `${tag}:first-paint`).duration,
    complete: performance.measure(`${tag} overlays painted`, `${tag}:start`, `${tag}:complete`).duration,
  };
}

/** Runs `steps` frames, calling `act` at the start of each, and returns frame intervals and paint costs. */
async function driveFrames(steps: number, act: (step: number) => void): Promise<{ intervals: number[]; paints: number[]; puts: number[] }> {
  const paints: number[] = [];
  const puts: number[] = [];
  paintListener = (stats) => {
    paints.push(stats.durationMs);
    puts.push(stats.putImageDataMs);
  };
  const intervals: number[] = [];
  let last = await nextFrame();
  for (let step = 0; step < steps; step++) {
    act(step);
    const now = await nextFrame();
    intervals.push(now - last);
    last = now;
  }
  // The last event's paint lands one frame later.
  await nextFrame();
  paintListener = null;
  return { intervals, paints, puts };
}

function frameRows(name: string, r: { intervals: number[]; paints: number[]; puts: number[] }): BenchRow[] {
  const fps = 1000 / mean(r.intervals);
  const dropped = r.intervals.filter((ms) => ms > 16.7 * 1.5).length;
  return [
    { name: `${name}: frame rate`, value: fps, unit: 'fps', target: 58, higherIsBetter: true, note: `${r.intervals.length} frames, ${dropped} longer than 25 ms` },
    { name: `${name}: p95 frame time`, value: quantile(r.intervals, 0.95), unit: 'ms', target: 16.7 * 1.05 },
    { name: `${name}: p95 paint (JS + putImageData)`, value: quantile(r.paints, 0.95), unit: 'ms', target: 8, note: `median ${median(r.paints).toFixed(2)}, max ${Math.max(...r.paints).toFixed(2)} ms over ${r.paints.length} paints; p95 putImageData ${quantile(r.puts, 0.95).toFixed(2)} ms` },
  ];
}

async function run(): Promise<void> {
  const rows: BenchRow[] = [];
  const host = document.getElementById('root')!;
  const root = createRoot(host);

  let started = performance.now();
  const disk = syntheticDisk();
  rows.push({ name: 'synthetic disk: generate (not in first paint)', value: performance.now() - started, unit: 'ms', note: `${disk.used.length} used extents, 2 TiB` });

  // The very first render in the page also compiles React's and the map's code; reported apart.
  const cold = await firstPaintMs(root, disk, false, 0);
  rows.push({ name: 'DiskMap first paint, cold page (first React render at all)', value: cold.first, unit: 'ms', target: 100 });
  const warm: number[] = [];
  for (let i = 1; i <= RUNS; i++) warm.push((await firstPaintMs(root, disk, false, i)).first);
  rows.push({ name: `DiskMap first paint, 1M extents (median of ${RUNS})`, value: median(warm), unit: 'ms', target: 100, note: `min ${Math.min(...warm).toFixed(1)}, max ${Math.max(...warm).toFixed(1)} ms` });
  for (const prebuilt of [false, true]) {
    const first: number[] = [];
    const complete: number[] = [];
    for (let i = 1; i <= RUNS; i++) {
      const r = await firstPaintMs(root, disk, true, i, prebuilt);
      first.push(r.first);
      complete.push(r.complete);
    }
    const how = prebuilt ? 'indexes built beforehand by a store' : 'lists indexed by the component';
    rows.push({ name: `DiskMap + overlays, ${how}: first paint (median of ${RUNS})`, value: median(first), unit: 'ms', target: 100, note: `min ${Math.min(...first).toFixed(1)}, max ${Math.max(...first).toFixed(1)} ms` });
    rows.push({
      name: `DiskMap + overlays, ${how}: overlays painted (median of ${RUNS})`,
      value: median(complete),
      unit: 'ms',
      note: `${disk.changed.length} changed, ${disk.snapshot.length} snapshot extents; min ${Math.min(...complete).toFixed(1)}, max ${Math.max(...complete).toFixed(1)} ms`,
    });
  }

  // Pan and zoom with the overlays on: real pointer and wheel events on the canvas.
  const canvas = host.querySelector('canvas');
  if (!canvas) throw new Error('DiskMap rendered no canvas');
  const rect = canvas.getBoundingClientRect();
  const cx = rect.left + rect.width / 2;
  const cy = rect.top + rect.height / 2;
  const wheel = (deltaY: number) => canvas.dispatchEvent(new WheelEvent('wheel', { deltaY, deltaMode: 0, clientX: cx, clientY: cy, bubbles: true, cancelable: true }));
  const pointer = (type: string, y: number) =>
    canvas.dispatchEvent(new PointerEvent(type, { pointerId: 1, pointerType: 'mouse', button: 0, buttons: 1, clientX: cx, clientY: y, bubbles: true, cancelable: true }));
  await nextFrame();

  // Zoom from the whole disk down to single blocks and back, one level per frame, four times.
  const zoomSteps = 18;
  const zoom = await driveFrames(zoomSteps * 2 * 4, (step) => wheel(Math.floor(step / zoomSteps) % 2 === 0 ? -60 : 60));
  rows.push(...frameRows('zoom (one level per frame)', zoom));

  // Drag-pan at three zoom levels: a few levels in from the whole disk, 64 KiB cells, single blocks.
  const zoomIn = (levels: number) => {
    for (let i = 0; i < 64; i++) wheel(60);
    for (let i = 0; i < levels; i++) wheel(-60);
  };
  const cellSize = () => [...host.querySelectorAll('span')].find((el) => el.textContent?.startsWith('1 cell ='))?.textContent?.slice(2) ?? '?';
  for (const levels of [2, 13, 64]) {
    zoomIn(levels);
    await nextFrame();
    const label = `pan, ${cellSize()}`;
    let y = cy;
    pointer('pointerdown', y);
    const pan = await driveFrames(180, (step) => {
      y += step < 90 ? -14 : 14;
      pointer('pointermove', y);
    });
    pointer('pointerup', y);
    rows.push(...frameRows(label, pan));
  }

  // The snapshot tree: 1,000 snapshots with branches, committed and then on screen.
  flushSync(() => root.render(null));
  const snapshots = syntheticSnapshots();
  const commits: number[] = [];
  const frames: number[] = [];
  let renderedItems = 0;
  for (let i = 0; i <= RUNS; i++) {
    flushSync(() => root.render(null));
    await nextFrame();
    const list = snapshots.slice();
    const newest = list[list.length - 1]!.id;
    started = performance.now();
    performance.mark(`tree#${i}:start`);
    flushSync(() =>
      root.render(
        <div className="w-[1100px] p-4">
          <SnapshotTree snapshots={list} selected={[newest]} onSelect={() => {}} onRestore={() => {}} heightPx={600} />
        </div>,
      ),
    );
    performance.mark(`tree#${i}:committed`);
    const committed = performance.now() - started;
    await nextFrame();
    performance.mark(`tree#${i}:frame`);
    const framed = performance.measure(`tree#${i} first render`, `tree#${i}:start`, `tree#${i}:frame`).duration;
    renderedItems = host.querySelectorAll('[role="treeitem"]').length;
    if (i === 0) {
      rows.push({ name: 'SnapshotTree 1,000 nodes, cold: to next frame', value: framed, unit: 'ms', target: 200 });
      continue;
    }
    commits.push(committed);
    frames.push(framed);
  }
  rows.push({ name: `SnapshotTree 1,000 nodes: render committed (median of ${RUNS})`, value: median(commits), unit: 'ms', target: 200, note: `min ${Math.min(...commits).toFixed(1)}, max ${Math.max(...commits).toFixed(1)} ms` });
  rows.push({ name: `SnapshotTree 1,000 nodes: to next frame (median of ${RUNS})`, value: median(frames), unit: 'ms', target: 200, note: `${renderedItems} treeitems in the DOM (virtualised)` });

  window.__benchResult = {
    rows,
    environment: { userAgent: navigator.userAgent, devicePixelRatio: window.devicePixelRatio, hardwareConcurrency: navigator.hardwareConcurrency },
  };
}

/** `?cold`: only the cold-page first paint, for the script to repeat in fresh browsers. */
async function coldOnly(): Promise<void> {
  const root = createRoot(document.getElementById('root')!);
  const disk = syntheticDisk();
  const cold = await firstPaintMs(root, disk, false, 0);
  window.__benchResult = { rows: [{ name: 'cold', value: cold.first, unit: 'ms' }], environment: {} };
}

/** `?view`: the two components side by side with the bench's data, for a look or a screenshot. */
function show(): void {
  const disk = syntheticDisk();
  const snapshots = syntheticSnapshots();
  const Page = () => {
    const [selected, setSelected] = useState<string[]>([snapshots[snapshots.length - 1]!.id]);
    return (
      <div className="flex w-[1200px] flex-col gap-6 p-4">
        <DiskMap
          sizeBytes={disk.sizeBytes}
          blockSize={disk.blockSize}
          volumes={disk.volumes}
          used={disk.used}
          changed={disk.changed}
          snapshot={disk.snapshot}
          label="Disk map of the synthetic 2 TiB disk"
          heightPx={320}
        />
        <SnapshotTree snapshots={snapshots} selected={selected} onSelect={setSelected} onRestore={(id) => console.log(`restore ${id}`)} heightPx={400} />
      </div>
    );
  };
  createRoot(document.getElementById('root')!).render(<Page />);
  window.__benchResult = { rows: [], environment: {} };
}

const search = new URLSearchParams(location.search);
if (search.has('view')) show();
else
  (search.has('cold') ? coldOnly() : run()).catch((error: unknown) => {
    window.__benchError = error instanceof Error ? `${error.message}\n${error.stack ?? ''}` : String(error);
  });
