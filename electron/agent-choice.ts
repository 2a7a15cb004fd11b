// Which agent the console talks to: the system agent (`strata agent`, run as a service) when its
// token is readable and it answers a health check with our API version, else an agent embedded in
// the main process. The decision is a plain function of what was probed; probing and relaying are
// separate so each can be tested.
import { readFile } from 'node:fs/promises';
import { API_VERSION, CALLS, type ApiClient, type Handlers } from '../agent-core/api/contract.js';
import { StrataError } from '../agent-core/api/errors.js';
import { HEALTH_PATH, SYSTEM_AGENT_PORT } from '../agent-core/api/socket-protocol.js';
import type { AgentLike } from './ipc-transport.js';

/** Where the system agent keeps its bearer token; only users it trusts can read it. */
export const SYSTEM_TOKEN_FILE = '/var/lib/strata/agent.token';

/** Overrides the system agent's address (default: loopback, SYSTEM_AGENT_PORT, as the systemd unit runs it). */
export const AGENT_URL_ENV = 'STRATA_AGENT_URL';
export const DEFAULT_SYSTEM_AGENT_URL = `http://127.0.0.1:${SYSTEM_AGENT_PORT}`;
/** "embedded" or "system" forces the choice; "system" then fails loudly instead of falling back. */
export const AGENT_MODE_ENV = 'STRATA_AGENT';

export interface AgentProbe {
  readonly requested: 'embedded' | 'system' | 'auto';
  readonly url: string | null;
  /** The token, or why it could not be read. */
  readonly token: { readonly value: string } | { readonly error: string };
  /** The API version the health check reported, or why it failed; null when not checked. */
  readonly health: { readonly apiVersion: number } | { readonly error: string } | null;
}

export type AgentChoice =
  | { readonly mode: 'embedded'; readonly reason: string }
  | { readonly mode: 'system'; readonly url: string; readonly token: string; readonly reason: string };

export function requestedMode(env: NodeJS.ProcessEnv): AgentProbe['requested'] {
  const v = env[AGENT_MODE_ENV];
  return v === 'embedded' || v === 'system' ? v : 'auto';
}

export function chooseAgent(probe: AgentProbe): AgentChoice {
  if (probe.requested === 'embedded') return { mode: 'embedded', reason: `${AGENT_MODE_ENV}=embedded` };
  let why: string | null = null;
  if (probe.url === null) why = `no system agent address (${AGENT_URL_ENV} is not set)`;
  else if ('error' in probe.token) why = `the system agent's token cannot be read: ${probe.token.error}`;
  else if (probe.health === null || 'error' in probe.health) why = `the system agent at ${probe.url} does not answer${probe.health && 'error' in probe.health ? `: ${probe.health.error}` : ''}`;
  else if (probe.health.apiVersion !== API_VERSION) why = `the system agent at ${probe.url} speaks API ${probe.health.apiVersion}, this console ${API_VERSION}`;
  if (why === null && probe.url !== null && 'value' in probe.token) {
    return { mode: 'system', url: probe.url, token: probe.token.value, reason: `the system agent at ${probe.url} answers` };
  }
  if (probe.requested === 'system') {
    throw new StrataError('NotFound', `${AGENT_MODE_ENV}=system, but ${why}; start the service (strata agent) or unset ${AGENT_MODE_ENV}.`);
  }
  return { mode: 'embedded', reason: why ?? 'no system agent' };
}

export interface ProbeOptions {
  readonly env: NodeJS.ProcessEnv;
  readonly tokenFile?: string;
  readonly fetch?: typeof fetch;
  readonly timeoutMs?: number;
}

/** Reads the token and asks /api/health; never throws. */
export async function probeSystemAgent(options: ProbeOptions): Promise<AgentProbe> {
  const requested = requestedMode(options.env);
  const url = options.env[AGENT_URL_ENV] || DEFAULT_SYSTEM_AGENT_URL;
  if (requested === 'embedded' || url === null) return { requested, url, token: { error: 'not read' }, health: null };
  let token: AgentProbe['token'];
  try {
    const text = (await readFile(options.tokenFile ?? SYSTEM_TOKEN_FILE, 'utf8')).trim();
    token = /^[0-9a-f]{64}$/.test(text) ? { value: text } : { error: 'the file does not hold a token' };
  } catch (err) {
    token = { error: (err as NodeJS.ErrnoException).code ?? String(err) };
  }
  if ('error' in token) return { requested, url, token, health: null };
  let health: AgentProbe['health'];
  try {
    const res = await (options.fetch ?? fetch)(new URL(HEALTH_PATH, url), { signal: AbortSignal.timeout(options.timeoutMs ?? 2000) });
    const body = (await res.json()) as { ok?: unknown; apiVersion?: unknown };
    health = res.ok && body.ok === true && typeof body.apiVersion === 'number' ? { apiVersion: body.apiVersion } : { error: `HTTP ${res.status}` };
  } catch (err) {
    health = { error: err instanceof Error ? err.message : String(err) };
  }
  return { requested, url, token, health };
}

/**
 * The system agent seen through a client, shaped like the embedded one: each handler forwards its
 * call and turns an error reply back into a StrataError, so the IPC transport still runs every call
 * through dispatch() and the console cannot tell the two apart.
 */
export function remoteAgent(client: ApiClient): AgentLike {
  const handlers = Object.fromEntries(
    Object.keys(CALLS).map((channel) => [
      channel,
      async (input: unknown) => {
        const reply = await client.callUnchecked(channel, input);
        if (reply.ok) return reply.value;
        throw new StrataError(reply.error.code, reply.error.message, { retryable: reply.error.retryable });
      },
    ]),
  ) as unknown as Handlers;
  return { handlers, onEvent: (listener) => client.onEvent(listener) };
}
