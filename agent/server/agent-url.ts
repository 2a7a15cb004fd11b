// Where a running agent can be reached: `strata agent` and `strata console` publish their address in
// <stateDir>/agent.url (0600, beside agent.token) while they listen, so the CLI finds them on any port.
import { chmod, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { toStrataError } from '../../agent-core/api/errors.js';

export const URL_FILE_NAME = 'agent.url';

/** An agent listening on every address is reached through loopback, the one address its Host check always allows. */
export function reachableUrl(url: string): string {
  const u = new URL(url);
  if (u.hostname === '0.0.0.0') u.hostname = '127.0.0.1';
  else if (u.hostname === '[::]') u.hostname = '[::1]';
  return u.origin;
}

/** Writes the address atomically (a reader never sees half of it), readable by the agent's user only. */
export async function publishAgentUrl(stateDir: string, url: string): Promise<void> {
  const file = path.join(stateDir, URL_FILE_NAME);
  const temp = `${file}.${process.pid}.tmp`;
  try {
    await mkdir(stateDir, { recursive: true, mode: 0o700 });
    await writeFile(temp, `${reachableUrl(url)}\n`, { mode: 0o600 });
    // A umask cannot loosen this, and neither can a file left by an earlier run.
    await chmod(temp, 0o600);
    await rename(temp, file);
  } catch (err) {
    await rm(temp, { force: true });
    throw toStrataError(err, `Writing the agent's address to ${file}`);
  }
}

/** Removes the address on a clean stop, unless another agent has published its own since. */
export async function withdrawAgentUrl(stateDir: string, url: string): Promise<void> {
  const file = path.join(stateDir, URL_FILE_NAME);
  if ((await readAgentUrl(stateDir)) !== reachableUrl(url)) return;
  await rm(file, { force: true });
}

/** The published address, or null when there is none (no agent, or one that never started here). */
export async function readAgentUrl(stateDir: string): Promise<string | null> {
  let text: string;
  try {
    text = await readFile(path.join(stateDir, URL_FILE_NAME), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw toStrataError(err, `Reading the agent's address in ${path.join(stateDir, URL_FILE_NAME)}`);
  }
  const url = text.trim();
  try {
    const u = new URL(url);
    return u.protocol === 'http:' ? u.origin : null;
  } catch {
    return null;
  }
}
