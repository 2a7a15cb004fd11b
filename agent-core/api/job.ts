// Jobs as the agent's API shows them: a backup, restore or verify queued behind others on the same
// repository, its progress while it runs and its result or error when it ends.
import * as z from 'zod';
import { ErrorPayloadSchema } from './error-schema.js';
import { JobStateSchema, SnapshotSummarySchema } from './snapshot.js';

/** Jobs of the agent's queue; an id is a UUID the agent gave out, never a catalog row number. */
export const JobIdSchema = z.uuid().brand<'JobId'>();
export type JobId = z.infer<typeof JobIdSchema>;

/** jobs:wait's long poll when the caller names no timeout, and the longest it may ask for. */
export const JOB_WAIT_DEFAULT_MS = 30_000;
export const JOB_WAIT_MAX_MS = 300_000;

export const QueuedJobKindSchema = z.enum(['backup', 'restore', 'verify']);
export type QueuedJobKind = z.infer<typeof QueuedJobKindSchema>;

export const JobPhaseSchema = z.enum(['backup', 'restore', 'verify']);

export const JobProgressSchema = z.object({
  jobId: JobIdSchema,
  phase: JobPhaseSchema,
  bytesDone: z.number().int().nonnegative(),
  bytesTotal: z.number().int().nonnegative(),
  rateBytesPerSec: z.number().nonnegative(),
  /** Null until a rate is known. */
  etaMs: z.number().nonnegative().nullable(),
});
export type JobProgress = z.infer<typeof JobProgressSchema>;

export const RestoreResultSchema = z.object({
  snapshot: z.string(),
  target: z.string(),
  bytesWritten: z.number().int().nonnegative(),
  /** Writing only; the read-back has its own duration. */
  durationMs: z.number().nonnegative(),
  /**
   * The read-back of the target against the snapshot's block digests; null when it was skipped
   * (`--no-verify`), absent in results recorded before restores were verified. A restore whose
   * target differs fails with `Corrupt` instead, so a result here always has mismatches 0.
   */
  verification: z
    .object({
      blocksChecked: z.number().int().nonnegative(),
      bytesRead: z.number().int().nonnegative(),
      mismatches: z.number().int().nonnegative(),
      durationMs: z.number().nonnegative(),
    })
    .nullable()
    .optional(),
});

const VerifyFindingSchema = z.object({ object: z.string(), problem: z.string() });

export const VerifyResultSchema = z.object({
  snapshots: z.number().int().nonnegative(),
  packs: z.number().int().nonnegative(),
  blobs: z.number().int().nonnegative(),
  bytesRead: z.number().int().nonnegative(),
  problems: z.array(VerifyFindingSchema),
  warnings: z.array(VerifyFindingSchema),
});

/** What a finished job produced, tagged by its kind. */
export const JobResultSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('backup'), snapshot: SnapshotSummarySchema }),
  z.object({ kind: z.literal('restore'), restore: RestoreResultSchema }),
  z.object({ kind: z.literal('verify'), report: VerifyResultSchema }),
]);
export type JobResult = z.infer<typeof JobResultSchema>;

export const FinishedJobStateSchema = z.enum(['succeeded', 'failed', 'cancelled']);

export const JobSchema = z.object({
  id: JobIdSchema,
  kind: QueuedJobKindSchema,
  state: JobStateSchema,
  /** The repository path as given; jobs on one repository run one at a time, in order. */
  repo: z.string(),
  /** The image or device a backup reads or a restore writes; null for verify. */
  source: z.string().nullable(),
  queuedAt: z.iso.datetime(),
  startedAt: z.iso.datetime().nullable(),
  finishedAt: z.iso.datetime().nullable(),
  progress: JobProgressSchema.nullable(),
  error: ErrorPayloadSchema.nullable(),
  result: JobResultSchema.nullable(),
});
export type Job = z.infer<typeof JobSchema>;

export const JobFinishedSchema = z.object({
  jobId: JobIdSchema,
  state: FinishedJobStateSchema,
  error: ErrorPayloadSchema.optional(),
  result: JobResultSchema.optional(),
});
export type JobFinished = z.infer<typeof JobFinishedSchema>;
