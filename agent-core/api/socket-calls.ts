// The client side of the agent's WebSocket, whatever WebSocket implementation carries it (Node's
// `ws` in tests and tools, the browser's in the headless console): calls matched to replies by id,
// pushed events handed to listeners, and every call still waiting answered when the socket drops.
import type { AgentEvent, ApiClient, Channel, ClientInput, Output, Reply } from './contract.js';

export class SocketCalls {
  private nextId = 1;
  private readonly pending = new Map<number, (reply: Reply<unknown>) => void>();
  private readonly listeners = new Set<(e: AgentEvent) => void>();

  /** Sends one call; `send` returns false when the socket is not open, and the call answers `lost`. */
  request(channel: string, input: unknown, send: (text: string) => boolean, lost: Reply<never>): Promise<Reply<unknown>> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      if (!send(JSON.stringify({ id, channel, input }))) {
        this.pending.delete(id);
        resolve(lost);
      }
    });
  }

  /** One text message from the agent: a reply to a call, or an event. Anything else is ignored. */
  receive(text: string): void {
    let message: { id?: unknown; reply?: Reply<unknown>; event?: unknown };
    try {
      message = JSON.parse(text) as typeof message;
    } catch {
      return;
    }
    if (typeof message.event === 'string') this.emit(message as AgentEvent);
    else if (typeof message.id === 'number' && message.reply) {
      this.pending.get(message.id)?.(message.reply);
      this.pending.delete(message.id);
    }
  }

  /** The socket closed: every call still waiting answers `lost`. */
  drop(lost: Reply<never>): void {
    for (const resolve of this.pending.values()) resolve(lost);
    this.pending.clear();
  }

  emit(event: AgentEvent): void {
    for (const listener of this.listeners) listener(event);
  }

  /** An ApiClient whose calls go through `callUnchecked` and whose events come from this router. */
  client(callUnchecked: (channel: string, input: unknown) => Promise<Reply<unknown>>, close: () => Promise<void>): ApiClient {
    return {
      call: <C extends Channel>(channel: C, input: ClientInput<C>) => callUnchecked(channel, input) as Promise<Reply<Output<C>>>,
      callUnchecked,
      onEvent: (listener) => {
        this.listeners.add(listener);
        return () => this.listeners.delete(listener);
      },
      close,
    };
  }
}
