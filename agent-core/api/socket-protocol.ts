// The local HTTP + WebSocket transport's framing and limits, shared by the agent's server and any
// console that connects to it (the headless console's browser, a console talking to a system agent).
import * as z from 'zod';

export const HEALTH_PATH = '/api/health';

/** Where `strata agent` (the system service) listens by default; consoles look for it there. */
export const SYSTEM_AGENT_PORT = 7381;
/** Where `strata console` listens by default. */
export const CONSOLE_PORT = 7380;
/** POST CALL_PATH_PREFIX + channel with the input as a JSON body; the answer is the Reply as JSON. */
export const CALL_PATH_PREFIX = '/api/call/';
export const WS_PATH = '/api/ws';

/** A browser cannot set headers on a WebSocket, so the token travels as a subprotocol, which is not logged like a URL. */
export const TOKEN_SUBPROTOCOL_PREFIX = 'strata.token.';
/** Offered next to the token; the server selects it, so the token is never echoed back. */
export const WS_SUBPROTOCOL = 'strata.v1';

/** Largest HTTP body or WebSocket message the agent reads; larger ones are refused unread. */
export const MAX_MESSAGE_BYTES = 1 << 20;

export const WsRequestSchema = z.strictObject({
  id: z.union([z.string().min(1).max(100), z.number().int()]),
  channel: z.string().min(1).max(100),
  input: z.unknown(),
});
export type WsRequest = z.infer<typeof WsRequestSchema>;

/** id is null when the request was too malformed to carry one. */
export interface WsResponse {
  id: string | number | null;
  reply: unknown;
}
