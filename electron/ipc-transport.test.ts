// The Electron IPC transport, run in Node over an in-process ipcMain/ipcRenderer pair because the
// Electron binary cannot be installed here (e2e/electron.spec.ts runs the real app where it can):
// the shared contract suite through preload bridge → pair → transport → dispatch → a real agent,
// then what only IPC has to refuse — foreign frames, oversized or non-data input — with the agent serving on.
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bridgeClient } from '../agent-core/api/bridge.js';
import type { AgentEvent, ApiClient } from '../agent-core/api/contract.js';
import { MAX_MESSAGE_BYTES } from '../agent-core/api/socket-protocol.js';
import { openAgent, type Agent } from '../agent/agent.js';
import { runConsoleSuite, runContractSuite, type MakeClient } from '../test-support/api-contract-suite.js';
import { Scratch } from '../test-support/disk.js';
import { CALL_CHANNEL, EVENT_CHANNEL } from './ipc-channels.js';
import { encodedSizeBytes, serveAgentOverIpc, type IpcTransport } from './ipc-transport.js';
import { createBridge } from './preload-bridge.js';
import { isTrustedRendererUrl, RENDERER_ENTRY_URL } from './security.js';
import { connectRenderer, InProcessIpcMain, type RendererInPair } from './testing/ipc-pair.js';

const RENDERER_DIR = path.resolve(import.meta.dirname, '..', 'dist', 'renderer');
const isTrustedUrl = (url: string) => isTrustedRendererUrl(url, RENDERER_DIR);

const overIpc: MakeClient = async ({ stateDir }) => {
  const agent = await openAgent({ stateDir });
  const ipcMain = new InProcessIpcMain();
  const renderer = connectRenderer(ipcMain, RENDERER_ENTRY_URL);
  const transport = serveAgentOverIpc({ ipcMain, agent, windows: () => [renderer.webContents], isTrustedUrl, log: () => undefined });
  const client = bridgeClient(createBridge(renderer.ipcRenderer));
  return {
    client,
    close: async () => {
      await client.close();
      transport.close();
      renderer.destroy();
      await agent.close();
    },
  };
};

runContractSuite('Electron IPC (in-process ipcMain/ipcRenderer pair: no Electron binary here)', overIpc);
runConsoleSuite('Electron IPC (in-process ipcMain/ipcRenderer pair: no Electron binary here)', overIpc);

