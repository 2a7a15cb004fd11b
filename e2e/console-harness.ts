// Starts `strata console` on a fresh state directory for a test and stops it afterwards; the URL
// with the token is the first line the command prints.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const ROOT = path.resolve(import.meta.dirname, '..');

export interface RunningConsole {
  url: string;
  stateDir: string;
  output(): string;
  stop(): Promise<void>;
}

export async function startConsole(): Promise<RunningConsole> {
  const stateDir = mkdtempSync(path.join(os.tmpdir(), 'strata-e2e-'));
  const child: ChildProcess = spawn(path.join(ROOT, 'bin', 'strata'), ['console', '--state-dir', stateDir, '--listen', '127.0.0.1:0'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, STRATA_PASSWORD: '' },
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`strata console printed no URL in 30 s:\n${out}`)), 30_000);
    const check = () => {
      const first = out.split('\n')[0] ?? '';
      if (out.includes('\n') && first.startsWith('http')) {
        clearTimeout(timer);
        resolve(first.trim());
      }
    };
    child.stdout!.on('data', check);
    child.once('exit', (code) => reject(new Error(`strata console exited (${code}) before printing its URL:\n${out}`)));
  });
  return {
    url,
    stateDir,
    output: () => out,
    stop: async () => {
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGINT');
        await exited;
      }
      rmSync(stateDir, { recursive: true, force: true });
    },
  };
}
