// Finds the agent running for a state directory (its published agent.url and agent.token), checks
// that it answers, and connects to it; the CLI's track commands and tracked backups go through it.
import { readFile } from 'node:fs/promises';
import { get } from 'node:http';
import path from 'node:path';
import type { ApiClient } from '../../agent-core/api/contract.js';
import { StrataError, toStrataError, type ErrorCode } from '../../agent-core/api/errors.js';
import { HEALTH_PATH } from '../../agent-core/api/socket-protocol.js';
import { readAgentUrl, URL_FILE_NAME } from './agent-url.js';
import { TOKEN_FILE_NAME } from './agent-token.js';

/** A live agent answers its health check at once; anything slower is as good as gone for a CLI. */
const HEALTH_TIMEOUT_MS = 1500;

export type FoundAgent =
  | { readonly client: ApiClient; readonly url: string }
  | { readonly client: null; readonly code: ErrorCode; readonly reason: string };

export async function findAgent(stateDir: string, options: { timeoutMs?: number } = {}): Promise<FoundAgent> {
  const timeoutMs = options.timeoutMs ?? HEALTH_TIMEOUT_MS;
  let url: string | null;
  try {
    url = await readAgentUrl(stateDir);
  } catch (err) {
    return { client: null, code: toStrataError(err).code, reason: toStrataError(err).message.replace(/\.$/, '') };
  }
  if (url === null) return { client: null, code: 'NotFound', reason: `no agent has published its address in ${path.join(stateDir, URL_FILE_NAME)}` };
  // A file left by an agent that was killed names a port nobody (or somebody else) answers on.
  if (!(await answersHealth(new URL(HEALTH_PATH, url), timeoutMs))) {
    return { client: null, code: 'NotFound', reason: `nothing answers at ${url}, the address in ${path.join(stateDir, URL_FILE_NAME)} (left by an agent that did not stop cleanly)` };
  }
  const tokenFile = path.join(stateDir, TOKEN_FILE_NAME);
  let token: string;
  try {
    token = (await readFile(tokenFile, 'utf8')).trim();
  } catch (err) {
    const code = toStrataError(err).code;
    return code === 'PermissionDenied'
      ? { client: null, code, reason: `this user may not read its token ${tokenFile}; run as the agent's user (root for the system agent)` }
      : { client: null, code: code === 'Internal' ? 'Internal' : 'NotFound', reason: `its token ${tokenFile} cannot be read (${toStrataError(err).message.replace(/\.$/, '')})` };
  }
  try {
    // Loaded only now: the WebSocket client (ws, with Node's tls, https and zlib) slowed every
    // command's start, and most commands find no agent.
    const { connectSocketClient } = await import('./socket-client.js');
    return { client: await connectSocketClient({ url, token }), url };
  } catch (err) {
    const e = toStrataError(err);
    if (e.code === 'PermissionDenied') return { client: null, code: e.code, reason: `the agent at ${url} refused the token in ${tokenFile}; restart the agent so that it and the file agree` };
    return { client: null, code: 'NotFound', reason: `the agent at ${url} could not be connected to (${e.message.replace(/\.$/, '')})` };
  }
}

/**
 * Whether the agent's health check answers `{"ok": true}` in time. Plain node:http rather than
 * fetch: the first fetch loads undici, which costs a command that only hands a job over ~50 ms.
 */
function answersHealth(url: URL, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = get(url, { timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk.length + body.length <= 4096 ? chunk : ''));
      res.on('end', () => {
        try {
          resolve(res.statusCode === 200 && (JSON.parse(body) as { ok?: unknown }).ok === true);
        } catch {
          resolve(false);
        }
      });
      res.on('error', () => resolve(false));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
  });
}

/** The agent's client, or a one-sentence error saying to start the agent (or why it cannot be used). */
export async function requireAgent(stateDir: string, options: { timeoutMs?: number } = {}): Promise<ApiClient> {
  const found = await findAgent(stateDir, options);
  if (found.client) return found.client;
  if (found.code === 'NotFound') {
    throw new StrataError(
      'NotFound',
      `No Strata agent is running for ${stateDir} (${found.reason}); start \`strata agent --state-dir ${stateDir}\` (or the systemd unit strata-agent) first.`,
    );
  }
  throw new StrataError(found.code, `The Strata agent for ${stateDir} cannot be used: ${found.reason}.`);
}