describe('the IPC transport (in-process pair: no Electron binary here)', () => {
  const scratch = new Scratch('strata-ipc-');
  const lines: string[] = [];
  let agent: Agent;
  let ipcMain: InProcessIpcMain;
  let transport: IpcTransport;
  const renderers: RendererInPair[] = [];
  let ours: RendererInPair;
  let client: ApiClient;

  const open = (url: string): RendererInPair => {
    const r = connectRenderer(ipcMain, url);
    renderers.push(r);
    return r;
  };
  const stillServing = async () => {
    const reply = await client.call('agent:hello', {});
    expect(reply.ok).toBe(true);
  };
  /** The log lines written since `from`. */
  const linesSince = (from: number) => lines.slice(from);

  beforeAll(async () => {
    agent = await openAgent({ stateDir: scratch.path('state') });
    ipcMain = new InProcessIpcMain();
    transport = serveAgentOverIpc({ ipcMain, agent, windows: () => renderers.map((r) => r.webContents), isTrustedUrl, log: (line) => lines.push(line) });
    ours = open(RENDERER_ENTRY_URL);
    client = bridgeClient(createBridge(ours.ipcRenderer));
  });

  afterAll(async () => {
    transport?.close();
    await agent?.close();
    scratch.cleanup();
  });

  it('answers a call from the console window with the agent’s reply', async () => {
    const reply = await client.call('agent:hello', {});
    expect(reply).toMatchObject({ ok: true, value: { stateDir: scratch.path('state') } });
    expect(lines).toEqual([]);
  });

  it('registers one handler only, so a second transport on the same ipcMain is refused', () => {
    expect(() => serveAgentOverIpc({ ipcMain, agent, windows: () => [], isTrustedUrl, log: () => undefined })).toThrow(`second handler for '${CALL_CHANNEL}'`);
  });

  it('refuses an unknown channel, logs it, and serves the next call', async () => {
    const before = lines.length;
    expect(await client.callUnchecked('disks:wipe', {})).toMatchObject({ ok: false, error: { code: 'NotFound' } });
    expect(linesSince(before)).toEqual([expect.stringMatching(/^ipc "strata:\/\/console\/index.html": rejected call to unknown channel "disks:wipe"$/)]);
    await stillServing();
  });

  it('refuses a schema violation naming the field, logs it, and serves the next call', async () => {
    const before = lines.length;
    const reply = await client.callUnchecked('sources:inspect', { path: 42 });
    expect(reply).toMatchObject({ ok: false, error: { code: 'InvalidInput' } });
    expect(!reply.ok && reply.error.message).toContain('path');
    expect(linesSince(before)).toHaveLength(1);
    expect(linesSince(before)[0]).toContain('rejected sources:inspect');
    await stillServing();
  });

  it('refuses calls from a page that is not the console — another site, a file outside the bundle, a closed frame — and logs each', async () => {
    const before = lines.length;
    const foreign = [
      open('https://evil.example/index.html'),
      open(pathToFileURL('/tmp/elsewhere/index.html').href),
      open('strata://other-host/index.html'),
      open('strata://console.evil.example/index.html'),
    ];
    for (const r of foreign) {
      const reply = await createBridge(r.ipcRenderer).call('agent:hello', {});
      expect(reply).toMatchObject({ ok: false, error: { code: 'PermissionDenied' } });
    }
    const navigated = open(RENDERER_ENTRY_URL);
    navigated.navigate('https://evil.example/');
    expect(await createBridge(navigated.ipcRenderer).call('agent:hello', {})).toMatchObject({ ok: false, error: { code: 'PermissionDenied' } });
    const closed = open(RENDERER_ENTRY_URL);
    closed.destroy();
    expect(await createBridge(closed.ipcRenderer).call('agent:hello', {})).toMatchObject({ ok: false, error: { code: 'PermissionDenied' } });
    const logged = linesSince(before);
    expect(logged).toHaveLength(6);
    expect(logged.every((l) => l.endsWith('refused a call from a page that is not the Strata console'))).toBe(true);
    expect(logged[0]).toContain('"https://evil.example/index.html"');
    expect(logged[5]).toContain('a frame that has gone');
    await stillServing();
  });

  it(`refuses a call over ${MAX_MESSAGE_BYTES} bytes, logs it, and serves the next call`, async () => {
    const before = lines.length;
    const pad = 'x'.repeat(MAX_MESSAGE_BYTES);
    const reply = await client.callUnchecked('agent:hello', { pad });
    expect(reply).toMatchObject({ ok: false, error: { code: 'InvalidInput' } });
    expect(!reply.ok && reply.error.message).toContain(String(MAX_MESSAGE_BYTES));
    expect(linesSince(before)).toEqual([expect.stringContaining(`over ${MAX_MESSAGE_BYTES}`)]);
    // Just under the limit is passed on, and the schema answers (agent:hello takes no fields).
    const under = 'x'.repeat(MAX_MESSAGE_BYTES - 100);
    expect(encodedSizeBytes('agent:hello', { pad: under })).toBeLessThanOrEqual(MAX_MESSAGE_BYTES);
    expect(await client.callUnchecked('agent:hello', { pad: under })).toMatchObject({ ok: false, error: { code: 'InvalidInput', message: expect.stringContaining('pad') } });
    await stillServing();
  });

  it('refuses input that is not JSON data, and a channel that is not a string', async () => {
    const before = lines.length;
    // Structured clone carries BigInt and cycles; the contract is JSON, so they stop at the transport.
    expect(await client.callUnchecked('sources:inspect', { path: 1n })).toMatchObject({ ok: false, error: { code: 'InvalidInput', message: expect.stringContaining('JSON data') } });
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(await client.callUnchecked('sources:inspect', cyclic)).toMatchObject({ ok: false, error: { code: 'InvalidInput' } });
    expect(await ours.ipcRenderer.invoke(CALL_CHANNEL, 42, {})).toMatchObject({ ok: false, error: { code: 'InvalidInput' } });
    expect(linesSince(before)).toHaveLength(3);
    await stillServing();
  });

  it('answers input that cannot be cloned (a function) with InvalidInput from the bridge, without reaching the agent', async () => {
    const before = lines.length;
    const reply = await client.callUnchecked('sources:inspect', { path: () => '/dev/sda' });
    expect(reply).toMatchObject({ ok: false, error: { code: 'InvalidInput', message: expect.stringContaining('not data') } });
    expect(linesSince(before)).toEqual([]);
    await stillServing();
  });

  it('sends agent events to every console window, and not to foreign or closed ones', async () => {
    const second = open(RENDERER_ENTRY_URL);
    const foreign = open('https://evil.example/');
    const gone = open(RENDERER_ENTRY_URL);
    gone.destroy();
    const got = new Map<RendererInPair, AgentEvent[]>();
    for (const r of [ours, second, foreign]) {
      const list: AgentEvent[] = [];
      got.set(r, list);
      r.ipcRenderer.on(EVENT_CHANNEL, (_e, event) => list.push(event as AgentEvent));
    }
    const start = await client.call('jobs:start-verify', { repo: scratch.path('no-such-repo') });
    if (!start.ok) throw new Error(start.error.message);
    const { jobId } = start.value;
    const finishedIn = (r: RendererInPair) => got.get(r)!.find((e) => e.event === 'jobs:finished' && e.payload.jobId === jobId);
    for (let i = 0; i < 200 && (!finishedIn(ours) || !finishedIn(second)); i++) await new Promise((r) => setTimeout(r, 50));
    expect(finishedIn(ours)).toMatchObject({ event: 'jobs:finished', payload: { jobId, state: 'failed', error: { code: 'NotFound' } } });
    expect(finishedIn(second)).toEqual(finishedIn(ours));
    expect(got.get(foreign)).toEqual([]);
    expect(lines.filter((l) => l.includes('could not deliver'))).toEqual([]);
  });

  it('a listener removed through the bridge gets no more events', async () => {
    const bridge = createBridge(ours.ipcRenderer);
    const seen: AgentEvent[] = [];
    const stop = bridge.onEvent((e) => seen.push(e));
    stop();
    const start = await client.call('jobs:start-verify', { repo: scratch.path('no-such-repo-2') });
    if (!start.ok) throw new Error(start.error.message);
    const all: AgentEvent[] = [];
    const stopAll = bridge.onEvent((e) => all.push(e));
    for (let i = 0; i < 200 && !all.some((e) => e.event === 'jobs:finished'); i++) await new Promise((r) => setTimeout(r, 50));
    stopAll();
    expect(all.some((e) => e.event === 'jobs:finished')).toBe(true);
    expect(seen).toEqual([]);
  });

  it('after close() the handler is gone: a raw invoke fails as Electron’s does, and the bridge answers Internal', async () => {
    transport.close();
    await expect(ours.ipcRenderer.invoke(CALL_CHANNEL, 'agent:hello', {})).rejects.toThrow(`Error invoking remote method '${CALL_CHANNEL}': Error: No handler registered for '${CALL_CHANNEL}'`);
    expect(await client.call('agent:hello', {})).toMatchObject({ ok: false, error: { code: 'Internal', retryable: true } });
    transport = serveAgentOverIpc({ ipcMain, agent, windows: () => renderers.map((r) => r.webContents), isTrustedUrl, log: (line) => lines.push(line) });
    await stillServing();
  });
});
