// The renderer's StrataBridge built on ipcRenderer, kept apart from preload.ts so the Node tests can
// run it over the in-process pair. It knows two channels and passes nothing else through.
import type { StrataBridge } from '../agent-core/api/bridge.js';
import type { AgentEvent, Reply } from '../agent-core/api/contract.js';
import { StrataError } from '../agent-core/api/errors.js';
import { CALL_CHANNEL, EVENT_CHANNEL } from './ipc-channels.js';

type IpcListener = (event: unknown, ...args: unknown[]) => void;

/** The part of Electron's ipcRenderer the bridge uses. */
export interface IpcRendererLike {
  invoke(channel: string, ...args: unknown[]): Promise<unknown>;
  on(channel: string, listener: IpcListener): unknown;
  removeListener(channel: string, listener: IpcListener): unknown;
}

/** Turns an invoke that failed before the agent answered (input not cloneable, main process gone) into a Reply. */
function failedInvoke(channel: string, err: unknown): Reply<never> {
  const message = err instanceof Error ? err.message : String(err);
  if (/could not be cloned/i.test(message)) {
    return { ok: false, error: new StrataError('InvalidInput', `The input of ${channel.slice(0, 100)} cannot be sent: it holds functions or other values that are not data.`).toPayload() };
  }
  return { ok: false, error: new StrataError('Internal', `The console lost its connection to the agent (${message}); restart Strata.`, { retryable: true }).toPayload() };
}

export function createBridge(ipc: IpcRendererLike): StrataBridge {
  return {
    call: async (channel, input) => {
      try {
        return (await ipc.invoke(CALL_CHANNEL, String(channel), input)) as Reply<unknown>;
      } catch (err) {
        return failedInvoke(String(channel), err);
      }
    },
    onEvent: (listener) => {
      // The IPC event object (sender, ports) stays on this side; the page gets the payload only.
      const relay: IpcListener = (_event, message) => listener(message as AgentEvent);
      ipc.on(EVENT_CHANNEL, relay);
      return () => {
        ipc.removeListener(EVENT_CHANNEL, relay);
      };
    },
  };
}
