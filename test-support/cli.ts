// Runs the strata CLI from source (through tsx) the way a user runs ./bin/strata, for tests.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
const main = path.join(root, 'cli', 'main.ts');

export interface CliResult {
  status: number;
  stdout: string;
  stderr: string;
  /** Parsed JSON lines of stdout (lines that are not JSON are skipped). */
  lines: Record<string, unknown>[];
}

function parseLines(stdout: string): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const line of stdout.split('\n')) {
    if (!line.startsWith('{') && !line.startsWith('[')) continue;
    try {
      out.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      // progress bars and text are not JSON
    }
  }
  return out;
}

export function strata(args: string[], env: Record<string, string> = {}): CliResult {
  const r = spawnSync(process.execPath, ['--import', 'tsx', main, ...args], {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, ...env },
    maxBuffer: 64 << 20,
  });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr, lines: parseLines(r.stdout) };
}

export function strataAsync(args: string[], env: Record<string, string> = {}): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', main, ...args], { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
}

export function summaryOf(r: CliResult): Record<string, unknown> {
  const s = r.lines.filter((l) => l.type === 'summary').at(-1);
  if (!s) throw new Error(`no summary line (exit ${r.status}):\n${r.stdout}\n${r.stderr}`);
  return s;
}
