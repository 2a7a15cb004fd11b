// The agent's local socket: HTTP calls and a WebSocket for calls and pushed events, both serving
// the one API contract. Loopback by default; every /api/ route but health needs the bearer token,
// browsers are held to the server's own Origin, and oversized or malformed messages are refused.
import { timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import { API_VERSION, type AgentEvent, type Reply } from '../../agent-core/api/contract.js';
import { StrataError, type ErrorCode } from '../../agent-core/api/errors.js';
import { CONTENT_SECURITY_POLICY, contentTypeOf } from '../../agent-core/console-page.js';
import {
  CALL_PATH_PREFIX,
  HEALTH_PATH,
  MAX_MESSAGE_BYTES,
  TOKEN_SUBPROTOCOL_PREFIX,
  WS_PATH,
  WS_SUBPROTOCOL,
  WsRequestSchema,
  type WsResponse,
} from '../../agent-core/api/socket-protocol.js';
import { openAgent, type Agent } from '../agent.js';
import { dispatch, type LogLine } from '../dispatch.js';
import { readOrCreateToken } from './agent-token.js';

export interface AgentServerOptions {
  readonly stateDir: string;
  /** Default 127.0.0.1: only this machine can connect. */
  readonly host?: string;
  /** Default 0: any free port (the returned port says which). */
  readonly port?: number;
  /** Default: the agent opened for stateDir and closed with the server. */
  readonly agent?: Agent;
  readonly password?: () => string | null;
  /** One line per rejected request or failed call; default stderr. Never given the token. */
  readonly log?: LogLine;
  /** Serves the console's renderer bundle from this folder at / (the headless console). */
  readonly staticDir?: string;
}

export interface AgentServer {
  /** http://HOST:PORT, without the token. */
  readonly url: string;
  /** The console's address with the token in its fragment (never sent to a server, so never logged). */
  readonly consoleUrl: string;
  readonly port: number;
  readonly token: string;
  close(): Promise<void>;
}

function errorReply(code: ErrorCode, message: string): Reply<never> {
  return { ok: false, error: new StrataError(code, message).toPayload() };
}

function sameSecret(given: string, token: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

function bearerOf(req: http.IncomingMessage): string | null {
  const m = /^Bearer ([^\s]+)$/.exec(req.headers.authorization ?? '');
  return m ? m[1]! : null;
}

function tokenFromSubprotocols(req: http.IncomingMessage): string | null {
  const offered = (req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim());
  const entry = offered.find((p) => p.startsWith(TOKEN_SUBPROTOCOL_PREFIX));
  return entry ? entry.slice(TOKEN_SUBPROTOCOL_PREFIX.length) : null;
}

/** Files of the renderer bundle; an unknown path without an extension is the app itself (client-side routes). */
async function serveStatic(root: string, pathname: string, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  let rel: string;
  try {
    rel = decodeURIComponent(pathname);
  } catch {
    return sendJson(res, 400, errorReply('InvalidInput', 'The path is not valid.'));
  }
  const base = path.resolve(root);
  let file = path.resolve(base, '.' + (rel.endsWith('/') ? rel + 'index.html' : rel));
  if (file !== base && !file.startsWith(base + path.sep)) return sendJson(res, 404, errorReply('NotFound', `Nothing is served at ${pathname}.`));
  let body: Buffer;
  try {
    body = await readFile(file);
  } catch {
    if (path.extname(file) !== '') return sendJson(res, 404, errorReply('NotFound', `Nothing is served at ${pathname}.`));
    file = path.join(base, 'index.html');
    try {
      body = await readFile(file);
    } catch {
      return sendJson(res, 503, errorReply('NotFound', 'The console is not built; run `npm run build` first.'));
    }
  }
  res.writeHead(200, {
    'content-type': contentTypeOf(file),
    'content-length': body.length,
    'content-security-policy': CONTENT_SECURITY_POLICY,
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'cache-control': file.endsWith('.html') ? 'no-store' : 'max-age=3600',
  });
  res.end(req.method === 'HEAD' ? undefined : body);
}

function sendJson(res: http.ServerResponse, status: number, body: unknown, headers: http.OutgoingHttpHeaders = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store', ...headers });
  res.end(text);
}

function refuseUpgrade(socket: Duplex, status: number, reason: string): void {
  socket.end(`HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
  socket.destroy();
}

/** Reads a body of at most MAX_MESSAGE_BYTES; null if it is longer. */
function readBody(req: http.IncomingMessage): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > MAX_MESSAGE_BYTES) return resolve(null);
    const parts: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_MESSAGE_BYTES) {
        req.removeAllListeners('data');
        resolve(null);
      } else parts.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(parts)));
    req.on('error', reject);
  });
}

export async function startAgentServer(options: AgentServerOptions): Promise<AgentServer> {
  const host = options.host ?? '127.0.0.1';
  const log = options.log ?? ((line: string) => process.stderr.write(`strata agent: ${line}\n`));
  const token = await readOrCreateToken(options.stateDir);
  const agent = options.agent ?? (await openAgent({ stateDir: options.stateDir, ...(options.password ? { password: options.password } : {}) }));
  const ownsAgent = options.agent === undefined;
  let allowedOrigins = new Set<string>();
  let allowedHosts = new Set<string>();

  /** A browser page from anywhere but this server is refused; clients that send no Origin are not browsers. */
  const originAllowed = (req: http.IncomingMessage): boolean => {
    const origin = req.headers.origin;
    return origin === undefined || allowedOrigins.has(origin);
  };
  const who = (req: http.IncomingMessage): string => `${req.socket.remoteAddress ?? '?'} ${req.method ?? ''} ${(req.url ?? '').split('?')[0]}`;

  const server = http.createServer((req, res) => {
    void handleHttp(req, res).catch((err: unknown) => {
      log(`${who(req)}: ${err instanceof Error ? err.message : String(err)}`);
      if (!res.headersSent) sendJson(res, 500, errorReply('Internal', 'The agent failed to answer this request; see its log.'));
    });
  });

  /** A page on another site that resolves its own name to 127.0.0.1 (DNS rebinding) sends its own Host: refuse it. */
  const hostAllowed = (req: http.IncomingMessage): boolean => allowedHosts.has((req.headers.host ?? '').toLowerCase());

  async function handleHttp(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const pathname = new URL(req.url ?? '/', 'http://agent').pathname;
    if (!hostAllowed(req)) {
      log(`${who(req)}: refused, foreign Host ${JSON.stringify(req.headers.host ?? '')}`);
      return sendJson(res, 421, errorReply('PermissionDenied', 'Connect to the agent by its loopback address, as the console URL gives it.'));
    }
    if (pathname === HEALTH_PATH && req.method === 'GET') return sendJson(res, 200, { ok: true, apiVersion: API_VERSION });
    if (!pathname.startsWith('/api/')) {
      if (options.staticDir && (req.method === 'GET' || req.method === 'HEAD')) return serveStatic(options.staticDir, pathname, req, res);
      return sendJson(res, 404, errorReply('NotFound', `Nothing is served at ${pathname}.`));
    }
    const given = bearerOf(req);
    if (given === null || !sameSecret(given, token)) {
      log(`${who(req)}: refused, ${given === null ? 'no' : 'wrong'} bearer token`);
      return sendJson(res, 401, errorReply('PermissionDenied', `Send the agent's token as "Authorization: Bearer TOKEN"; it is in ${options.stateDir}/agent.token.`), {
        'www-authenticate': 'Bearer',
      });
    }
    if (!originAllowed(req)) {
      log(`${who(req)}: refused, foreign Origin ${JSON.stringify(req.headers.origin)}`);
      return sendJson(res, 403, errorReply('PermissionDenied', 'Pages from other sites may not call the agent.'));
    }
    if (!pathname.startsWith(CALL_PATH_PREFIX)) return sendJson(res, 404, errorReply('NotFound', `No API route ${pathname}; calls are POST ${CALL_PATH_PREFIX}<channel>.`));
    if (req.method !== 'POST') return sendJson(res, 405, errorReply('InvalidInput', 'Calls are made with POST.'), { allow: 'POST' });
    const body = await readBody(req);
    if (body === null) {
      log(`${who(req)}: refused, body over ${MAX_MESSAGE_BYTES} bytes`);
      sendJson(res, 413, errorReply('InvalidInput', `A call's body may be at most ${MAX_MESSAGE_BYTES} bytes.`), { connection: 'close' });
      return;
    }
    let input: unknown = {};
    if (body.length > 0) {
      try {
        input = JSON.parse(body.toString('utf8'));
      } catch {
        log(`${who(req)}: refused, body is not JSON`);
        return sendJson(res, 400, errorReply('InvalidInput', "A call's body must be JSON."));
      }
    }
    const channel = decodeURIComponent(pathname.slice(CALL_PATH_PREFIX.length));
    sendJson(res, 200, await dispatch(agent.handlers, channel, input, (line) => log(`${who(req)}: ${line}`)));
  }

  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: MAX_MESSAGE_BYTES,
    // The token is offered as a subprotocol too; selecting the plain one keeps it out of the response.
    handleProtocols: (protocols) => (protocols.has(WS_SUBPROTOCOL) ? WS_SUBPROTOCOL : false),
  });

  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    const pathname = new URL(req.url ?? '/', 'http://agent').pathname;
    if (pathname !== WS_PATH) return refuseUpgrade(socket, 404, 'Not Found');
    if (!hostAllowed(req)) {
      log(`${who(req)}: WebSocket refused, foreign Host ${JSON.stringify(req.headers.host ?? '')}`);
      return refuseUpgrade(socket, 421, 'Misdirected Request');
    }
    const given = tokenFromSubprotocols(req);
    if (given === null || !sameSecret(given, token)) {
      log(`${who(req)}: WebSocket refused, ${given === null ? 'no' : 'wrong'} token`);
      return refuseUpgrade(socket, 401, 'Unauthorized');
    }
    if (!originAllowed(req)) {
      log(`${who(req)}: WebSocket refused, foreign Origin ${JSON.stringify(req.headers.origin)}`);
      return refuseUpgrade(socket, 403, 'Forbidden');
    }
    wss.handleUpgrade(req, socket, head, (ws) => serveSocket(ws, req));
  });

  function serveSocket(ws: WebSocket, req: http.IncomingMessage): void {
    const peer = `${req.socket.remoteAddress ?? '?'} ws`;
    const send = (response: WsResponse): void => {
      if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(response));
    };
    ws.on('error', (err) => log(`${peer}: ${err.message}; connection closed`));
    ws.on('message', (data: RawData, isBinary: boolean) => {
      if (isBinary) {
        log(`${peer}: refused a binary message`);
        return send({ id: null, reply: errorReply('InvalidInput', 'Messages are JSON text, not binary.') });
      }
      let message: unknown;
      try {
        message = JSON.parse(data.toString());
      } catch {
        log(`${peer}: refused a message that is not JSON`);
        return send({ id: null, reply: errorReply('InvalidInput', 'A message must be JSON: {"id", "channel", "input"}.') });
      }
      const request = WsRequestSchema.safeParse(message);
      if (!request.success) {
        log(`${peer}: refused a message that is not {id, channel, input}`);
        const id = (message as { id?: unknown } | null)?.id;
        return send({ id: typeof id === 'string' || typeof id === 'number' ? id : null, reply: errorReply('InvalidInput', 'A message must be {"id", "channel", "input"}.') });
      }
      const { id, channel, input } = request.data;
      void dispatch(agent.handlers, channel, input, (line) => log(`${peer}: ${line}`)).then((reply) => send({ id, reply }));
    });
  }

  const unsubscribe = agent.onEvent((event: AgentEvent) => {
    const text = JSON.stringify(event);
    for (const client of wss.clients) if (client.readyState === client.OPEN) client.send(text);
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const urlHost = host.includes(':') ? `[${host}]` : host;
  allowedHosts = new Set([`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`, `${urlHost.toLowerCase()}:${port}`]);
  allowedOrigins = new Set([...allowedHosts].map((h) => `http://${h}`));

  return {
    url: `http://${urlHost}:${port}`,
    consoleUrl: `http://${urlHost}:${port}/#token=${token}`,
    port,
    token,
    close: async () => {
      unsubscribe();
      for (const client of wss.clients) client.terminate();
      wss.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      if (ownsAgent) await agent.close();
    },
  };
}
