// The agent's API: every call and event as a zod schema keyed by its channel (`domain:verb`). The
// agent's handlers, every transport and every client are typed from this one map, so none can drift.
import * as z from 'zod';
import {
  ConfiguredSourceSchema,
  ScheduleSchema,
  SettingsSchema,
  SettingsUpdateSchema,
  SnapshotDiffSchema,
  SnapshotMapSchema,
  SourceIdSchema,
  TargetCheckSchema,
} from './console-config.js';
import { DiskLayoutSchema } from './disk-layout.js';
import { DiskMapSchema, ExtentListSchema } from './extents.js';
import { ErrorPayloadSchema } from './error-schema.js';
import type { ErrorPayload } from './errors.js';
import { JOB_WAIT_MAX_MS, JobFinishedSchema, JobIdSchema, JobProgressSchema, JobSchema } from './job.js';
import { SnapshotSummarySchema } from './snapshot.js';

/** Bumped on any change a client of the previous version would misread (agent:hello returns it). */
export const API_VERSION = 2;

const PathSchema = z.string().min(1, 'a path is required');
/** Where a call names no repository, the one in the settings is meant. */
const RepoSchema = PathSchema.optional();
const SnapshotRefSchema = z.string().min(1, 'a snapshot id is required');
/** Switches the source's live change tracker on or off; only block devices can be tracked. */
const TrackingInputSchema = z.boolean();

export const CALLS = {
  'agent:hello': {
    input: z.strictObject({}),
    output: z.object({ apiVersion: z.number().int(), agentVersion: z.string(), stateDir: z.string() }),
  },
  'sources:inspect': {
    input: z.strictObject({ path: PathSchema }),
    output: DiskLayoutSchema,
  },
  'sources:map': {
    input: z.strictObject({ path: PathSchema }),
    output: DiskMapSchema,
  },
  'sources:changes': {
    /** What the live tracker has seen written since the source's last backup (empty when it is not tracked). */
    input: z.strictObject({ id: SourceIdSchema }),
    output: z.object({ tracking: z.enum(['off', 'live', 'blind']), changed: ExtentListSchema, changedBytes: z.number().int().nonnegative() }),
  },
  'sources:list': {
    input: z.strictObject({}),
    output: z.array(ConfiguredSourceSchema),
  },
  'sources:add': {
    input: z.strictObject({
      path: PathSchema,
      label: z.string().trim().min(1).max(200).optional(),
      schedule: ScheduleSchema.nullable().optional(),
      tracking: TrackingInputSchema.optional(),
    }),
    output: ConfiguredSourceSchema,
  },
  'sources:update': {
    input: z.strictObject({
      id: SourceIdSchema,
      label: z.string().trim().min(1).max(200).optional(),
      schedule: ScheduleSchema.nullable().optional(),
      tracking: TrackingInputSchema.optional(),
    }),
    output: ConfiguredSourceSchema,
  },
  'sources:remove': {
    /** Forgets the source; its snapshots stay in the repository. */
    input: z.strictObject({ id: SourceIdSchema }),
    output: z.object({ id: SourceIdSchema }),
  },
  'sources:create-demo': {
    /** Makes a small disk image with two filesystems in the state directory and adds it as a source. */
    input: z.strictObject({}),
    output: ConfiguredSourceSchema,
  },
  'sources:change-demo': {
    /** Writes a few changes into the demo image's files, so the next backup has something to find. */
    input: z.strictObject({ id: SourceIdSchema }),
    output: z.object({ filesChanged: z.number().int().nonnegative() }),
  },
  'settings:get': {
    input: z.strictObject({}),
    output: SettingsSchema,
  },
  'settings:update': {
    input: SettingsUpdateSchema,
    output: SettingsSchema,
  },
  'targets:check': {
    input: z.strictObject({ path: PathSchema, snapshot: SnapshotRefSchema, repo: RepoSchema }),
    output: TargetCheckSchema,
  },
  'repository:init': {
    input: z.strictObject({
      repo: PathSchema,
      encryption: z.enum(['none', 'aes-256-gcm']),
      /** Required with aes-256-gcm; it wraps the repository's keys and is never stored by the agent. */
      password: z.string().min(1).optional(),
      fullEvery: z.number().int().positive().optional(),
    }),
    output: z.object({ id: z.string(), path: z.string(), encryption: z.enum(['none', 'aes-256-gcm']), fullEvery: z.number().int() }),
  },
  'snapshots:list': {
    input: z.strictObject({ repo: RepoSchema }),
    output: z.array(SnapshotSummarySchema),
  },
  'snapshots:forget': {
    /** Deletes snapshots by hand (ids, unique prefixes or "latest"); their data is reclaimed by a later prune. */
    input: z.strictObject({ snapshots: z.array(SnapshotRefSchema).min(1).max(1000), repo: RepoSchema }),
    output: z.object({ forgotten: z.array(z.string()) }),
  },
  'snapshots:map': {
    input: z.strictObject({ snapshot: SnapshotRefSchema, repo: RepoSchema }),
    output: SnapshotMapSchema,
  },
  'snapshots:diff': {
    input: z.strictObject({ from: SnapshotRefSchema, to: SnapshotRefSchema, repo: RepoSchema }),
    output: SnapshotDiffSchema,
  },
  'jobs:start-backup': {
    input: z.strictObject({ source: PathSchema, repo: RepoSchema, tags: z.array(z.string().min(1)).optional(), full: z.boolean().optional() }),
    output: z.object({ jobId: JobIdSchema }),
  },
  'jobs:start-restore': {
    input: z.strictObject({ snapshot: SnapshotRefSchema, repo: RepoSchema, target: PathSchema, force: z.boolean().optional() }),
    output: z.object({ jobId: JobIdSchema }),
  },
  'jobs:start-verify': {
    input: z.strictObject({ repo: RepoSchema, readData: z.boolean().optional() }),
    output: z.object({ jobId: JobIdSchema }),
  },
  'jobs:list': {
    input: z.strictObject({}),
    output: z.array(JobSchema),
  },
  'jobs:wait': {
    /**
     * A long poll: answers the Job once it has ended (finishedAt set, with its result or error), or
     * after timeoutMs (default 30 s, at most 300 s) with the job still queued or running; ask again.
     */
    input: z.strictObject({ jobId: JobIdSchema, timeoutMs: z.number().int().min(0).max(JOB_WAIT_MAX_MS).optional() }),
    output: JobSchema,
  },
  'jobs:cancel': {
    input: z.strictObject({ jobId: JobIdSchema }),
    /** The job's state after the request: cancelled if it was queued, still running until its next checkpoint otherwise. */
    output: z.object({ jobId: JobIdSchema, state: JobSchema.shape.state }),
  },
} as const satisfies Record<string, { input: z.ZodType; output: z.ZodType }>;

