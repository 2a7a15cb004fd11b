// A recording stand-in for the 'electron' module, for main.test.ts only: the Electron binary cannot
// be installed where the tests run (its installer downloads from outside the npm registry), so the
// app's wiring is checked against this. It records what main.ts asks of Electron and lets the test
// play Electron's part (ready, events, requests); its ipcMain and windows' IPC are the in-process
// pair, so calls from a "window" go through main.ts's real transport to a real agent.
import { EventEmitter } from 'node:events';
import { connectRenderer, InProcessIpcMain, type RendererInPair } from './ipc-pair.js';

type Listener = (...args: never[]) => unknown;

/** An Electron-style event: preventDefault() is recorded. */
export class FakeEvent {
  defaultPrevented = false;
  constructor(readonly url = '') {}
  preventDefault(): void {
    this.defaultPrevented = true;
  }
}

class Emitter {
  private readonly emitter = new EventEmitter();
  on(name: string, listener: Listener): this {
    this.emitter.on(name, listener as (...args: unknown[]) => void);
    return this;
  }
  once(name: string, listener: Listener): this {
    this.emitter.once(name, listener as (...args: unknown[]) => void);
    return this;
  }
  emit(name: string, ...args: unknown[]): boolean {
    return this.emitter.emit(name, ...args);
  }
  listenerCount(name: string): number {
    return this.emitter.listenerCount(name);
  }
}

class FakeApp extends Emitter {
  readonly calls: string[] = [];
  name = 'Electron';
  lockGranted = true;
  private readyResolve!: () => void;
  private readonly readyPromise = new Promise<void>((resolve) => (this.readyResolve = resolve));

  setName(name: string): void {
    this.name = name;
    this.calls.push(`setName ${name}`);
  }
  enableSandbox(): void {
    this.calls.push('enableSandbox');
  }
  requestSingleInstanceLock(): boolean {
    this.calls.push('requestSingleInstanceLock');
    return this.lockGranted;
  }
  whenReady(): Promise<void> {
    return this.readyPromise;
  }
  /** The test plays Electron becoming ready. */
  ready(): void {
    this.calls.push('ready');
    this.readyResolve();
  }
  quit(): void {
    this.calls.push('quit');
  }
  exit(code: number): void {
    this.calls.push(`exit ${code}`);
  }
}

class FakeWebContents extends Emitter {
  openHandler: ((details: { url: string }) => { action: string }) | null = null;
  constructor(readonly renderer: RendererInPair) {
    super();
  }
  send(channel: string, ...args: unknown[]): void {
    this.renderer.webContents.send(channel, ...args);
  }
  isDestroyed(): boolean {
    return this.renderer.webContents.isDestroyed();
  }
  getURL(): string {
    return this.renderer.webContents.getURL();
  }
  setWindowOpenHandler(handler: (details: { url: string }) => { action: string }): void {
    this.openHandler = handler;
  }
}

export interface FakeElectron {
  app: FakeApp;
  ipcMain: InProcessIpcMain;
  windows: FakeBrowserWindow[];
  trays: FakeTray[];
  menus: unknown[][];
  notifications: Array<{ title: string; body: string; urgency?: string }>;
  errorBoxes: Array<[string, string]>;
  privilegedSchemes: unknown[];
  session: FakeSession;
}

class FakeBrowserWindow extends Emitter {
  readonly webContents: FakeWebContents;
  private destroyed = false;
  shown = 0;
  constructor(readonly options: { webPreferences?: Record<string, unknown> } & Record<string, unknown>) {
    super();
    this.webContents = new FakeWebContents(connectRenderer(fake.ipcMain, 'about:blank'));
    fake.windows.push(this);
    fake.app.emit('web-contents-created', new FakeEvent(), this.webContents);
  }
  static getAllWindows(): FakeBrowserWindow[] {
    return fake.windows.filter((w) => !w.destroyed);
  }
  async loadURL(url: string): Promise<void> {
    this.webContents.renderer.navigate(url);
    setImmediate(() => this.emit('ready-to-show'));
  }
  show(): void {
    this.shown++;
  }
  focus(): void {}
  restore(): void {}
  isMinimized(): boolean {
    return false;
  }
  isDestroyed(): boolean {
    return this.destroyed;
  }
  /** The user closes the window. */
  close(): void {
    this.destroyed = true;
    this.webContents.renderer.destroy();
    if (FakeBrowserWindow.getAllWindows().length === 0) fake.app.emit('window-all-closed');
  }
}

