// Finding a running agent through its published agent.url: a live one is connected to, a stale
// file or a token that does not match is refused with a reason, and only the publisher's own
// address is withdrawn.
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Scratch } from '../../test-support/disk.js';
import { startAgentServer, type AgentServer } from './agent-server.js';
import { publishAgentUrl, reachableUrl, readAgentUrl, URL_FILE_NAME, withdrawAgentUrl } from './agent-url.js';
import { findAgent, requireAgent } from './find-agent.js';

describe('findAgent', () => {
  const scratch = new Scratch('strata-find-agent-');
  const stateDir = scratch.path('state');
  let server: AgentServer;

  beforeAll(async () => {
    server = await startAgentServer({ stateDir, log: () => undefined });
  });

  afterAll(async () => {
    await server.close();
    scratch.cleanup();
  });

  it('without agent.url there is no agent, and requireAgent says to start one in one sentence', async () => {
    const found = await findAgent(scratch.path('elsewhere'));
    expect(found.client).toBeNull();
    if (!found.client) expect(found).toMatchObject({ code: 'NotFound', reason: expect.stringMatching(/agent\.url/) });
    await expect(requireAgent(scratch.path('elsewhere'))).rejects.toMatchObject({
      code: 'NotFound',
      message: expect.stringMatching(/^No Strata agent is running for .*; start `strata agent --state-dir .*` \(or the systemd unit strata-agent\) first\.$/),
    });
  });

  it('a published address is written 0600 and connects to the agent with its token', async () => {
    await publishAgentUrl(stateDir, server.url);
    const file = path.join(stateDir, URL_FILE_NAME);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readFileSync(file, 'utf8')).toBe(`${server.url}\n`);
    const found = await findAgent(stateDir);
    expect(found.client).not.toBeNull();
    if (found.client) {
      const hello = await found.client.call('agent:hello', {});
      expect(hello.ok && hello.value.stateDir).toBe(stateDir);
      await found.client.close();
    }
  });

  it('a stale address (nothing answers) is ignored with a reason', async () => {
    const dir = scratch.path('stale');
    mkdirSync(dir);
    writeFileSync(path.join(dir, URL_FILE_NAME), 'http://127.0.0.1:9\n');
    const found = await findAgent(dir, { timeoutMs: 500 });
    expect(found.client).toBeNull();
    if (!found.client) expect(found).toMatchObject({ code: 'NotFound', reason: expect.stringMatching(/nothing answers at http:\/\/127\.0\.0\.1:9/) });
  });

  it("a token that is not the agent's is refused as PermissionDenied", async () => {
    const dir = scratch.path('wrong-token');
    mkdirSync(dir);
    writeFileSync(path.join(dir, URL_FILE_NAME), `${server.url}\n`);
    writeFileSync(path.join(dir, 'agent.token'), `${'0'.repeat(64)}\n`);
    const found = await findAgent(dir);
    expect(found.client).toBeNull();
    if (!found.client) expect(found.code).toBe('PermissionDenied');
    await expect(requireAgent(dir)).rejects.toMatchObject({ code: 'PermissionDenied', message: expect.stringMatching(/refused the token in .*agent\.token; restart the agent/) });
  });

  it('withdrawing removes only the address this agent published', async () => {
    const dir = scratch.path('withdraw');
    await publishAgentUrl(dir, 'http://127.0.0.1:1234');
    await withdrawAgentUrl(dir, 'http://127.0.0.1:5678');
    expect(await readAgentUrl(dir)).toBe('http://127.0.0.1:1234');
    await withdrawAgentUrl(dir, 'http://127.0.0.1:1234');
    expect(await readAgentUrl(dir)).toBeNull();
  });

  it('an agent listening on every address is published as loopback', () => {
    expect(reachableUrl('http://0.0.0.0:7381')).toBe('http://127.0.0.1:7381');
    expect(reachableUrl('http://[::]:7381')).toBe('http://[::1]:7381');
  });
});
