// The console's state: what the agent said last (sources, snapshots, jobs, settings), kept fresh by
// its events, and where the user is. Views read slices of it; every call to the agent goes through
// `call`, which turns a typed error into the message the views show.
import { create } from 'zustand';
import type { ConfiguredSource, Settings } from '../../agent-core/api/console-config.js';
import type { ApiClient, Channel, ClientInput, Output } from '../../agent-core/api/contract.js';
import type { ErrorPayload } from '../../agent-core/api/errors.js';
import type { Job, JobProgress } from '../../agent-core/api/job.js';
import type { SnapshotSummary } from '../../agent-core/api/snapshot.js';
import { connectToAgent, type ConnectionState } from './api/connection.js';

export type Route =
  | { view: 'sources' }
  | { view: 'disk'; sourceId: string }
  | { view: 'snapshots'; sourceId: string | null }
  | { view: 'jobs' }
  | { view: 'settings' }
  | { view: 'restore'; sourceId: string | null; snapshotId: string | null };

export function parseRoute(hash: string): Route {
  const [head = '', a, b] = hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  switch (head) {
    case 'disk':
      return a ? { view: 'disk', sourceId: a } : { view: 'sources' };
    case 'snapshots':
      return { view: 'snapshots', sourceId: a || null };
    case 'jobs':
      return { view: 'jobs' };
    case 'settings':
      return { view: 'settings' };
    case 'restore':
      return { view: 'restore', sourceId: a || null, snapshotId: b || null };
    default:
      return { view: 'sources' };
  }
}

export function routeHash(r: Route): string {
  switch (r.view) {
    case 'disk':
      return `#/disk/${encodeURIComponent(r.sourceId)}`;
    case 'snapshots':
      return r.sourceId ? `#/snapshots/${encodeURIComponent(r.sourceId)}` : '#/snapshots';
    case 'restore':
      return `#/restore${r.sourceId ? `/${encodeURIComponent(r.sourceId)}${r.snapshotId ? `/${r.snapshotId}` : ''}` : ''}`;
    default:
      return `#/${r.view}`;
  }
}

export interface Notice {
  id: number;
  kind: 'error' | 'success' | 'info';
  text: string;
}

interface ConsoleState {
  connection: ConnectionState;
  client: ApiClient | null;
  agent: { agentVersion: string; stateDir: string } | null;
  sources: ConfiguredSource[] | null;
  snapshots: SnapshotSummary[] | null;
  jobs: Job[];
  settings: Settings | null;
  notices: Notice[];
  route: Route;

  start(): void;
  navigate(r: Route): void;
  call<C extends Channel>(channel: C, input: ClientInput<C>): Promise<Output<C> | null>;
  refresh(): Promise<void>;
  refreshSnapshots(): Promise<void>;
  notify(kind: Notice['kind'], text: string): void;
  dismiss(id: number): void;
}

let noticeId = 1;

function applyProgress(jobs: Job[], p: JobProgress): Job[] {
  return jobs.map((j) => (j.id === p.jobId ? { ...j, state: 'running', progress: p } : j));
}

export const useConsole = create<ConsoleState>((set, get) => ({
  connection: 'connecting',
  client: null,
  agent: null,
  sources: null,
  snapshots: null,
  jobs: [],
  settings: null,
  notices: [],
  route: parseRoute(typeof location === 'undefined' ? '' : location.hash),

  start() {
    if (get().client) return;
    const client = connectToAgent((connection) => set({ connection }));
    if (!client) return;
    set({ client });
    client.onEvent((e) => {
      switch (e.event) {
        case 'jobs:queued':
          set((s) => ({ jobs: [...s.jobs.filter((j) => j.id !== e.payload.id), e.payload] }));
          break;
        case 'jobs:progress':
          set((s) => ({ jobs: applyProgress(s.jobs, e.payload) }));
          break;
        case 'jobs:finished': {
          const job = get().jobs.find((j) => j.id === e.payload.jobId);
          const what = job ? `${job.kind[0]!.toUpperCase()}${job.kind.slice(1)}${job.source ? ` of ${job.source.split('/').pop()}` : ''}` : 'A job';
          if (e.payload.state === 'succeeded') get().notify('success', `${what} finished.`);
          else if (e.payload.state === 'failed') get().notify('error', `${what} failed: ${e.payload.error?.message ?? 'see Jobs'}`);
          else get().notify('info', `${what} was cancelled.`);
          void get().refresh();
          break;
        }
        case 'sources:changed':
          void get().refresh();
          break;
        case 'settings:changed':
          set({ settings: e.payload });
          break;
      }
    });
    void (async () => {
      const hello = await get().call('agent:hello', {});
      if (hello) set({ agent: { agentVersion: hello.agentVersion, stateDir: hello.stateDir } });
      await get().refresh();
    })();
    window.addEventListener('hashchange', () => set({ route: parseRoute(location.hash) }));
  },

  navigate(r) {
    const hash = routeHash(r);
    if (location.hash !== hash) history.pushState(null, '', hash);
    set({ route: r });
  },

  async call(channel, input) {
    const client = get().client;
    if (!client) return null;
    const reply = await client.call(channel, input);
    if (reply.ok) return reply.value;
    get().notify('error', describeError(reply.error));
    return null;
  },

  async refresh() {
    const { client } = get();
    if (!client) return;
    const [sources, settings, jobs] = await Promise.all([client.call('sources:list', {}), client.call('settings:get', {}), client.call('jobs:list', {})]);
    set({
      ...(sources.ok ? { sources: sources.value } : {}),
      ...(settings.ok ? { settings: settings.value } : {}),
      ...(jobs.ok ? { jobs: jobs.value } : {}),
    });
    await get().refreshSnapshots();
  },

  async refreshSnapshots() {
    const { client, settings } = get();
    if (!client || !settings || settings.repository.id === null) return set({ snapshots: [] });
    const reply = await client.call('snapshots:list', {});
    set({ snapshots: reply.ok ? reply.value : [] });
  },

  notify(kind, text) {
    const id = noticeId++;
    set((s) => ({ notices: [...s.notices.slice(-3), { id, kind, text }] }));
    if (kind !== 'error') setTimeout(() => get().dismiss(id), 6000);
  },

  dismiss(id) {
    set((s) => ({ notices: s.notices.filter((n) => n.id !== id) }));
  },
}));

export function describeError(e: ErrorPayload): string {
  return e.retryable ? `${e.message} (this may work if you try again)` : e.message;
}

/** The snapshots of one configured source, oldest first. */
export function snapshotsOf(source: ConfiguredSource, snapshots: readonly SnapshotSummary[]): SnapshotSummary[] {
  return snapshots.filter((s) => s.sourceName === source.sourceName).sort((a, b) => a.createdAt.localeCompare(b.createdAt));
}
