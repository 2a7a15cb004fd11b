// What the console configures in the agent: the sources it protects (with their schedules), the
// settings (repository, retention, notifications, pause), and the checks a restore target passes.
import * as z from 'zod';
import { DiskLayoutSchema } from './disk-layout.js';
import { ErrorPayloadSchema } from './error-schema.js';
import { ExtentListSchema } from './extents.js';
import { HexIdSchema, JobStateSchema } from './snapshot.js';

export const SourceIdSchema = z.uuid();

/** A cron expression (5 fields, or 6 with seconds) in the agent machine's local time zone. */
export const ScheduleSchema = z.string().trim().min(1).max(200);

export const LastBackupSchema = z.object({
  snapshotId: HexIdSchema,
  at: z.string(),
  mode: z.enum(['full', 'incremental', 'resync']),
});

export const LastJobSchema = z.object({
  state: JobStateSchema,
  finishedAt: z.string().nullable(),
  error: ErrorPayloadSchema.nullable(),
});

export const ConfiguredSourceSchema = z.object({
  id: SourceIdSchema,
  /** An image file or a block device. */
  path: z.string(),
  label: z.string(),
  /** The name its snapshots carry (sourceName): the image's real path, or the device path. */
  sourceName: z.string(),
  schedule: ScheduleSchema.nullable(),
  addedAt: z.iso.datetime(),
  /** True for the demo image the console made; only that one may be changed by sources:change-demo. */
  demo: z.boolean(),
  /** The newest snapshot of this source in the settings' repository. */
  lastBackup: LastBackupSchema.nullable(),
  /** The newest backup job of this source this agent knows of, finished or not. */
  lastJob: LastJobSchema.nullable(),
  /** Null without a schedule; while schedules are paused, when it would run. */
  nextRunAt: z.iso.datetime().nullable(),
  /**
   * The source's live change tracker: "off" when tracking is not switched on; "live" while the
   * tracker sees every write (the next backup reads only the changed blocks); "blind" while it is
   * switched on but cannot vouch for every write — starting, its probe down and restarting, or
   * unable to start — so the next backup is a resync that reads every valid block.
   */
  tracking: z.enum(['off', 'live', 'blind']),
  /** The disk as it is now; null with layoutError when it cannot be read. */
  layout: DiskLayoutSchema.nullable(),
  layoutError: ErrorPayloadSchema.nullable(),
});
export type ConfiguredSource = z.infer<typeof ConfiguredSourceSchema>;

export const EncryptionSchema = z.enum(['none', 'aes-256-gcm']);

/** Seed 004: a chain of 128 at most by default; the oldest automatic snapshots go first. */
export const DEFAULT_CHAIN_LIMIT = 128;

export const SettingsSchema = z.object({
  repository: z.object({
    path: z.string(),
    /** Null while nothing is at the path yet. */
    id: z.string().nullable(),
    encryption: EncryptionSchema.nullable(),
  }),
  retention: z.object({
    /** Snapshots kept per chain; beyond it the oldest automatic ones are removed, tagged (manual) ones kept. */
    chainLimit: z.number().int().min(2).max(4096),
  }),
  notifications: z.object({ onSuccess: z.boolean(), onFailure: z.boolean() }),
  schedulesPaused: z.boolean(),
});
export type Settings = z.infer<typeof SettingsSchema>;

export const SettingsUpdateSchema = z.strictObject({
  /** Points the console at another repository; it must exist (repository:init makes one). */
  repositoryPath: z.string().min(1).optional(),
  chainLimit: SettingsSchema.shape.retention.shape.chainLimit.optional(),
  notifications: SettingsSchema.shape.notifications.partial().optional(),
  schedulesPaused: z.boolean().optional(),
});

export const TargetCheckSchema = z.object({
  path: z.string(),
  kind: z.enum(['missing', 'file', 'block-device', 'other']),
  sizeBytes: z.number().int().nonnegative().nullable(),
  /** Bytes the snapshot needs. */
  neededBytes: z.number().int().nonnegative(),
  /** Where it is mounted, if it is a mounted device. */
  mountedAt: z.string().nullable(),
  /** Loop devices or holders using it. */
  usedBy: z.array(z.string()),
  /** True when a restore may proceed without force. */
  ok: z.boolean(),
  /** True when only force would let it proceed (an existing file, a mounted or busy device). */
  needsForce: z.boolean(),
  /** Sentences a person can act on; empty when ok. */
  problems: z.array(z.string()),
});
export type TargetCheck = z.infer<typeof TargetCheckSchema>;

export const SnapshotMapSchema = z.object({
  snapshotId: HexIdSchema,
  sizeBytes: z.number().int().nonnegative(),
  blockSize: z.number().int().positive(),
  /** Regions the snapshot holds (data and zeros it read); the rest was not in use. */
  stored: ExtentListSchema,
});
export type SnapshotMap = z.infer<typeof SnapshotMapSchema>;

export const SnapshotDiffSchema = z.object({
  from: HexIdSchema,
  to: HexIdSchema,
  /** Regions whose content differs between the two, at block granularity. */
  changed: ExtentListSchema,
  changedBytes: z.number().int().nonnegative(),
});
export type SnapshotDiff = z.infer<typeof SnapshotDiffSchema>;
