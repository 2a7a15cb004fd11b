// How the renderer reaches its agent: through Electron's preload bridge when it runs in the desktop
// app, or over the agent's WebSocket when a browser opened the headless console's URL. Either way
// the views get one ApiClient and cannot tell which is underneath.
import { BRIDGE_GLOBAL, bridgeClient, type StrataBridge } from '../../../agent-core/api/bridge.js';
import type { ApiClient, Reply } from '../../../agent-core/api/contract.js';
import { SocketCalls } from '../../../agent-core/api/socket-calls.js';
import { TOKEN_SUBPROTOCOL_PREFIX, WS_PATH, WS_SUBPROTOCOL } from '../../../agent-core/api/socket-protocol.js';

const TOKEN_KEY = 'strata.token';

export type ConnectionState = 'connecting' | 'open' | 'closed' | 'unauthorized';

/** Takes the token from the URL's fragment (once), keeping it for reloads of this tab only. */
export function takeToken(location: Location, storage: Storage): string | null {
  const m = /(?:^#|&)token=([0-9a-f]{16,128})(?:&|$)/.exec(location.hash);
  if (m) {
    storage.setItem(TOKEN_KEY, m[1]!);
    // Out of the address bar, so it is not copied, shared or kept in history.
    history.replaceState(null, '', location.pathname + location.search);
  }
  return storage.getItem(TOKEN_KEY);
}

function lostReply(message: string): Reply<never> {
  return { ok: false, error: { code: 'Internal', message, retryable: true } };
}

/**
 * An ApiClient over the agent's WebSocket that reconnects after the agent restarts or the network
 * blips; calls made while it is down answer with a retryable error instead of hanging.
 */
export function socketClient(token: string, onState: (s: ConnectionState) => void): ApiClient {
  const calls = new SocketCalls();
  let ws: WebSocket | null = null;
  let closed = false;
  let retryMs = 500;
  let opened: Promise<void> = Promise.resolve();

  const connect = (): void => {
    onState('connecting');
    const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${WS_PATH}`;
    const socket = new WebSocket(url, [WS_SUBPROTOCOL, `${TOKEN_SUBPROTOCOL_PREFIX}${token}`]);
    ws = socket;
    let wasOpen = false;
    opened = new Promise((resolve) => {
      socket.addEventListener('open', () => {
        wasOpen = true;
        retryMs = 500;
        onState('open');
        resolve();
        // Whatever changed while we were away: let the views fetch again.
        calls.emit({ event: 'sources:changed', payload: {} });
      });
      socket.addEventListener('close', () => resolve());
    });
    socket.addEventListener('message', (e: MessageEvent<string>) => calls.receive(e.data));
    socket.addEventListener('close', () => {
      calls.drop(lostReply('The connection to the agent closed before it answered; try again.'));
      if (closed) return;
      // A refused upgrade never opens: most likely a stale token from an earlier agent.
      onState(wasOpen ? 'closed' : 'unauthorized');
      setTimeout(connect, retryMs);
      retryMs = Math.min(retryMs * 2, 10_000);
    });
  };
  connect();

  const callUnchecked = async (channel: string, input: unknown): Promise<Reply<unknown>> => {
    await opened;
    const socket = ws;
    const send = (text: string): boolean => {
      if (!socket || socket.readyState !== WebSocket.OPEN) return false;
      socket.send(text);
      return true;
    };
    return calls.request(channel, input, send, lostReply('The console is not connected to its agent; it keeps trying.'));
  };

  return calls.client(callUnchecked, async () => {
    closed = true;
    ws?.close();
  });
}

/** The client for wherever this renderer runs; null when neither a bridge nor a token is there. */
export function connectToAgent(onState: (s: ConnectionState) => void): ApiClient | null {
  const bridge = (globalThis as Record<string, unknown>)[BRIDGE_GLOBAL] as StrataBridge | undefined;
  if (bridge) {
    onState('open');
    return bridgeClient(bridge);
  }
  const token = takeToken(location, sessionStorage);
  if (!token) {
    onState('unauthorized');
    return null;
  }
  return socketClient(token, onState);
}
