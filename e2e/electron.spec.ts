// The desktop app itself, where this machine has the Electron binary: the window opens on the
// console, the console reaches the embedded agent over IPC, and the page has no Node. Elsewhere the
// test is skipped with the reason (the IPC path is tested in Node by electron/ipc-transport.test.ts).
import { _electron as electron, expect, test } from '@playwright/test';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { StrataBridge } from '../agent-core/api/bridge.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const MAIN = path.join(ROOT, 'dist', 'electron', 'main.mjs');
const RENDERER = path.join(ROOT, 'dist', 'renderer', 'index.html');

/** The Electron executable, read from the package's path.txt: require('electron') would try to download a missing one. */
function electronBinary(): string | null {
  const pkg = path.join(ROOT, 'node_modules', 'electron');
  const pathFile = path.join(pkg, 'path.txt');
  if (!existsSync(pathFile)) return null;
  const binary = path.join(process.env.ELECTRON_OVERRIDE_DIST_PATH || path.join(pkg, 'dist'), readFileSync(pathFile, 'utf8').trim());
  return existsSync(binary) ? binary : null;
}

const binary = electronBinary();
const SKIP_REASON =
  'The Electron binary is not installed on this machine (its installer downloads it from outside the npm registry); the IPC transport is tested in Node by electron/ipc-transport.test.ts.';

test.describe('the Electron app', () => {
  if (binary === null) console.log(`electron.spec.ts skipped: ${SKIP_REASON}`);
  test.skip(binary === null, SKIP_REASON);

  let stateDir: string;

  test.beforeAll(() => {
    for (const file of [MAIN, RENDERER]) {
      if (!existsSync(file)) throw new Error(`${path.relative(ROOT, file)} is missing; run \`npm run build\` first.`);
    }
    stateDir = mkdtempSync(path.join(os.tmpdir(), 'strata-electron-e2e-'));
  });

  test.afterAll(() => {
    if (stateDir) rmSync(stateDir, { recursive: true, force: true });
  });

  test('opens the console window, which reaches the embedded agent over IPC', async () => {
    const app = await electron.launch({
      executablePath: binary!,
      args: [MAIN],
      env: { ...process.env, STRATA_STATE_DIR: stateDir, STRATA_AGENT: 'embedded' },
    });
    try {
      const window = await app.firstWindow();
      await expect(window).toHaveTitle('Strata');
      await expect(window.getByRole('main')).toBeVisible({ timeout: 30_000 });
      expect(window.url()).toBe('strata://console/index.html');

      const hello = await window.evaluate(() => (globalThis as unknown as { strata: StrataBridge }).strata.call('agent:hello', {}));
      expect(hello).toMatchObject({ ok: true, value: { stateDir } });
      const unknown = await window.evaluate(() => (globalThis as unknown as { strata: StrataBridge }).strata.call('disks:wipe', {}));
      expect(unknown).toMatchObject({ ok: false, error: { code: 'NotFound' } });

      // Isolated and sandboxed: no Node in the page, and the bridge is all it was given.
      expect(await window.evaluate(() => typeof (globalThis as Record<string, unknown>).require)).toBe('undefined');
      expect(await window.evaluate(() => typeof (globalThis as Record<string, unknown>).process)).toBe('undefined');
      expect(await window.evaluate(() => Object.keys((globalThis as unknown as { strata: object }).strata).sort())).toEqual(['call', 'onEvent']);

      // New windows are denied, and the page cannot leave the console.
      await window.evaluate(() => (globalThis as unknown as { open(url: string): unknown }).open('https://example.com/'));
      await window.evaluate(() => {
        (globalThis as unknown as { location: { href: string } }).location.href = 'https://example.com/';
      });
      await window.waitForTimeout(500);
      expect(app.windows()).toHaveLength(1);
      expect(window.url()).toBe('strata://console/index.html');
    } finally {
      await app.close();
    }
  });
});
