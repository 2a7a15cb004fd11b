// Block digests of runs of a shared window, concatenated in run order: what the pool's `hash`
// returns, computed by a worker or, for a small window, on the calling thread (worker-pool.ts).
import type { HashedWindow } from '../../agent-core/engine/compute.js';
import { hashBlocks } from '../../native/index.js';

export function hashRuns(window: SharedArrayBuffer, runs: readonly (readonly [number, number])[], blockSizeBytes: number, blockKey: Uint8Array): HashedWindow {
  const parts = runs.map(([offset, length]) => hashBlocks(new Uint8Array(window, offset, length), blockSizeBytes, blockKey));
  return { digests: Buffer.concat(parts.map((p) => p.digests)), zeroMask: Buffer.concat(parts.map((p) => p.zeroMask)) };
}
