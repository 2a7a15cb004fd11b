// The in-process IPC pair keeps the Electron semantics the transport relies on (it stands in for
// Electron only because the binary cannot be installed here): cloning, error text, one handler per channel.
import { describe, expect, it } from 'vitest';
import { connectRenderer, InProcessIpcMain } from './ipc-pair.js';

describe('the in-process ipcMain/ipcRenderer pair (stand-in: no Electron binary here)', () => {
  it('clones arguments and results, so neither side shares objects with the other', async () => {
    const ipcMain = new InProcessIpcMain();
    const kept: unknown[] = [];
    const answer = { list: [1, 2] };
    ipcMain.handle('echo', (_event, value) => {
      kept.push(value);
      return answer;
    });
    const { ipcRenderer } = connectRenderer(ipcMain, 'strata://console/index.html');
    const sent = { nested: { n: 1 }, when: new Date(0) };
    const pending = ipcRenderer.invoke('echo', sent);
    sent.nested.n = 2; // after the call: the handler must still see the value as sent
    const result = (await pending) as typeof answer;
    expect(kept[0]).toEqual({ nested: { n: 1 }, when: new Date(0) });
    expect(kept[0]).not.toBe(sent);
    expect(result).toEqual(answer);
    expect(result).not.toBe(answer);
  });

  it('runs the handler on a later turn, not inside invoke()', async () => {
    const ipcMain = new InProcessIpcMain();
    const order: string[] = [];
    ipcMain.handle('x', () => order.push('handler'));
    const { ipcRenderer } = connectRenderer(ipcMain, 'strata://console/');
    const pending = ipcRenderer.invoke('x');
    order.push('after invoke');
    await pending;
    expect(order).toEqual(['after invoke', 'handler']);
  });

  it('turns a thrown handler error into Electron’s "Error invoking remote method" error', async () => {
    const ipcMain = new InProcessIpcMain();
    ipcMain.handle('fails', () => {
      throw new Error('boom');
    });
    const { ipcRenderer } = connectRenderer(ipcMain, 'strata://console/');
    const err = await ipcRenderer.invoke('fails').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toBe("Error invoking remote method 'fails': Error: boom");
    await expect(ipcRenderer.invoke('nobody')).rejects.toThrow("Error invoking remote method 'nobody': Error: No handler registered for 'nobody'");
  });

  it('refuses values structured clone cannot carry, and a second handler for a channel', async () => {
    const ipcMain = new InProcessIpcMain();
    ipcMain.handle('x', () => () => 'a function');
    expect(() => ipcMain.handle('x', () => 1)).toThrow("Attempted to register a second handler for 'x'");
    const { ipcRenderer } = connectRenderer(ipcMain, 'strata://console/');
    await expect(ipcRenderer.invoke('x', { f: () => 1 })).rejects.toThrow('An object could not be cloned.');
    await expect(ipcRenderer.invoke('x')).rejects.toThrow("Error invoking remote method 'x': Error: An object could not be cloned.");
  });

  it('passes the sending frame’s URL, and null once the window has closed', async () => {
    const ipcMain = new InProcessIpcMain();
    const urls: Array<string | null> = [];
    ipcMain.handle('who', (event) => urls.push(event.senderFrame?.url ?? null));
    const r = connectRenderer(ipcMain, 'strata://console/index.html');
    await r.ipcRenderer.invoke('who');
    r.navigate('https://example.com/');
    await r.ipcRenderer.invoke('who');
    r.destroy();
    await r.ipcRenderer.invoke('who');
    expect(urls).toEqual(['strata://console/index.html', 'https://example.com/', null]);
    expect(r.webContents.isDestroyed()).toBe(true);
    expect(() => r.webContents.send('e', 1)).toThrow('Object has been destroyed');
    expect(() => r.webContents.getURL()).toThrow('Object has been destroyed');
  });

  it('delivers send() to on() listeners as clones, later, until the listener is removed', async () => {
    const ipcMain = new InProcessIpcMain();
    const r = connectRenderer(ipcMain, 'strata://console/');
    const got: unknown[] = [];
    const listener = (_e: unknown, payload: unknown) => got.push(payload);
    r.ipcRenderer.on('news', listener);
    const payload = { n: 1 };
    r.webContents.send('news', payload);
    expect(got).toEqual([]);
    payload.n = 2;
    await new Promise((resolve) => setImmediate(resolve));
    expect(got).toEqual([{ n: 1 }]);
    r.ipcRenderer.removeListener('news', listener);
    r.webContents.send('news', payload);
    await new Promise((resolve) => setImmediate(resolve));
    expect(got).toHaveLength(1);
  });
});