export const EVENTS = {
  'jobs:queued': JobSchema,
  'jobs:progress': JobProgressSchema,
  'jobs:finished': JobFinishedSchema,
  /** Sources were added, removed or changed, or a backup of one ended: list them again. */
  'sources:changed': z.object({}),
  'settings:changed': SettingsSchema,
} as const satisfies Record<string, z.ZodType>;

export type Channel = keyof typeof CALLS;
export type EventName = keyof typeof EVENTS;
export type Input<C extends Channel> = z.infer<(typeof CALLS)[C]['input']>;
/** What a client sends: the same as Input except that branded ids may be given as plain strings. */
export type ClientInput<C extends Channel> = z.input<(typeof CALLS)[C]['input']>;
export type Output<C extends Channel> = z.infer<(typeof CALLS)[C]['output']>;
export type EventPayload<E extends EventName> = z.infer<(typeof EVENTS)[E]>;
/** One event as a transport carries it. */
export type AgentEvent = { [E in EventName]: { event: E; payload: EventPayload<E> } }[EventName];

/** Every call's answer: a value or a typed error; nothing throws across a transport. */
export type Reply<T> = { ok: true; value: T } | { ok: false; error: ErrorPayload };

/** The agent implements exactly this map; a missing or mistyped handler fails to compile. */
export type Handlers = { [C in Channel]: (input: Input<C>) => Promise<Output<C>> };

export function isChannel(name: string): name is Channel {
  return Object.hasOwn(CALLS, name);
}

export function isEventName(name: string): name is EventName {
  return Object.hasOwn(EVENTS, name);
}

export function replySchema<T extends z.ZodType>(value: T) {
  return z.discriminatedUnion('ok', [z.object({ ok: z.literal(true), value }), z.object({ ok: z.literal(false), error: ErrorPayloadSchema })]);
}

/** What a console holds, whichever transport is underneath (socket or Electron IPC). */
export interface ApiClient {
  call<C extends Channel>(channel: C, input: ClientInput<C>): Promise<Reply<Output<C>>>;
  /** Sends a call the type system has not checked: for transports relaying raw messages, and for tests of rejection. */
  callUnchecked(channel: string, input: unknown): Promise<Reply<unknown>>;
  /** Returns the function that stops listening. */
  onEvent(listener: (event: AgentEvent) => void): () => void;
  close(): Promise<void>;
}
