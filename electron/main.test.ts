// The app's wiring in main.ts, run in Node against a recording stand-in for the 'electron' module
// (testing/fake-electron.ts) because the Electron binary cannot be installed here; the real app is
// covered by e2e/electron.spec.ts where it can. What is real: main.ts itself, its IPC transport and
// a real embedded agent on a temporary state directory, reached from a "window" through the preload bridge.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { AgentEvent } from '../agent-core/api/contract.js';
import { Scratch } from '../test-support/disk.js';
import { CALL_CHANNEL } from './ipc-channels.js';
import { createBridge } from './preload-bridge.js';
import { CONTENT_SECURITY_POLICY } from './security.js';
import { connectRenderer } from './testing/ipc-pair.js';
import { fake, FakeEvent } from './testing/fake-electron.js';

vi.mock('electron', async () => (await import('./testing/fake-electron.js')).fakeElectronModule);

const scratch = new Scratch('strata-main-');
const stateDir = scratch.path('state');
const logged: string[] = [];

async function until<T>(found: () => T | undefined | false, what: string, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = found();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`waited ${timeoutMs} ms for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('the main process (stand-in electron module: no Electron binary here)', () => {
  beforeAll(async () => {
    process.env.STRATA_STATE_DIR = stateDir;
    process.env.STRATA_AGENT = 'embedded';
    const write = process.stderr.write.bind(process.stderr);
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array, ...rest: unknown[]) => {
      const text = String(chunk);
      if (text.startsWith('strata console: ')) {
        logged.push(text.slice('strata console: '.length).trimEnd());
        return true;
      }
      return write(chunk, ...(rest as []));
    });
    await import('./main.js');
  });

  afterAll(() => {
    vi.restoreAllMocks();
    delete process.env.STRATA_STATE_DIR;
    delete process.env.STRATA_AGENT;
    scratch.cleanup();
  });

  it('before the app is ready: names it, makes strata:// a privileged scheme, enables the sandbox, takes the single-instance lock', () => {
    expect(fake.app.calls).toEqual(['setName Strata', 'enableSandbox', 'requestSingleInstanceLock']);
    expect(fake.privilegedSchemes).toEqual([{ scheme: 'strata', privileges: { standard: true, secure: true, supportFetchAPI: true, corsEnabled: true } }]);
    expect(fake.windows).toEqual([]);
  });

  it('when ready, opens one isolated, sandboxed window with the preload, on strata://console/index.html', async () => {
    fake.app.ready();
    const window = await until(() => fake.windows[0], 'the window');
    expect(window.options.webPreferences).toMatchObject({ contextIsolation: true, sandbox: true, nodeIntegration: false, webSecurity: true, webviewTag: false });
    expect(window.options.webPreferences?.preload).toBe(path.join(import.meta.dirname, 'preload.cjs'));
    expect(window.options.show).toBe(false);
    await until(() => window.shown > 0, 'the window to show');
    expect(window.webContents.getURL()).toBe('strata://console/index.html');
    expect(fake.errorBoxes).toEqual([]);
    expect(logged).toContain('using the embedded agent (STRATA_AGENT=embedded)');
  });

  it('serves the renderer by its scheme with the CSP, and nothing else', async () => {
    const handler = fake.session.protocols.get('strata')!;
    const page = await handler(new Request('strata://console/index.html'));
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toBe(CONTENT_SECURITY_POLICY);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(await page.text()).toBe(readFileSync(path.resolve(import.meta.dirname, '..', 'renderer', 'index.html'), 'utf8'));
    expect((await handler(new Request('strata://console/no-such-file.js'))).status).toBe(404);
    expect((await handler(new Request('strata://console/index.html', { method: 'POST', body: 'x' }))).status).toBe(404);
    expect((await handler(new Request('strata://elsewhere/index.html'))).status).toBe(404);
  });

  it('cancels network requests, denies every permission and download, and puts the CSP on every response', () => {
    const cancelled = (url: string) => {
      let answer: { cancel: boolean } | undefined;
      fake.session.beforeRequest!({ url }, (a) => (answer = a));
      return answer?.cancel;
    };
    expect(cancelled('https://cdn.example/lib.js')).toBe(true);
    expect(cancelled('ws://127.0.0.1:9/')).toBe(true);
    expect(cancelled('strata://console/assets/app.js')).toBe(false);
    expect(logged).toContain('blocked a request to "https://cdn.example/lib.js"');
    let granted: boolean | undefined;
    fake.session.permissionRequest!({}, 'media', (g) => (granted = g));
    expect(granted).toBe(false);
    expect(fake.session.permissionCheck!({}, 'notifications')).toBe(false);
    let headers: Record<string, string[]> | undefined;
    fake.session.headersReceived!({ url: 'strata://console/', responseHeaders: { 'Content-Security-Policy': ['default-src *'] } }, (r) => (headers = r.responseHeaders));
    expect(headers).toEqual({ 'Content-Security-Policy': [CONTENT_SECURITY_POLICY] });
    const download = new FakeEvent();
    fake.session.emit('will-download', download);
    expect(download.defaultPrevented).toBe(true);
  });

  it('keeps the window on the console: navigation, redirects, new windows and webviews are refused and logged', () => {
    const contents = fake.windows[0]!.webContents;
    for (const name of ['will-navigate', 'will-redirect', 'will-attach-webview']) {
      const event = new FakeEvent('https://evil.example/page?secret=1');
      contents.emit(name, event);
      expect(event.defaultPrevented, name).toBe(true);
    }
    expect(contents.openHandler!({ url: 'https://evil.example/popup' })).toEqual({ action: 'deny' });
    expect(logged).toEqual(expect.arrayContaining(['blocked navigation to "https://evil.example/page"', 'blocked a redirect to "https://evil.example/page"', 'blocked a new window for "https://evil.example/popup"']));
  });

  it('answers the window’s calls through the preload bridge from the embedded agent, and refuses other pages', async () => {
    const bridge = createBridge(fake.windows[0]!.webContents.renderer.ipcRenderer);
    expect(await bridge.call('agent:hello', {})).toMatchObject({ ok: true, value: { stateDir } });
    const stranger = connectRenderer(fake.ipcMain, 'https://evil.example/');
    expect(await createBridge(stranger.ipcRenderer).call('agent:hello', {})).toMatchObject({ ok: false, error: { code: 'PermissionDenied' } });
    expect(logged.at(-1)).toBe('ipc "https://evil.example/": refused a call from a page that is not the Strata console');
  });

  it('puts a tray up, sends agent events to the window, and notifies when a job fails', async () => {
    expect(fake.trays).toHaveLength(1);
    const menu = await until(() => fake.menus.at(-1) as Array<{ label?: string }> | undefined, 'the tray menu');
    expect(menu.map((m) => m.label)).toEqual(expect.arrayContaining(['Back up now (add a disk in the console first)', 'Pause schedules', 'Open console', 'Quit Strata']));
    const renderer = fake.windows[0]!.webContents.renderer;
    const events: AgentEvent[] = [];
    createBridge(renderer.ipcRenderer).onEvent((e) => events.push(e));
    const started = await createBridge(renderer.ipcRenderer).call('jobs:start-verify', { repo: scratch.path('no-repo') });
    expect(started.ok).toBe(true);
    const note = await until(() => fake.notifications.find((n) => n.title === 'Verification failed'), 'the failure notification');
    expect(note).toMatchObject({ urgency: 'critical', body: expect.stringMatching(/\S/) });
    expect(events.map((e) => e.event)).toContain('jobs:finished');
    await until(() => fake.trays[0]!.tooltip.startsWith('Strata — Last verification failed'), 'the tray to show the failure');
  });

  it('stays in the tray when the window closes, and the tray and a second start open it again', async () => {
    fake.windows[0]!.close();
    expect(fake.app.calls).not.toContain('quit');
    fake.trays[0]!.emit('click');
    expect(fake.windows).toHaveLength(2);
    const second = fake.windows[1]!;
    await until(() => second.shown > 0, 'the new window to show');
    const before = second.shown;
    fake.app.emit('second-instance');
    expect(second.shown).toBe(before + 1);
    expect(fake.windows).toHaveLength(2);
  });

  it('on quit, stops serving and closes the agent before letting the app end', async () => {
    const event = new FakeEvent();
    fake.app.emit('will-quit', event);
    expect(event.defaultPrevented).toBe(true);
    expect(fake.trays[0]!.isDestroyed()).toBe(true);
    await until(() => fake.app.calls.includes('quit'), 'app.quit after the agent closed');
    const again = new FakeEvent();
    fake.app.emit('will-quit', again);
    expect(again.defaultPrevented).toBe(false);
    await expect(fake.windows[1]!.webContents.renderer.ipcRenderer.invoke(CALL_CHANNEL, 'agent:hello', {})).rejects.toThrow('No handler registered');
  });
});
