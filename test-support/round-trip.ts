// One filesystem round trip through the real CLI, shared by the per-filesystem suites: inspect names
// the filesystem and its used bytes, the backup reads little more than those, the restore succeeds.
import { expect } from 'vitest';
import { strata, summaryOf } from './cli.js';

export interface RoundTrip {
  /** The restored image, next to the source as `<image>.restored`. */
  readonly target: string;
  readonly usedBytes: number;
  readonly bytesRead: number;
}

/**
 * inspect, backup and restore of a bare-filesystem image into `repo`. `usedBelow` is the fraction of
 * the volume the test's fill stays under (the map must not call the whole volume used).
 */
export function cliRoundTrip(env: Record<string, string>, repo: string, image: string, filesystem: string, usedBelow = 1): RoundTrip {
  const inspect = strata(['inspect', image, '--json'], env);
  expect(inspect.status, inspect.stderr).toBe(0);
  const layout = inspect.lines[0] as { volumes: Array<{ filesystem: string; usedBytes: number; sizeBytes: number }>; warnings: string[] };
  expect(layout.warnings).toEqual([]);
  expect(layout.volumes).toHaveLength(1);
  const volume = layout.volumes[0]!;
  expect(volume.filesystem).toBe(filesystem);
  expect(volume.usedBytes).toBeLessThan(volume.sizeBytes * usedBelow);

  const backup = strata(['backup', image, '--repo', repo, '--json'], env);
  expect(backup.status, backup.stderr).toBe(0);
  const s = summaryOf(backup);
  // The engine rounds valid runs out to whole 4 KiB pages: small clusters (FAT's 512 B–2 KiB) gain a little.
  expect(s.validBytes as number).toBeGreaterThanOrEqual(volume.usedBytes);
  expect(s.validBytes as number).toBeLessThanOrEqual(volume.usedBytes * 1.05 + 64 * 1024);
  // The engine reads through short gaps between used runs, so bytesRead may pass usedBytes a
  // little; most of the free space must still be skipped.
  expect(s.bytesRead as number).toBeLessThan(volume.usedBytes + (volume.sizeBytes - volume.usedBytes) / 4);

  const target = `${image}.restored`;
  const restore = strata(['restore', s.snapshot as string, '--repo', repo, '--target', target, '--json'], env);
  expect(restore.status, restore.stderr).toBe(0);
  return { target, usedBytes: volume.usedBytes, bytesRead: s.bytesRead as number };
}
