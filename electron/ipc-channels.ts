// The only two Electron IPC channels Strata uses: one for calls, one for pushed agent events. Kept
// free of imports so the sandboxed preload bundles nothing but these names.

/** Renderer → main, ipcRenderer.invoke(CALL_CHANNEL, channel, input); answered with a Reply. */
export const CALL_CHANNEL = 'strata:call';

/** Main → renderer, webContents.send(EVENT_CHANNEL, {event, payload}). */
export const EVENT_CHANNEL = 'strata:event';
