// Which agent the console uses: the decision from what was probed, the probe against a real agent
// socket, and the relay that makes the system agent look like the embedded one to dispatch().
import { writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_VERSION } from '../agent-core/api/contract.js';
import { StrataError } from '../agent-core/api/errors.js';
import { dispatch } from '../agent/dispatch.js';
import { startAgentServer, type AgentServer } from '../agent/server/agent-server.js';
import { connectSocketClient } from '../agent/server/socket-client.js';
import { Scratch } from '../test-support/disk.js';
import { chooseAgent, DEFAULT_SYSTEM_AGENT_URL, probeSystemAgent, remoteAgent, requestedMode, type AgentProbe } from './agent-choice.js';

const TOKEN = 'a'.repeat(64);
const probe = (over: Partial<AgentProbe> = {}): AgentProbe => ({ requested: 'auto', url: 'http://127.0.0.1:7000', token: { value: TOKEN }, health: { apiVersion: API_VERSION }, ...over });

describe('choosing the agent', () => {
  it('uses the system agent when its token is readable and it answers with our API version', () => {
    expect(chooseAgent(probe())).toMatchObject({ mode: 'system', url: 'http://127.0.0.1:7000', token: TOKEN });
  });

  it('embeds one otherwise, saying why', () => {
    expect(chooseAgent(probe({ url: null }))).toMatchObject({ mode: 'embedded', reason: expect.stringContaining('STRATA_AGENT_URL') });
    expect(chooseAgent(probe({ token: { error: 'EACCES' } }))).toMatchObject({ mode: 'embedded', reason: expect.stringContaining('EACCES') });
    expect(chooseAgent(probe({ health: { error: 'ECONNREFUSED' } }))).toMatchObject({ mode: 'embedded', reason: expect.stringContaining('does not answer: ECONNREFUSED') });
    expect(chooseAgent(probe({ health: null }))).toMatchObject({ mode: 'embedded' });
    expect(chooseAgent(probe({ health: { apiVersion: API_VERSION + 1 } }))).toMatchObject({ mode: 'embedded', reason: expect.stringContaining(`API ${API_VERSION + 1}`) });
    expect(chooseAgent(probe({ requested: 'embedded' }))).toMatchObject({ mode: 'embedded', reason: 'STRATA_AGENT=embedded' });
  });

  it('fails with an actionable error when the system agent was demanded and cannot be used', () => {
    expect(() => chooseAgent(probe({ requested: 'system', health: { error: 'ECONNREFUSED' } }))).toThrow(StrataError);
    expect(() => chooseAgent(probe({ requested: 'system', token: { error: 'ENOENT' } }))).toThrow(/start the service \(strata agent\)/);
    expect(chooseAgent(probe({ requested: 'system' })).mode).toBe('system');
  });

  it('reads the request from STRATA_AGENT', () => {
    expect(requestedMode({ STRATA_AGENT: 'system' })).toBe('system');
    expect(requestedMode({ STRATA_AGENT: 'embedded' })).toBe('embedded');
    expect(requestedMode({ STRATA_AGENT: 'bogus' })).toBe('auto');
    expect(requestedMode({})).toBe('auto');
  });
});

describe('the system agent over its socket', () => {
  const scratch = new Scratch('strata-choice-');
  let server: AgentServer;

  beforeAll(async () => {
    server = await startAgentServer({ stateDir: scratch.path('state'), log: () => undefined });
  });

  afterAll(async () => {
    await server?.close();
    scratch.cleanup();
  });

  it('is found by the probe when its token is readable and its health check answers', async () => {
    const found = await probeSystemAgent({ env: { STRATA_AGENT_URL: server.url }, tokenFile: scratch.path('state/agent.token') });
    expect(found).toEqual({ requested: 'auto', url: server.url, token: { value: server.token }, health: { apiVersion: API_VERSION } });
    expect(chooseAgent(found).mode).toBe('system');
  });

  it('is not used when the token cannot be read or nothing listens', async () => {
    const noToken = await probeSystemAgent({ env: { STRATA_AGENT_URL: server.url }, tokenFile: scratch.path('missing.token') });
    expect(noToken.token).toEqual({ error: 'ENOENT' });
    expect(chooseAgent(noToken).mode).toBe('embedded');
    writeFileSync(scratch.path('bad.token'), 'not a token\n');
    expect((await probeSystemAgent({ env: { STRATA_AGENT_URL: server.url }, tokenFile: scratch.path('bad.token') })).token).toEqual({ error: 'the file does not hold a token' });
    const nobody = await probeSystemAgent({ env: { STRATA_AGENT_URL: 'http://127.0.0.1:1' }, tokenFile: scratch.path('state/agent.token') });
    expect(nobody.health).toMatchObject({ error: expect.any(String) });
    expect(chooseAgent(nobody).mode).toBe('embedded');
    // Without STRATA_AGENT_URL the console looks where the systemd unit runs the service.
    expect(await probeSystemAgent({ env: {}, tokenFile: scratch.path('missing.token') })).toMatchObject({ url: DEFAULT_SYSTEM_AGENT_URL, health: null });
  });

  it('is relayed through dispatch() like the embedded agent: values, typed errors and events', async () => {
    const client = await connectSocketClient({ url: server.url, token: server.token });
    try {
      const agent = remoteAgent(client);
      const lines: string[] = [];
      expect(await dispatch(agent.handlers, 'agent:hello', {}, (l) => lines.push(l))).toMatchObject({ ok: true, value: { apiVersion: API_VERSION, stateDir: scratch.path('state') } });
      expect(await dispatch(agent.handlers, 'sources:inspect', { path: scratch.path('nope.img') }, (l) => lines.push(l))).toMatchObject({ ok: false, error: { code: 'NotFound' } });
      expect(await dispatch(agent.handlers, 'disks:wipe', {}, (l) => lines.push(l))).toMatchObject({ ok: false, error: { code: 'NotFound' } });
      expect(lines).toEqual([expect.stringContaining('unknown channel')]);
      const events: string[] = [];
      const stop = agent.onEvent((e) => events.push(e.event));
      const started = await dispatch(agent.handlers, 'jobs:start-verify', { repo: scratch.path('no-repo') }, () => undefined);
      expect(started.ok).toBe(true);
      for (let i = 0; i < 200 && !events.includes('jobs:finished'); i++) await new Promise((r) => setTimeout(r, 50));
      stop();
      expect(events).toContain('jobs:finished');
    } finally {
      await client.close();
    }
  });
});
