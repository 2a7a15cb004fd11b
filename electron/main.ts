// The Strata desktop app's main process: one instance, one hardened window on the renderer bundle,
// the agent (embedded, or the system agent when one answers) served to it over IPC, and a tray that
// keeps the app running with its window closed. Decisions live in the modules it wires together;
// this file is the glue to Electron, which cannot run in the Node tests (see electron/README.md).
import '../agent/io-threads.js';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { app, BrowserWindow, dialog, ipcMain, Menu, nativeImage, Notification, protocol, safeStorage, session, Tray, type NativeImage, type Session } from 'electron';
import { StrataError, toStrataError } from '../agent-core/api/errors.js';
import { openAgent } from '../agent/agent.js';
import { defaultStateDir } from '../agent/operations.js';
import { connectSocketClient } from '../agent/server/socket-client.js';
import { chooseAgent, probeSystemAgent, remoteAgent } from './agent-choice.js';
import { serveAgentOverIpc, type AgentLike } from './ipc-transport.js';
import { PasswordStore, rememberPasswordOnInit } from './secrets.js';
import {
  APP_SCHEME,
  describeUrl,
  isAllowedRequestUrl,
  isTrustedRendererUrl,
  pageHeaders,
  rendererFileFor,
  RENDERER_ENTRY_URL,
  SECURE_WEB_PREFERENCES,
  withCsp,
} from './security.js';
import { callThroughDispatch, ConsoleTray, menuTemplate, trayIconBitmap, type TrayTone } from './tray.js';

/** dist/electron/, where scripts/build-electron.mjs puts this file and the preload. */
const HERE = path.dirname(fileURLToPath(import.meta.url));
const RENDERER_DIR = path.resolve(HERE, '..', 'renderer');
const PRELOAD_FILE = path.join(HERE, 'preload.cjs');
const TRAY_ICON_PX = 32;

const log = (line: string): void => {
  process.stderr.write(`strata console: ${line}\n`);
};

// All before the app is ready. The name sets the user-data directory (and so the single-instance
// lock) when Electron is started on this file rather than on a packaged app.
app.setName('Strata');
protocol.registerSchemesAsPrivileged([{ scheme: APP_SCHEME, privileges: { standard: true, secure: true, supportFetchAPI: true, corsEnabled: true } }]);
app.enableSandbox();

let showWindow: () => void = () => undefined;

if (!app.requestSingleInstanceLock()) {
  // Another Strata console runs; it was told (second-instance) and shows its window.
  app.quit();
} else {
  app.on('second-instance', () => showWindow());
  main().catch((err: unknown) => {
    const e = toStrataError(err, 'Starting Strata');
    log(`${e.message}${e.code === 'Internal' && e.cause instanceof Error ? `\n${e.cause.stack ?? ''}` : ''}`);
    dialog.showErrorBox('Strata cannot start', e.message);
    app.exit(1);
  });
}

async function main(): Promise<void> {
  await app.whenReady();
  if (!existsSync(path.join(RENDERER_DIR, 'index.html'))) {
    throw new StrataError('NotFound', `The console's pages are missing (${RENDERER_DIR}/index.html); run "npm run build" and start Strata again.`);
  }
  hardenSession(session.defaultSession);

  const stateDir = process.env.STRATA_STATE_DIR || defaultStateDir();
  const passwords = new PasswordStore(stateDir, safeStorage);
  const { agent, close: closeAgent } = await connectAgent(stateDir, passwords);

  const transport = serveAgentOverIpc({
    ipcMain,
    agent,
    windows: () => BrowserWindow.getAllWindows().map((w) => w.webContents),
    isTrustedUrl: (url) => isTrustedRendererUrl(url, RENDERER_DIR),
    log,
  });

  let window: BrowserWindow | null = null;
  showWindow = () => {
    if (!window || window.isDestroyed()) window = createWindow();
    else {
      if (window.isMinimized()) window.restore();
      window.show();
      window.focus();
    }
  };

  const tray = startTray(agent, () => showWindow());
  // With a tray the app lives on when its last window closes; without one, closing the window quits.
  app.on('window-all-closed', () => {
    if (!tray) app.quit();
  });

  let stopped = false;
  app.on('will-quit', (event) => {
    if (stopped) return;
    event.preventDefault();
    stopped = true;
    tray?.controller.close();
    tray?.tray.destroy();
    transport.close();
    // Jobs belong to the agent: an embedded one cancels them and waits for them to stop.
    void closeAgent()
      .catch((err: unknown) => log(`closing the agent: ${err instanceof Error ? err.message : String(err)}`))
      .finally(() => app.quit());
  });

  showWindow();
}

