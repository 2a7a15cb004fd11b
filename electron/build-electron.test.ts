// scripts/build-electron.mjs: fast, offline, and producing a preload a sandbox can load and a main
// bundle whose imports of the agent land on tsc's output beside it.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Scratch } from '../test-support/disk.js';

const ROOT = path.resolve(import.meta.dirname, '..');

describe('the Electron build', () => {
  const scratch = new Scratch('strata-build-electron-');
  afterAll(() => scratch.cleanup());
  const out = scratch.path('out');
  it('bundles main and preload without the Electron binary', () => {
    execFileSync(process.execPath, [path.join(ROOT, 'scripts', 'build-electron.mjs'), '--outdir', out], { cwd: ROOT, stdio: 'pipe' });
    expect(existsSync(path.join(out, 'main.mjs'))).toBe(true);
    expect(existsSync(path.join(out, 'preload.cjs'))).toBe(true);
  });

  it('makes a preload that requires only electron and exposes window.strata', () => {
    const preload = readFileSync(path.join(out, 'preload.cjs'), 'utf8');
    expect([...preload.matchAll(/require\("([^"]+)"\)/g)].map((m) => m[1])).toEqual(['electron']);
    expect(preload).not.toMatch(/^\s*(import|export)\s/m);
    expect(preload).toContain('exposeInMainWorld(BRIDGE_GLOBAL');
    expect(preload).toContain('"strata:call"');
    expect(preload).not.toContain('zod');
  });

  it('leaves the agent out of main: its imports name files tsc builds into dist/', () => {
    const main = readFileSync(path.join(out, 'main.mjs'), 'utf8');
    const specs = [...new Set([...main.matchAll(/^import .* from "([^"]+)";$/gm)].map((m) => m[1]!))];
    const relative = specs.filter((s) => s.startsWith('.'));
    expect(relative.length).toBeGreaterThan(3);
    for (const spec of relative) {
      expect(spec, spec).toMatch(/^\.\.\/(agent|agent-core|drivers|native)\/.*\.js$/);
      // dist/electron/main.mjs + ../agent/x.js = dist/agent/x.js, built from agent/x.ts.
      expect(existsSync(path.join(ROOT, 'electron', spec.replace(/\.js$/, '.ts'))), spec).toBe(true);
    }
    expect(specs).toContain('electron');
    expect(main).not.toMatch(/^\/\/ agent\/agent\.ts$/m);
    expect(main).toContain('// electron/ipc-transport.ts');
  });
});
