// An in-process ipcMain and ipcRenderer that keep Electron's IPC semantics, for tests in Node only:
// the Electron binary cannot be downloaded where these tests run (its installer fetches from outside
// the npm registry), so the real pair cannot be started. What it keeps, because the transport and
// the preload depend on it: arguments and results are structured-cloned and delivered on a later
// turn; a handler's error reaches the caller as "Error invoking remote method 'CHANNEL': Error: MSG";
// invoking a channel without a handler fails the same way; one handler per channel; events go by
// send/on; each invoke carries the sending frame with its URL, null once the page has gone.
import type { FrameLike, InvokeEventLike, IpcMainLike, WebContentsLike } from '../ipc-transport.js';
import type { IpcRendererLike } from '../preload-bridge.js';

type MainListener = (event: InvokeEventLike, ...args: unknown[]) => unknown;
type RendererListener = (event: unknown, ...args: unknown[]) => void;

/** The message Electron gives a value that structured clone refuses (functions, DOM objects, symbols). */
const NOT_CLONEABLE = 'An object could not be cloned.';

function cloneOrThrow<T>(value: T): T {
  try {
    return structuredClone(value);
  } catch {
    throw new Error(NOT_CLONEABLE);
  }
}

/** Lets the current turn finish, as a message crossing between processes would. */
const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export interface InvokeEventInPair extends InvokeEventLike {
  readonly sender: WebContentsLike;
  readonly senderFrame: FrameLike | null;
  readonly processId: number;
  readonly frameId: number;
}

export class InProcessIpcMain implements IpcMainLike {
  private readonly handlers = new Map<string, MainListener>();

  handle(channel: string, listener: MainListener): void {
    if (this.handlers.has(channel)) throw new Error(`Attempted to register a second handler for '${channel}'`);
    this.handlers.set(channel, listener);
  }

  removeHandler(channel: string): void {
    this.handlers.delete(channel);
  }

  /** What Electron's browser side does with an invoke from a renderer. */
  async receiveInvoke(event: InvokeEventInPair, channel: string, args: unknown[]): Promise<unknown> {
    const handler = this.handlers.get(channel);
    try {
      if (!handler) throw new Error(`No handler registered for '${channel}'`);
      return cloneOrThrow(await handler(event, ...args));
    } catch (err) {
      // Electron sends only the error's string form back, so the caller gets a new Error, not the thrown one.
      throw new Error(`Error invoking remote method '${channel}': ${String(err)}`);
    }
  }
}

/** One renderer (one window with one frame) connected to an InProcessIpcMain. */
export interface RendererInPair {
  readonly ipcRenderer: IpcRendererLike;
  readonly webContents: WebContentsLike;
  /** The page's frame moves to another URL, as after a navigation. */
  navigate(url: string): void;
  /** The window closes: its frame is gone and sending to it fails. */
  destroy(): void;
}

let nextProcessId = 1;

export function connectRenderer(ipcMain: InProcessIpcMain, url: string): RendererInPair {
  let currentUrl = url;
  let destroyed = false;
  const processId = nextProcessId++;
  const listeners = new Map<string, Set<RendererListener>>();

  const webContents: WebContentsLike = {
    send(channel, ...args) {
      if (destroyed) throw new Error('Object has been destroyed');
      const cloned = cloneOrThrow(args);
      void nextTurn().then(() => {
        for (const listener of [...(listeners.get(channel) ?? [])]) listener({ sender: ipcRenderer, senderId: 0 }, ...cloned);
      });
    },
    isDestroyed: () => destroyed,
    getURL: () => {
      if (destroyed) throw new Error('Object has been destroyed');
      return currentUrl;
    },
  };

  const ipcRenderer: IpcRendererLike = {
    async invoke(channel, ...args) {
      const cloned = cloneOrThrow(args);
      await nextTurn();
      const event: InvokeEventInPair = { sender: webContents, senderFrame: destroyed ? null : { url: currentUrl }, processId, frameId: 1 };
      const result = await ipcMain.receiveInvoke(event, channel, cloned);
      await nextTurn();
      return result;
    },
    on(channel, listener) {
      const set = listeners.get(channel) ?? new Set();
      set.add(listener);
      listeners.set(channel, set);
      return ipcRenderer;
    },
    removeListener(channel, listener) {
      listeners.get(channel)?.delete(listener);
      return ipcRenderer;
    },
  };

  return {
    ipcRenderer,
    webContents,
    navigate: (next) => {
      currentUrl = next;
    },
    destroy: () => {
      destroyed = true;
      listeners.clear();
    },
  };
}
