// The one place a call crosses from a transport into the agent: the channel is checked, the input
// parsed against its schema, the handler run, and every outcome turned into a Reply. Transports
// (socket, Electron IPC) call this and never a handler directly, so all of them reject alike.
import { CALLS, isChannel, type Handlers, type Reply } from '../agent-core/api/contract.js';
import { StrataError, toStrataError } from '../agent-core/api/errors.js';

export type LogLine = (line: string) => void;

/** One line per issue zod found, as `path: message`, so the sentence says which field to fix. */
function describeIssues(issues: readonly { path: readonly PropertyKey[]; message: string }[]): string {
  return issues
    .slice(0, 5)
    .map((i) => `${i.path.length > 0 ? i.path.map(String).join('.') : 'input'}: ${i.message}`)
    .join('; ');
}

export async function dispatch(handlers: Handlers, channel: string, input: unknown, log: LogLine): Promise<Reply<unknown>> {
  if (!isChannel(channel)) {
    log(`rejected call to unknown channel ${JSON.stringify(channel.slice(0, 100))}`);
    return { ok: false, error: new StrataError('NotFound', `The agent has no channel "${channel.slice(0, 100)}"; see docs/API.md for the list.`).toPayload() };
  }
  const spec = CALLS[channel];
  const parsed = spec.input.safeParse(input);
  if (!parsed.success) {
    log(`rejected ${channel}: input does not match its schema (${describeIssues(parsed.error.issues)})`);
    return { ok: false, error: new StrataError('InvalidInput', `The input of ${channel} is not valid: ${describeIssues(parsed.error.issues)}.`).toPayload() };
  }
  // The map's type ties each channel to its handler; indexing by a union loses that, so widen here once.
  const handler = handlers[channel] as (input: unknown) => Promise<unknown>;
  let value: unknown;
  try {
    value = await handler(parsed.data);
  } catch (err) {
    const e = toStrataError(err);
    if (e.code === 'Internal') log(`${channel} failed: ${e.message}${e.cause instanceof Error && e.cause.stack ? `\n${e.cause.stack}` : ''}`);
    return { ok: false, error: e.toPayload() };
  }
  // An answer that breaks the contract is the agent's bug; the client gets Internal, not bad data.
  const checked = spec.output.safeParse(value);
  if (!checked.success) {
    log(`${channel} returned a value that breaks its output schema: ${describeIssues(checked.error.issues)}`);
    return { ok: false, error: new StrataError('Internal', `The agent answered ${channel} with data that breaks the API contract; this is a bug in Strata.`).toPayload() };
  }
  return { ok: true, value: checked.data };
}