class FakeTray extends Emitter {
  tooltip = '';
  menu: unknown = null;
  images = 0;
  private destroyed = false;
  constructor(readonly image: unknown) {
    super();
    fake.trays.push(this);
  }
  setToolTip(text: string): void {
    this.tooltip = text;
  }
  setContextMenu(menu: unknown): void {
    this.menu = menu;
  }
  setImage(): void {
    this.images++;
  }
  isDestroyed(): boolean {
    return this.destroyed;
  }
  destroy(): void {
    this.destroyed = true;
  }
}

type Callback<T> = (response: T) => void;

class FakeSession extends Emitter {
  permissionRequest: ((contents: unknown, permission: string, callback: Callback<boolean>) => void) | null = null;
  permissionCheck: ((...args: unknown[]) => boolean) | null = null;
  beforeRequest: ((details: { url: string }, callback: Callback<{ cancel: boolean }>) => void) | null = null;
  headersReceived: ((details: { url: string; responseHeaders?: Record<string, string[]> }, callback: Callback<{ responseHeaders: Record<string, string[]> }>) => void) | null = null;
  readonly protocols = new Map<string, (request: Request) => Promise<Response> | Response>();
  readonly webRequest = {
    onBeforeRequest: (listener: NonNullable<FakeSession['beforeRequest']>) => {
      this.beforeRequest = listener;
    },
    onHeadersReceived: (listener: NonNullable<FakeSession['headersReceived']>) => {
      this.headersReceived = listener;
    },
  };
  readonly protocol = {
    handle: (scheme: string, handler: (request: Request) => Promise<Response> | Response) => {
      this.protocols.set(scheme, handler);
    },
  };
  setPermissionRequestHandler(handler: NonNullable<FakeSession['permissionRequest']>): void {
    this.permissionRequest = handler;
  }
  setPermissionCheckHandler(handler: NonNullable<FakeSession['permissionCheck']>): void {
    this.permissionCheck = handler;
  }
}

export const fake: FakeElectron = {
  app: new FakeApp(),
  ipcMain: new InProcessIpcMain(),
  windows: [],
  trays: [],
  menus: [],
  notifications: [],
  errorBoxes: [],
  privilegedSchemes: [],
  session: new FakeSession(),
};

/** The module main.ts imports as 'electron', with the names it uses. */
export const fakeElectronModule = {
  app: fake.app,
  ipcMain: fake.ipcMain,
  BrowserWindow: FakeBrowserWindow,
  Tray: FakeTray,
  session: { defaultSession: fake.session },
  protocol: {
    registerSchemesAsPrivileged: (schemes: unknown[]) => {
      fake.privilegedSchemes.push(...schemes);
    },
  },
  dialog: {
    showErrorBox: (title: string, content: string) => {
      fake.errorBoxes.push([title, content]);
    },
  },
  Menu: {
    buildFromTemplate: (template: unknown[]) => {
      fake.menus.push(template);
      return template;
    },
  },
  nativeImage: {
    createFromBitmap: (buffer: Buffer, size: { width: number; height: number }) => ({ buffer, size }),
  },
  Notification: class {
    static isSupported(): boolean {
      return true;
    }
    constructor(private readonly options: { title: string; body: string; urgency?: string }) {}
    show(): void {
      fake.notifications.push(this.options);
    }
  },
  // No keyring: main.ts must still start, and store no password.
  safeStorage: {
    isEncryptionAvailable: () => false,
    encryptString: () => {
      throw new Error('no keyring');
    },
    decryptString: () => {
      throw new Error('no keyring');
    },
  },
};
