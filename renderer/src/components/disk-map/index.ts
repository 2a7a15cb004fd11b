// The disk map's public surface: the component and the plain-TS pieces other views may reuse.
export { DiskMap, type DiskMapProps } from './disk-map.js';
export { buildExtentIndex, coveredBytes, type ExtentIndex, type ExtentSource } from './coverage.js';
export type { PaintStats } from './disk-map-view.js';
