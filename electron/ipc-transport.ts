// The agent's API over Electron IPC, main side: one invoke handler for every call, checked for the
// window it came from and for size, then handed to dispatch() like any transport; agent events go
// to every window showing our renderer. Typed against the small part of Electron it needs, so the
// same code runs with the real ipcMain and with the in-process pair the Node tests use.
import type { AgentEvent, Handlers, Reply } from '../agent-core/api/contract.js';
import { StrataError, type ErrorCode } from '../agent-core/api/errors.js';
import { MAX_MESSAGE_BYTES } from '../agent-core/api/socket-protocol.js';
import { dispatch, type LogLine } from '../agent/dispatch.js';
import { CALL_CHANNEL, EVENT_CHANNEL } from './ipc-channels.js';
import { describeUrl } from './security.js';

/** The frame a message came from (Electron's WebFrameMain). */
export interface FrameLike {
  readonly url: string;
}

/** What an invoke handler is given (Electron's IpcMainInvokeEvent); senderFrame is null once the frame has gone. */
export interface InvokeEventLike {
  readonly senderFrame: FrameLike | null;
}

/** The part of Electron's ipcMain the transport uses. */
export interface IpcMainLike {
  handle(channel: string, listener: (event: InvokeEventLike, ...args: unknown[]) => unknown): void;
  removeHandler(channel: string): void;
}

/** The part of Electron's WebContents the transport uses. */
export interface WebContentsLike {
  send(channel: string, ...args: unknown[]): void;
  isDestroyed(): boolean;
  getURL(): string;
}

/** What the transport serves: the embedded agent, or a relay to the system agent (agent-choice.ts). */
export interface AgentLike {
  readonly handlers: Handlers;
  onEvent(listener: (event: AgentEvent) => void): () => void;
}

export interface IpcTransportOptions {
  readonly ipcMain: IpcMainLike;
  readonly agent: AgentLike;
  /** The webContents of every window now open; events go to those showing our renderer. */
  readonly windows: () => Iterable<WebContentsLike>;
  /** Whether a page at this URL is our renderer (security.ts, isTrustedRendererUrl). */
  readonly isTrustedUrl: (url: string) => boolean;
  /** One line per refused call or failed delivery. */
  readonly log: LogLine;
}

export interface IpcTransport {
  /** Stops answering calls and forwarding events. */
  close(): void;
}

function refusal(code: ErrorCode, message: string): Reply<never> {
  return { ok: false, error: new StrataError(code, message).toPayload() };
}

/** The size of a call as the socket would carry it, or null if it is not plain JSON data (cycles, BigInt). */
export function encodedSizeBytes(channel: string, input: unknown): number | null {
  try {
    const text = JSON.stringify({ channel, input });
    return text === undefined ? null : Buffer.byteLength(text);
  } catch {
    return null;
  }
}

export function serveAgentOverIpc(options: IpcTransportOptions): IpcTransport {
  const { ipcMain, agent, log } = options;

  const answer = async (event: InvokeEventLike, channel: unknown, input: unknown): Promise<Reply<unknown>> => {
    const url = event.senderFrame?.url ?? null;
    const who = `ipc ${describeUrl(url)}`;
    if (url === null || !options.isTrustedUrl(url)) {
      log(`${who}: refused a call from a page that is not the Strata console`);
      return refusal('PermissionDenied', 'Only the Strata console’s own window may call the agent.');
    }
    if (typeof channel !== 'string') {
      log(`${who}: refused a call whose channel is not a string`);
      return refusal('InvalidInput', 'A call names its channel as a string, e.g. "agent:hello".');
    }
    const given = input === undefined ? {} : input;
    const size = encodedSizeBytes(channel, given);
    if (size === null) {
      log(`${who}: refused ${JSON.stringify(channel.slice(0, 100))}, input is not JSON data`);
      return refusal('InvalidInput', `The input of ${channel.slice(0, 100)} must be plain JSON data (objects, arrays, strings, numbers, booleans, null).`);
    }
    if (size > MAX_MESSAGE_BYTES) {
      log(`${who}: refused ${JSON.stringify(channel.slice(0, 100))}, ${size} bytes is over ${MAX_MESSAGE_BYTES}`);
      return refusal('InvalidInput', `A call may be at most ${MAX_MESSAGE_BYTES} bytes; this one is ${size}.`);
    }
    return dispatch(agent.handlers, channel, given, (line) => log(`${who}: ${line}`));
  };

  ipcMain.handle(CALL_CHANNEL, (event, channel, input) =>
    // dispatch answers every outcome; this catch is for a bug in the checks above, never a rejection.
    answer(event, channel, input).catch((err: unknown) => {
      log(`ipc: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
      return refusal('Internal', 'The console failed to pass this call to the agent; see its log.');
    }),
  );

  const unsubscribe = agent.onEvent((event) => {
    for (const contents of options.windows()) {
      let url: string | null = null;
      try {
        if (contents.isDestroyed()) continue;
        url = contents.getURL();
        if (!options.isTrustedUrl(url)) continue;
        contents.send(EVENT_CHANNEL, event);
      } catch (err) {
        // One window that cannot take the event must not keep it from the others.
        log(`ipc ${describeUrl(url)}: could not deliver ${event.event}: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  });

  return {
    close: () => {
      unsubscribe();
      ipcMain.removeHandler(CALL_CHANNEL);
    },
  };
}
