// The bearer token of the agent's socket: 32 random bytes as hex, kept 0600 in the state directory
// so a console run by the same user can read it, and reused for as long as the file exists.
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { StrataError, toStrataError } from '../../agent-core/api/errors.js';

export const TOKEN_FILE_NAME = 'agent.token';
const TOKEN_PATTERN = /^[0-9a-f]{64}$/;

export async function readOrCreateToken(stateDir: string): Promise<string> {
  const file = path.join(stateDir, TOKEN_FILE_NAME);
  try {
    await mkdir(stateDir, { recursive: true, mode: 0o700 });
    try {
      await writeFile(file, `${randomBytes(32).toString('hex')}\n`, { flag: 'wx', mode: 0o600 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    // Whoever made the file, it must not be readable by others; a umask cannot loosen this.
    if (((await stat(file)).mode & 0o077) !== 0) await chmod(file, 0o600);
    const token = (await readFile(file, 'utf8')).trim();
    if (!TOKEN_PATTERN.test(token)) {
      throw new StrataError('Corrupt', `${file} does not hold an agent token (64 hex digits); delete it and start the agent again to make a new one.`);
    }
    return token;
  } catch (err) {
    throw toStrataError(err, `Reading the agent token ${file}`);
  }
}
