// What Electron's preload exposes to the renderer as `window.strata`: the agent's API reduced to two
// functions, and the ApiClient built on them, so the renderer's code is the same over IPC and socket.
import type { AgentEvent, ApiClient, Reply } from './contract.js';

/** The global name under which the preload exposes the bridge (contextBridge.exposeInMainWorld). */
export const BRIDGE_GLOBAL = 'strata';

/** The only thing the sandboxed renderer can reach in the main process. */
export interface StrataBridge {
  /** Sends one call; the main process validates it and always answers with a Reply. */
  call(channel: string, input: unknown): Promise<Reply<unknown>>;
  /** Returns the function that stops listening. */
  onEvent(listener: (event: AgentEvent) => void): () => void;
}

/** An ApiClient over the preload's bridge. */
export function bridgeClient(bridge: StrataBridge): ApiClient {
  return {
    call: (channel, input) => bridge.call(channel, input) as never,
    callUnchecked: (channel, input) => bridge.call(channel, input),
    onEvent: (listener) => bridge.onEvent(listener),
    close: async () => undefined,
  };
}
