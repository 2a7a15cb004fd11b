// Real repository directories for agent-core tests, which may not import drivers/ themselves:
// a LocalDirBackend in a fresh temp directory, and a fingerprint of every file under a directory.
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LocalDirBackend } from '../drivers/storage/local-dir-backend.js';

export interface TempRepoDir {
  /** The parent temp directory (removed by cleanup). */
  readonly root: string;
  /** Where the repository lives: root/repo, not created yet. */
  readonly dir: string;
  readonly backend: LocalDirBackend;
  cleanup(): void;
}

export function tempRepoDir(prefix = 'strata-repo-'): TempRepoDir {
  const root = mkdtempSync(path.join(os.tmpdir(), prefix));
  const dir = path.join(root, 'repo');
  return { root, dir, backend: new LocalDirBackend(dir), cleanup: () => rmSync(root, { recursive: true, force: true }) };
}

export function localBackend(dir: string): LocalDirBackend {
  return new LocalDirBackend(dir);
}

/** Relative path → SHA-256 of every file, and "dir" for every directory, so empty ones count too. */
export function fingerprintTree(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string): void => {
    for (const entry of readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const child = rel ? `${rel}/${entry.name}` : entry.name;
      if (entry.isDirectory()) {
        out[`${child}/`] = 'dir';
        walk(child);
      } else {
        out[child] = createHash('sha256').update(readFileSync(path.join(dir, child))).digest('hex');
      }
    }
  };
  walk('');
  return out;
}