/** The agent the console uses: the system agent if it answers, else one embedded on the state directory. */
async function connectAgent(stateDir: string, passwords: PasswordStore): Promise<{ agent: AgentLike; close: () => Promise<void> }> {
  const choice = chooseAgent(await probeSystemAgent({ env: process.env }));
  log(`using the ${choice.mode} agent (${choice.reason})`);
  if (choice.mode === 'system') {
    const client = await connectSocketClient({ url: choice.url, token: choice.token });
    return { agent: remoteAgent(client), close: () => client.close() };
  }
  const agent = await openAgent({
    stateDir,
    password: () => {
      try {
        return passwords.load() ?? process.env.STRATA_PASSWORD ?? null;
      } catch (err) {
        log(toStrataError(err).message);
        return process.env.STRATA_PASSWORD ?? null;
      }
    },
  });
  return { agent: { handlers: rememberPasswordOnInit(agent.handlers, passwords, log), onEvent: (l) => agent.onEvent(l) }, close: () => agent.close() };
}

function createWindow(): BrowserWindow {
  const window = new BrowserWindow({
    width: 1280,
    height: 840,
    minWidth: 880,
    minHeight: 560,
    title: 'Strata',
    show: false,
    autoHideMenuBar: true,
    webPreferences: { ...SECURE_WEB_PREFERENCES, preload: PRELOAD_FILE },
  });
  window.once('ready-to-show', () => window.show());
  window.loadURL(RENDERER_ENTRY_URL).catch((err: unknown) => log(`loading ${RENDERER_ENTRY_URL}: ${err instanceof Error ? err.message : String(err)}`));
  return window;
}

/** No network, no permissions, no downloads, our CSP on every response, and the renderer served from our scheme. */
function hardenSession(ses: Session): void {
  ses.setPermissionRequestHandler((_contents, permission, callback) => {
    log(`denied a request for the ${permission} permission`);
    callback(false);
  });
  ses.setPermissionCheckHandler(() => false);
  ses.on('will-download', (event) => event.preventDefault());
  ses.webRequest.onBeforeRequest((details, callback) => {
    const allowed = isAllowedRequestUrl(details.url, RENDERER_DIR);
    if (!allowed) log(`blocked a request to ${describeUrl(details.url)}`);
    callback({ cancel: !allowed });
  });
  ses.webRequest.onHeadersReceived((details, callback) => callback({ responseHeaders: withCsp(details.responseHeaders) }));
  ses.protocol.handle(APP_SCHEME, async (request) => {
    const file = request.method === 'GET' ? rendererFileFor(request.url, RENDERER_DIR) : null;
    if (file !== null) {
      try {
        return new Response(await readFile(file), { status: 200, headers: pageHeaders(file) });
      } catch {
        // not in the bundle: 404 below
      }
    }
    return new Response('Not found', { status: 404, headers: { 'content-type': 'text/plain; charset=utf-8' } });
  });
}

// Every web contents, including any a bug might create: no navigation away, no new windows, no webviews.
app.on('web-contents-created', (_event, contents) => {
  contents.on('will-navigate', (event) => {
    log(`blocked navigation to ${describeUrl(event.url)}`);
    event.preventDefault();
  });
  contents.on('will-redirect', (event) => {
    log(`blocked a redirect to ${describeUrl(event.url)}`);
    event.preventDefault();
  });
  contents.on('will-attach-webview', (event) => event.preventDefault());
  contents.setWindowOpenHandler(({ url }) => {
    log(`blocked a new window for ${describeUrl(url)}`);
    return { action: 'deny' };
  });
});

function startTray(agent: AgentLike, openConsole: () => void): { tray: Tray; controller: ConsoleTray } | null {
  const icon = (tone: TrayTone): NativeImage => nativeImage.createFromBitmap(trayIconBitmap(TRAY_ICON_PX, tone), { width: TRAY_ICON_PX, height: TRAY_ICON_PX });
  let tray: Tray;
  try {
    tray = new Tray(icon('idle'));
  } catch (err) {
    log(`no tray on this desktop (${err instanceof Error ? err.message : String(err)}); closing the window will quit`);
    return null;
  }
  tray.setToolTip('Strata');
  tray.on('click', openConsole);
  const controller: ConsoleTray = new ConsoleTray({
    call: callThroughDispatch(agent.handlers, log),
    onEvent: (listener) => agent.onEvent(listener),
    present: (menu, tooltip, tone) => {
      if (tray.isDestroyed()) return;
      tray.setContextMenu(Menu.buildFromTemplate(menuTemplate(menu, (action) => void controller.perform(action).catch((err: unknown) => log(`tray ${action}: ${String(err)}`)))));
      tray.setToolTip(tooltip);
      tray.setImage(icon(tone));
    },
    notify: (n) => {
      if (Notification.isSupported()) new Notification({ title: n.title, body: n.body, urgency: n.urgency }).show();
    },
    openConsole,
    quit: () => app.quit(),
    log,
  });
  void controller.start().catch((err: unknown) => log(`tray: ${String(err)}`));
  return { tray, controller };
}
