// The socket transport on real sockets: the contract suite, then what only a socket has to refuse —
// missing or wrong tokens, foreign Origins, oversized and malformed messages — with the agent serving on.
import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { API_VERSION, type Reply } from '../../agent-core/api/contract.js';
import type { Job } from '../../agent-core/api/job.js';
import { MAX_MESSAGE_BYTES, TOKEN_SUBPROTOCOL_PREFIX, WS_SUBPROTOCOL } from '../../agent-core/api/socket-protocol.js';
import { EventLog, makeExt4Image, runConsoleSuite, runContractSuite, valueOf, type MakeClient } from '../../test-support/api-contract-suite.js';
import { Scratch } from '../../test-support/disk.js';
import { startAgentServer, type AgentServer } from './agent-server.js';
import { connectSocketClient } from './socket-client.js';

const overSocket: MakeClient = async ({ stateDir }) => {
  const server = await startAgentServer({ stateDir, log: () => undefined });
  const client = await connectSocketClient({ url: server.url, token: server.token });
  return {
    client,
    close: async () => {
      await client.close();
      await server.close();
    },
  };
};

runContractSuite('the local WebSocket', overSocket);
runConsoleSuite('the local WebSocket', overSocket);

/** Opens a WebSocket and resolves with how it ended: open, or the HTTP status that refused it. */
function tryConnect(server: AgentServer, protocols: string[], origin?: string): Promise<{ opened: true; ws: WebSocket } | { opened: false; status: number }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${server.url.replace('http', 'ws')}/api/ws`, protocols, origin ? { origin } : {});
    ws.once('open', () => resolve({ opened: true, ws }));
    ws.once('unexpected-response', (_req, res) => {
      resolve({ opened: false, status: res.statusCode ?? 0 });
      ws.terminate();
    });
    ws.once('error', reject);
  });
}

function nextMessage(ws: WebSocket): Promise<unknown> {
  return new Promise((resolve) => ws.once('message', (data) => resolve(JSON.parse(data.toString()))));
}

describe('the agent socket', () => {
  const scratch = new Scratch('strata-socket-');
  const lines: string[] = [];
  let server: AgentServer;
  const api = (p: string) => `${server.url}${p}`;
  const call = (channel: string, body: string, headers: Record<string, string> = {}) =>
    fetch(api(`/api/call/${channel}`), { method: 'POST', body, headers: { authorization: `Bearer ${server.token}`, 'content-type': 'application/json', ...headers } });
  const stillServing = async () => {
    const res = await call('agent:hello', '{}');
    expect(res.status).toBe(200);
    expect(((await res.json()) as { ok: boolean }).ok).toBe(true);
  };

  beforeAll(async () => {
    server = await startAgentServer({ stateDir: scratch.path('state'), log: (line) => lines.push(line) });
  });

  afterAll(async () => {
    await server?.close();
    scratch.cleanup();
  });

  it('listens on loopback and answers health without a token', async () => {
    expect(server.url).toBe(`http://127.0.0.1:${server.port}`);
    const res = await fetch(api('/api/health'));
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ok: true, apiVersion: API_VERSION });
  });

  it('keeps the token 0600 in the state directory and reuses it after a restart', async () => {
    const file = scratch.path('state/agent.token');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(server.token).toMatch(/^[0-9a-f]{64}$/);
    const again = await startAgentServer({ stateDir: scratch.path('state'), log: () => undefined });
    try {
      expect(again.token).toBe(server.token);
      expect(again.port).not.toBe(server.port);
    } finally {
      await again.close();
    }
  });

  it('refuses a request whose Host is not its own (DNS rebinding), even with the token', async () => {
    const status = (host: string) =>
      new Promise<number>((resolve, reject) => {
        const req = http.request({ host: '127.0.0.1', port: server.port, path: '/api/call/agent:hello', method: 'POST', headers: { host, authorization: `Bearer ${server.token}` } }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        req.end('{}');
      });
    expect(await status(`attacker.example:${server.port}`)).toBe(421);
    expect(lines.some((l) => l.includes('foreign Host'))).toBe(true);
    expect(await status(`localhost:${server.port}`)).toBe(200);
  });

  it('serves the console bundle with its CSP, never a file outside it, and the app for unknown routes', async () => {
    const bundle = scratch.path('bundle');
    mkdirSync(path.join(bundle, 'assets'), { recursive: true });
    writeFileSync(path.join(bundle, 'index.html'), '<!doctype html><title>console</title>');
    writeFileSync(path.join(bundle, 'assets', 'app.js'), 'console.log(1)');
    writeFileSync(scratch.path('secret.txt'), 'not for browsers');
    const withConsole = await startAgentServer({ stateDir: scratch.path('state'), log: () => undefined, staticDir: bundle });
    try {
      expect(withConsole.consoleUrl).toBe(`${withConsole.url}/#token=${withConsole.token}`);
      const index = await fetch(`${withConsole.url}/`);
      expect(index.status).toBe(200);
      expect(index.headers.get('content-security-policy')).toContain("script-src 'self'");
      expect(await index.text()).toContain('<title>console</title>');
      const js = await fetch(`${withConsole.url}/assets/app.js`);
      expect(js.headers.get('content-type')).toMatch(/^text\/javascript/);
      expect((await fetch(`${withConsole.url}/sources/anything`)).status).toBe(200);
      expect((await fetch(`${withConsole.url}/assets/missing.js`)).status).toBe(404);
      expect((await fetch(`${withConsole.url}/%2e%2e/secret.txt`)).status).toBe(404);
      expect((await fetch(`${withConsole.url}/..%2fsecret.txt`)).status).toBe(404);
    } finally {
      await withConsole.close();
    }
  });

  it('answers a call over HTTP with the bearer token', async () => {
    const res = await call('agent:hello', '{}');
    expect(res.status).toBe(200);
    const reply = (await res.json()) as { ok: true; value: { apiVersion: number } };
    expect(reply.value.apiVersion).toBe(API_VERSION);
  });

  it('refuses HTTP calls without a token or with a wrong one, logs them, and keeps serving', async () => {
    const none = await fetch(api('/api/call/agent:hello'), { method: 'POST', body: '{}' });
    expect(none.status).toBe(401);
    expect(await none.json()).toMatchObject({ ok: false, error: { code: 'PermissionDenied' } });
    const wrong = await call('agent:hello', '{}', { authorization: `Bearer ${'0'.repeat(64)}` });
    expect(wrong.status).toBe(401);
    const otherRoute = await fetch(api('/api/anything'));
    expect(otherRoute.status).toBe(401);
    expect(lines.filter((l) => l.includes('bearer token')).length).toBeGreaterThanOrEqual(3);
    expect(lines.join('\n')).not.toContain(server.token);
    await stillServing();
  });

  it('refuses a foreign Origin even with the token, and accepts its own', async () => {
    const foreign = await call('agent:hello', '{}', { origin: 'http://evil.example' });
    expect(foreign.status).toBe(403);
    expect(lines.at(-1)).toContain('foreign Origin');
    const own = await call('agent:hello', '{}', { origin: `http://localhost:${server.port}` });
    expect(own.status).toBe(200);
  });

  it('refuses malformed JSON and oversized bodies over HTTP with typed errors', async () => {
    const bad = await call('agent:hello', '{not json');
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ ok: false, error: { code: 'InvalidInput' } });
    const big = await call('agent:hello', JSON.stringify({ pad: 'x'.repeat(MAX_MESSAGE_BYTES) }));
    expect(big.status).toBe(413);
    await stillServing();
  });

  it('refuses a WebSocket without a token, with a wrong one, or from a foreign Origin', async () => {
    expect(await tryConnect(server, [WS_SUBPROTOCOL])).toEqual({ opened: false, status: 401 });
    expect(await tryConnect(server, [WS_SUBPROTOCOL, `${TOKEN_SUBPROTOCOL_PREFIX}${'f'.repeat(64)}`])).toEqual({ opened: false, status: 401 });
    const good = [WS_SUBPROTOCOL, `${TOKEN_SUBPROTOCOL_PREFIX}${server.token}`];
    expect(await tryConnect(server, good, 'http://evil.example')).toEqual({ opened: false, status: 403 });
    const own = await tryConnect(server, good, `http://127.0.0.1:${server.port}`);
    expect(own.opened).toBe(true);
    if (own.opened) {
      expect(own.ws.protocol).toBe(WS_SUBPROTOCOL);
      own.ws.close();
    }
    await stillServing();
  });

  it('closes a connection that sends an oversized frame and keeps serving others', async () => {
    const result = await tryConnect(server, [WS_SUBPROTOCOL, `${TOKEN_SUBPROTOCOL_PREFIX}${server.token}`]);
    if (!result.opened) throw new Error(`refused with ${result.status}`);
    const closed = new Promise<number>((resolve) => result.ws.once('close', (code) => resolve(code)));
    result.ws.on('error', () => undefined);
    result.ws.send(JSON.stringify({ id: 1, channel: 'agent:hello', input: { pad: 'x'.repeat(MAX_MESSAGE_BYTES) } }));
    expect(await closed).toBe(1009);
    const other = await connectSocketClient({ url: server.url, token: server.token });
    expect((await other.call('agent:hello', {})).ok).toBe(true);
    await other.close();
  });

  it('answers malformed WebSocket messages with typed errors, logs them, and keeps the connection', async () => {
    const result = await tryConnect(server, [WS_SUBPROTOCOL, `${TOKEN_SUBPROTOCOL_PREFIX}${server.token}`]);
    if (!result.opened) throw new Error(`refused with ${result.status}`);
    const { ws } = result;
    const before = lines.length;
    let answer = nextMessage(ws);
    ws.send('{oops');
    expect(await answer).toMatchObject({ id: null, reply: { ok: false, error: { code: 'InvalidInput' } } });
    answer = nextMessage(ws);
    ws.send(JSON.stringify({ id: 7, chanel: 'agent:hello' }));
    expect(await answer).toMatchObject({ id: 7, reply: { ok: false, error: { code: 'InvalidInput' } } });
    answer = nextMessage(ws);
    ws.send(JSON.stringify({ id: 8, channel: 'nope:nothing', input: {} }));
    expect(await answer).toMatchObject({ id: 8, reply: { ok: false, error: { code: 'NotFound' } } });
    answer = nextMessage(ws);
    ws.send(JSON.stringify({ id: 9, channel: 'agent:hello', input: {} }));
    expect(await answer).toMatchObject({ id: 9, reply: { ok: true } });
    expect(lines.length - before).toBe(3);
    ws.close();
  });

  it('runs a job to the end after the client that started it has gone', async () => {
    const image = makeExt4Image(scratch, 'gone.img', 32, 5);
    const repo = scratch.path('repo-gone');
    const first = await connectSocketClient({ url: server.url, token: server.token });
    valueOf(await first.call('repository:init', { repo, encryption: 'none' }));
    const { jobId } = valueOf(await first.call('jobs:start-backup', { source: image, repo }));
    await first.close();
    const second = await connectSocketClient({ url: server.url, token: server.token });
    const log = new EventLog(second);
    try {
      const current = valueOf(await second.call('jobs:list', {})).find((j) => j.id === jobId);
      if (current?.state !== 'succeeded') await log.finished(jobId);
      const job = valueOf(await second.call('jobs:list', {})).find((j) => j.id === jobId);
      expect(job?.state).toBe('succeeded');
      expect(valueOf(await second.call('snapshots:list', { repo }))).toHaveLength(1);
    } finally {
      log.close();
      await second.close();
    }
  });

  it('answers jobs:wait over plain HTTP with the finished job, so a client needs no event stream', async () => {
    const image = makeExt4Image(scratch, 'wait.img', 32, 6);
    const repo = scratch.path('repo-wait');
    const post = async (channel: string, input: unknown) => (await (await call(channel, JSON.stringify(input))).json()) as Reply<unknown>;
    expect(await post('repository:init', { repo, encryption: 'none' })).toMatchObject({ ok: true });
    const started = await post('jobs:start-backup', { source: image, repo });
    const { jobId } = valueOf(started as Reply<{ jobId: string }>);
    let job = valueOf((await post('jobs:wait', { jobId })) as Reply<Job>);
    // A long poll may come back before the end (its timeout); the client then asks again.
    while (job.finishedAt === null) job = valueOf((await post('jobs:wait', { jobId })) as Reply<Job>);
    expect(job).toMatchObject({ id: jobId, kind: 'backup', state: 'succeeded', error: null, result: { kind: 'backup' } });
    const snapshots = valueOf((await post('snapshots:list', { repo })) as Reply<{ id: string }[]>);
    expect(snapshots).toHaveLength(1);
    expect(job.result?.kind === 'backup' && job.result.snapshot.id).toBe(snapshots[0]!.id);
    expect(await post('jobs:wait', { jobId: '00000000-0000-4000-8000-000000000000' })).toMatchObject({ ok: false, error: { code: 'NotFound' } });
    expect(await post('jobs:wait', { jobId, timeoutMs: 300_001 })).toMatchObject({ ok: false, error: { code: 'InvalidInput' } });
  });
});
