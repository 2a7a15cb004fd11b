// The long-lived agent: the job queue and the handlers of every API channel, composed once and
// served by any number of transports (the local socket, Electron IPC). Closing it cancels its jobs.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { API_VERSION, type AgentEvent, type Handlers } from '../agent-core/api/contract.js';
import { StrataError } from '../agent-core/api/errors.js';
import { Catalog } from '../agent-core/catalog/catalog.js';
import { JobQueue } from './jobs.js';
import { backup, initRepository, inspectSource, listSnapshots, restore, verify, type AgentContext } from './operations.js';

export interface AgentOptions {
  readonly stateDir: string;
  /** Opens encrypted repositories; defaults to STRATA_PASSWORD. */
  readonly password?: () => string | null;
}

export interface Agent {
  readonly stateDir: string;
  readonly handlers: Handlers;
  readonly jobs: JobQueue;
  onEvent(listener: (e: AgentEvent) => void): () => void;
  close(): Promise<void>;
}

/** The version in package.json, found from here in the sources (agent/) and in the build (dist/agent/). */
function agentVersion(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let up = 0; up < 3; up++, dir = path.dirname(dir)) {
    try {
      const pkg = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'strata' && pkg.version) return pkg.version;
    } catch {
      // not here; look one level up
    }
  }
  return 'unknown';
}

export async function openAgent(options: AgentOptions): Promise<Agent> {
  const { stateDir } = options;
  const password = options.password ?? (() => process.env.STRATA_PASSWORD ?? null);
  const ctx: AgentContext = { stateDir, password };
  // Jobs a crashed agent left "running" are marked failed before this one lists any.
  const catalog = await Catalog.open(path.join(stateDir, 'catalog.sqlite'));
  try {
    await catalog.markAbandonedJobs();
  } finally {
    await catalog.close();
  }
  const jobs = new JobQueue();
  const version = agentVersion();

  const handlers: Handlers = {
    'agent:hello': async () => ({ apiVersion: API_VERSION, agentVersion: version, stateDir }),
    'sources:inspect': ({ path: sourcePath }) => inspectSource(sourcePath),
    'repository:init': async ({ repo, encryption, password: newPassword, fullEvery }) => {
      if (encryption !== 'none' && !newPassword) {
        throw new StrataError('InvalidInput', 'An encrypted repository needs a password; give one, or choose encryption "none".');
      }
      return initRepository(repo, { encryption, password: encryption === 'none' ? null : (newPassword ?? null), ...(fullEvery ? { fullEvery } : {}) });
    },
    'snapshots:list': ({ repo }) => listSnapshots(ctx, repo),
    'jobs:start-backup': async ({ source, repo, tags, full }) => ({
      jobId: jobs.start({
        kind: 'backup',
        repo,
        source,
        run: async (r) => ({ kind: 'backup', snapshot: await backup({ ...ctx, ...r }, source, repo, { tags: tags ?? [], full: full ?? false }) }),
      }),
    }),
    'jobs:start-restore': async ({ snapshot, repo, target, force }) => ({
      jobId: jobs.start({
        kind: 'restore',
        repo,
        source: target,
        run: async (r) => ({ kind: 'restore', restore: await restore({ ...ctx, ...r }, snapshot, repo, target, { force: force ?? false }) }),
      }),
    }),
    'jobs:start-verify': async ({ repo, readData }) => ({
      jobId: jobs.start({
        kind: 'verify',
        repo,
        source: null,
        run: async (r) => ({ kind: 'verify', report: await verify({ ...ctx, ...r }, repo, { readData: readData ?? false }) }),
      }),
    }),
    'jobs:list': async () => jobs.list(),
    'jobs:cancel': async ({ jobId }) => jobs.cancel(jobId),
  };

  return {
    stateDir,
    handlers,
    jobs,
    onEvent: (listener) => jobs.subscribe(listener),
    close: () => jobs.close(),
  };
}
