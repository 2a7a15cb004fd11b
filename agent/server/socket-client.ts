// A client of the agent's socket over one WebSocket: calls matched to replies by id, pushed events
// to listeners. The test suites use it; a CLI talking to a running agent would too.
import WebSocket from 'ws';
import type { ApiClient, Reply } from '../../agent-core/api/contract.js';
import { SocketCalls } from '../../agent-core/api/socket-calls.js';
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

  const calls = new SocketCalls();
  const lost: Reply<never> = { ok: false, error: new StrataError('Internal', 'The connection to the agent closed before it answered.', { retryable: true }).toPayload() };
  ws.on('message', (data) => calls.receive(data.toString()));
  ws.on('error', () => undefined);
  ws.on('close', () => calls.drop(lost));
  const send = (text: string): boolean => {
    if (ws.readyState !== ws.OPEN) return false;
    ws.send(text);
    return true;
  };
  return calls.client(
    (channel, input) => calls.request(channel, input, send, lost),
    async () => {
      if (ws.readyState === ws.CLOSED) return;
      await new Promise<void>((resolve) => {
        ws.once('close', () => resolve());
        ws.close();
      });
    },
  );
}
