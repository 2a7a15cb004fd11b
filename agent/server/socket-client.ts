// A client of the agent's socket over one WebSocket: calls matched to replies by id, pushed events
// to listeners. The test suites use it; a CLI talking to a running agent would too.
import WebSocket from 'ws';
import type { AgentEvent, ApiClient, Channel, ClientInput, Output, Reply } from '../../agent-core/api/contract.js';
import { StrataError } from '../../agent-core/api/errors.js';
import { TOKEN_SUBPROTOCOL_PREFIX, WS_PATH, WS_SUBPROTOCOL } from '../../agent-core/api/socket-protocol.js';

export interface SocketClientOptions {
  /** The server's http://HOST:PORT. */
  readonly url: string;
  readonly token: string;
  /** Sent as the Origin header, as a browser would; none by default. */
  readonly origin?: string;
}

export async function connectSocketClient(options: SocketClientOptions): Promise<ApiClient> {
  const wsUrl = new URL(WS_PATH, options.url.replace(/^http/, 'ws'));
  const ws = new WebSocket(wsUrl, [WS_SUBPROTOCOL, `${TOKEN_SUBPROTOCOL_PREFIX}${options.token}`], options.origin ? { origin: options.origin } : {});
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => reject(new StrataError(res.statusCode === 401 ? 'PermissionDenied' : 'Internal', `The agent refused the connection (HTTP ${res.statusCode}).`)));
  });

  let nextId = 1;
  const pending = new Map<number, (reply: Reply<unknown>) => void>();
  const listeners = new Set<(e: AgentEvent) => void>();
  const lost: Reply<never> = { ok: false, error: new StrataError('Internal', 'The connection to the agent closed before it answered.', { retryable: true }).toPayload() };

  ws.on('message', (data) => {
    const message = JSON.parse(data.toString()) as { id?: number | string | null; reply?: Reply<unknown>; event?: string; payload?: unknown };
    if (typeof message.event === 'string') {
      for (const listener of listeners) listener(message as AgentEvent);
    } else if (typeof message.id === 'number') {
      pending.get(message.id)?.(message.reply!);
      pending.delete(message.id);
    }
  });
  ws.on('error', () => undefined);
  ws.on('close', () => {
    for (const resolve of pending.values()) resolve(lost);
    pending.clear();
  });

  const callUnchecked = (channel: string, input: unknown): Promise<Reply<unknown>> => {
    if (ws.readyState !== ws.OPEN) return Promise.resolve(lost);
    const id = nextId++;
    return new Promise((resolve) => {
      pending.set(id, resolve);
      ws.send(JSON.stringify({ id, channel, input }));
    });
  };

  return {
    call: <C extends Channel>(channel: C, input: ClientInput<C>) => callUnchecked(channel, input) as Promise<Reply<Output<C>>>,
    callUnchecked,
    onEvent: (listener) => {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    close: async () => {
      if (ws.readyState === ws.CLOSED) return;
      await new Promise<void>((resolve) => {
        ws.once('close', () => resolve());
        ws.close();
      });
    },
  };
}
