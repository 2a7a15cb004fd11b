// Where the agent keeps its catalog and settings unless told otherwise; a module of its own so the
// command line can name it without loading the engine.
import os from 'node:os';
import path from 'node:path';

/** The state directory: root's in /var/lib, a user's under XDG_STATE_HOME. */
export function defaultStateDir(): string {
  if (process.getuid?.() === 0) return '/var/lib/strata';
  const base = process.env.XDG_STATE_HOME || path.join(os.homedir(), '.local', 'state');
  return path.join(base, 'strata');
}
