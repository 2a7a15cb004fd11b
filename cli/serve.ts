// `strata console` and `strata agent`: the agent on its local socket, with or without the console's
// renderer. Both run until SIGINT or SIGTERM, then let running jobs stop at a checkpoint and exit.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { StrataError } from '../agent-core/api/errors.js';
import { CONSOLE_PORT, SYSTEM_AGENT_PORT } from '../agent-core/api/socket-protocol.js';
import { openAgent } from '../agent/agent.js';
import { initRepository } from '../agent/operations.js';
import { startAgentServer, type AgentServer } from '../agent/server/agent-server.js';
import { publishAgentUrl, URL_FILE_NAME, withdrawAgentUrl } from '../agent/server/agent-url.js';

export const DEFAULT_CONSOLE_PORT = CONSOLE_PORT;
export const DEFAULT_AGENT_PORT = SYSTEM_AGENT_PORT;

/** "HOST:PORT", "[IPv6]:PORT", ":PORT" or "PORT"; loopback when no host is given. */
export function parseListen(value: string | undefined, defaultPort: number): { host: string; port: number } {
  if (value === undefined) return { host: '127.0.0.1', port: defaultPort };
  const v6 = /^\[([0-9a-fA-F:.]+)\]:(\d{1,5})$/.exec(value);
  const colon = value.lastIndexOf(':');
  const [host, portText] = v6 ? [v6[1]!, v6[2]!] : colon >= 0 ? [value.slice(0, colon), value.slice(colon + 1)] : ['', value];
  const port = /^\d{1,5}$/.test(portText) ? Number(portText) : NaN;
  if (!(port >= 0 && port <= 65535) || /[\s/[\]]/.test(host)) {
    throw new StrataError('InvalidInput', `--listen takes HOST:PORT (for example 127.0.0.1:${defaultPort}), not "${value}".`);
  }
  return { host: host || '127.0.0.1', port };
}

/** The renderer bundle next to the build: dist/renderer, found from dist/cli or from the sources. */
export function rendererDir(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  for (const candidate of [path.join(here, '..', 'renderer'), path.join(here, '..', 'dist', 'renderer')]) {
    if (existsSync(path.join(candidate, 'index.html'))) return candidate;
  }
  throw new StrataError('NotFound', 'The console is not built; run `npm run build` (or `npm ci`, which builds it) first.');
}

interface ServeOptions {
  stateDir: string;
  listen: { host: string; port: number };
  password: () => string | null;
  withConsole: boolean;
}

export async function serve(options: ServeOptions): Promise<void> {
  const staticDir = options.withConsole ? rendererDir() : undefined;
  const repository = path.join(options.stateDir, 'repository');
  // The console works with no flags: a default local repository is made on first start.
  if (options.withConsole && !existsSync(path.join(repository, 'config'))) await initRepository(repository, { encryption: 'none', password: null });
  const agent = await openAgent({ stateDir: options.stateDir, password: options.password, defaultRepository: repository });
  let server: AgentServer;
  const start = (port: number) => startAgentServer({ stateDir: options.stateDir, host: options.listen.host, port, agent, ...(staticDir ? { staticDir } : {}) });
  try {
    server = await start(options.listen.port);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') {
      await agent.close();
      throw err;
    }
    // Another console holds the default port: take any free one rather than fail.
    server = await start(0);
    process.stderr.write(`strata: port ${options.listen.port} is in use; listening on ${server.port} instead.\n`);
  }
  // The CLI finds this agent through agent.url (agent/server/find-agent.ts), whatever port it got.
  try {
    await publishAgentUrl(options.stateDir, server.url);
  } catch (err) {
    await server.close();
    await agent.close();
    throw err;
  }
  process.stdout.write(options.withConsole ? `${server.consoleUrl}\n` : `${server.url}\n`);
  process.stdout.write(
    options.withConsole
      ? `Strata console with its agent (state in ${options.stateDir}). Open the address above in a browser; Ctrl-C stops it.\n`
      : `Strata agent listening (state in ${options.stateDir}; token in ${path.join(options.stateDir, 'agent.token')}, address in ${path.join(options.stateDir, URL_FILE_NAME)}).\n`,
  );
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  process.stderr.write('strata: stopping; running jobs end at their next checkpoint.\n');
  await withdrawAgentUrl(options.stateDir, server.url).catch(() => undefined);
  await server.close();
  await agent.close();
}
