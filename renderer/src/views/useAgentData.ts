// Fetches one answer of the agent for a view and keeps it while the inputs stay the same; null
// while loading or after an error (which the store has already shown).
import { useEffect, useState } from 'react';
import type { Channel, ClientInput, Output } from '../../../agent-core/api/contract.js';
import { useConsole } from '../store.js';

export function useAgentData<C extends Channel>(
  channel: C,
  input: ClientInput<C> | null,
  deps: readonly unknown[],
  /** Keep showing the last answer while a new one loads (for polled data, so nothing flickers). */
  keepWhileLoading = false,
): Output<C> | null {
  const call = useConsole((s) => s.call);
  const [value, setValue] = useState<Output<C> | null>(null);
  useEffect(() => {
    let live = true;
    if (!keepWhileLoading || input === null) setValue(null);
    if (input !== null) void call(channel, input).then((v) => live && setValue(v));
    return () => {
      live = false;
    };
    // The caller names what the input depends on; the input object itself is new on every render.
  }, [call, channel, ...deps]);
  return value;
}
