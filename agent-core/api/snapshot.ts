// What a snapshot is, as every layer and transport sees it: the summary the repository's manifest
// carries, the catalog caches and the console draws as a tree.
import * as z from 'zod';

export const HexIdSchema = z.string().regex(/^[0-9a-f]{64}$/, 'a 64-digit lowercase hex id');

export const BackupModeSchema = z.enum(['full', 'incremental', 'resync']);
export type BackupMode = z.infer<typeof BackupModeSchema>;

export const TrackerStateSchema = z.enum(['none', 'live']);
export type TrackerState = z.infer<typeof TrackerStateSchema>;

export const SnapshotSummarySchema = z.object({
  id: HexIdSchema,
  /** Stable id of the source inside its repository (derived from sourceName). */
  sourceId: HexIdSchema,
  /** The source as the user named it: an image path or a device path. */
  sourceName: z.string(),
  parentId: HexIdSchema.nullable(),
  mode: BackupModeSchema,
  /** Why a full or resync was taken instead of an incremental, if it was. */
  modeReason: z.string().nullable(),
  tracker: TrackerStateSchema,
  createdAt: z.string(),
  hostname: z.string(),
  tags: z.array(z.string()),
  sourceBytes: z.number().int().nonnegative(),
  validBytes: z.number().int().nonnegative(),
  bytesRead: z.number().int().nonnegative(),
  bytesNew: z.number().int().nonnegative(),
  bytesStored: z.number().int().nonnegative(),
  durationMs: z.number().nonnegative(),
  /**
   * A source copied while mounted and written to: the passes that re-read what changed during the
   * copy, the bytes they read, and how long its filesystems were frozen for the last one.
   */
  converged: z
    .object({
      passes: z.number().int().nonnegative(),
      rereadBytes: z.number().int().nonnegative(),
      frozenMs: z.number().nonnegative(),
    })
    .optional(),
});
export type SnapshotSummary = z.infer<typeof SnapshotSummarySchema>;

/** The tag the scheduler gives the snapshots it takes; retention forgets only these (seed 004). */
export const AUTOMATIC_TAG = 'scheduled';

/** Taken by the scheduler, as opposed to by hand. */
export function isAutomatic(s: { readonly tags: readonly string[] }): boolean {
  return s.tags.includes(AUTOMATIC_TAG);
}

export const JobKindSchema = z.enum(['backup', 'restore', 'verify', 'catalog-rebuild']);
export type JobKind = z.infer<typeof JobKindSchema>;

export const JobStateSchema = z.enum(['queued', 'running', 'succeeded', 'failed', 'cancelled']);
export type JobState = z.infer<typeof JobStateSchema>;
