// The contract's own rules: channel names, strict inputs, replies and the schemas of jobs.
import { describe, expect, it } from 'vitest';
import * as z from 'zod';
import { CALLS, EVENTS, isChannel, isEventName, replySchema } from './api/contract.js';
import { JobFinishedSchema, JobIdSchema } from './api/job.js';
import { WsRequestSchema } from './api/socket-protocol.js';

describe('the API contract', () => {
  it('names every channel and event domain:verb', () => {
    for (const name of [...Object.keys(CALLS), ...Object.keys(EVENTS)]) expect(name).toMatch(/^[a-z]+:[a-z]+(-[a-z]+)*$/);
  });

  it('knows its channels and nothing inherited from Object', () => {
    expect(isChannel('jobs:list')).toBe(true);
    expect(isChannel('toString')).toBe(false);
    expect(isChannel('jobs:progress')).toBe(false);
    expect(isEventName('jobs:progress')).toBe(true);
  });

  it('rejects inputs with keys the contract does not name', () => {
    expect(CALLS['jobs:start-backup'].input.safeParse({ source: '/a', repo: '/r' }).success).toBe(true);
    expect(CALLS['jobs:start-backup'].input.safeParse({ source: '/a', repo: '/r', rm: true }).success).toBe(false);
    expect(CALLS['sources:inspect'].input.safeParse({ path: '' }).success).toBe(false);
  });

  it('takes only UUIDs as job ids', () => {
    expect(JobIdSchema.safeParse('3f1c2a9e-8b7d-4c6e-9a5b-1d2e3f4a5b6c').success).toBe(true);
    expect(JobIdSchema.safeParse('42').success).toBe(false);
  });

  it('parses a reply as a value or a typed error, never both', () => {
    const schema = replySchema(z.number());
    expect(schema.parse({ ok: true, value: 3 })).toEqual({ ok: true, value: 3 });
    expect(schema.safeParse({ ok: false, error: { code: 'Locked', message: 'busy', retryable: true } }).success).toBe(true);
    expect(schema.safeParse({ ok: false, error: { code: 'Oops', message: 'x', retryable: false } }).success).toBe(false);
  });

  it('allows a finished event without error or result, and refuses a running state', () => {
    const jobId = '3f1c2a9e-8b7d-4c6e-9a5b-1d2e3f4a5b6c';
    expect(JobFinishedSchema.safeParse({ jobId, state: 'cancelled' }).success).toBe(true);
    expect(JobFinishedSchema.safeParse({ jobId, state: 'running' }).success).toBe(false);
  });

  it('frames WebSocket requests as {id, channel, input} only', () => {
    expect(WsRequestSchema.safeParse({ id: 1, channel: 'jobs:list', input: {} }).success).toBe(true);
    expect(WsRequestSchema.safeParse({ id: 1.5, channel: 'jobs:list' }).success).toBe(false);
    expect(WsRequestSchema.safeParse({ id: 'a', channel: 'jobs:list', extra: 1 }).success).toBe(false);
  });
});
