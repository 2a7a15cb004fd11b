// The console's frame: navigation, connection state, notices, and the view the route names.
import { useEffect } from 'react';
import { useConsole, type Route } from './store.js';
import { DiskView } from './views/DiskView.js';
import { JobsView } from './views/JobsView.js';
import { RestoreWizard } from './views/RestoreWizard.js';
import { SettingsView } from './views/SettingsView.js';
import { SnapshotsView } from './views/SnapshotsView.js';
import { SourcesView } from './views/SourcesView.js';

const NAV: { label: string; route: Route; views: Route['view'][] }[] = [
  { label: 'Sources', route: { view: 'sources' }, views: ['sources', 'disk'] },
  { label: 'Snapshots', route: { view: 'snapshots', sourceId: null }, views: ['snapshots'] },
  { label: 'Restore', route: { view: 'restore', sourceId: null, snapshotId: null }, views: ['restore'] },
  { label: 'Jobs', route: { view: 'jobs' }, views: ['jobs'] },
  { label: 'Settings', route: { view: 'settings' }, views: ['settings'] },
];

function ConnectionBadge() {
  const connection = useConsole((s) => s.connection);
  const text = { connecting: 'Connecting to the agent…', open: 'Agent connected', closed: 'Agent disconnected; reconnecting…', unauthorized: 'Not connected' }[connection];
  const colour = connection === 'open' ? 'bg-emerald-500' : connection === 'connecting' ? 'bg-amber-400' : 'bg-red-500';
  return (
    <span className="flex items-center gap-2 text-xs text-slate-300" role="status" aria-label="Agent connection">
      <span className={`h-2 w-2 rounded-full ${colour}`} aria-hidden="true" />
      {text}
    </span>
  );
}

function Notices() {
  const notices = useConsole((s) => s.notices);
  const dismiss = useConsole((s) => s.dismiss);
  return (
    <div className="fixed right-4 bottom-4 z-50 flex w-96 flex-col gap-2" role="log" aria-label="Notifications" aria-live="polite">
      {notices.map((n) => (
        <div
          key={n.id}
          role={n.kind === 'error' ? 'alert' : 'status'}
          className={`flex items-start gap-3 rounded-md p-3 text-sm shadow-lg ring-1 ${n.kind === 'error' ? 'bg-red-50 text-red-900 ring-red-200' : n.kind === 'success' ? 'bg-emerald-50 text-emerald-900 ring-emerald-200' : 'bg-white text-slate-800 ring-slate-200'}`}
        >
          <span className="flex-1">{n.text}</span>
          <button type="button" aria-label="Dismiss" className="text-slate-500 hover:text-slate-900" onClick={() => dismiss(n.id)}>
            ×
          </button>
        </div>
      ))}
    </div>
  );
}

function NoAgent() {
  return (
    <div className="mx-auto mt-24 max-w-lg rounded-lg bg-white p-6 shadow ring-1 ring-slate-200">
      <h1 className="mb-2 text-lg font-semibold">This console is not connected to an agent</h1>
      <p className="text-sm text-slate-700">
        Open the address that <code className="rounded bg-slate-100 px-1">strata console</code> printed when it started: it carries the access token. If the agent was restarted, its
        address changed too.
      </p>
    </div>
  );
}

export function App() {
  const { route, navigate, start, connection, client, agent } = useConsole();
  useEffect(() => start(), [start]);
  if (!client && connection === 'unauthorized') return <NoAgent />;
  return (
    <div className="flex h-screen bg-slate-50 text-slate-900">
      <nav aria-label="Main" className="flex w-52 shrink-0 flex-col gap-1 bg-slate-900 p-3 text-slate-100">
        <div className="mb-4 px-2 pt-1">
          <div className="text-lg font-semibold tracking-tight">Strata</div>
          <div className="text-xs text-slate-400">block-level backup</div>
        </div>
        {NAV.map((item) => {
          const current = item.views.includes(route.view);
          return (
            <a
              key={item.label}
              href={`#/${item.route.view}`}
              aria-current={current ? 'page' : undefined}
              onClick={(e) => {
                e.preventDefault();
                navigate(item.route);
              }}
              className={`rounded-md px-2 py-1.5 text-sm ${current ? 'bg-slate-700 font-medium text-white' : 'text-slate-300 hover:bg-slate-800'}`}
            >
              {item.label}
            </a>
          );
        })}
        <div className="mt-auto flex flex-col gap-1 px-2">
          <ConnectionBadge />
          {agent ? <span className="text-xs text-slate-500">agent {agent.agentVersion}</span> : null}
        </div>
      </nav>
      <main className="min-w-0 flex-1 overflow-auto p-6">
        {route.view === 'sources' ? <SourcesView /> : null}
        {route.view === 'disk' ? <DiskView sourceId={route.sourceId} /> : null}
        {route.view === 'snapshots' ? <SnapshotsView sourceId={route.sourceId} /> : null}
        {route.view === 'restore' ? <RestoreWizard key={`${route.sourceId}-${route.snapshotId}`} sourceId={route.sourceId} snapshotId={route.snapshotId} /> : null}
        {route.view === 'jobs' ? <JobsView /> : null}
        {route.view === 'settings' ? <SettingsView /> : null}
      </main>
      <Notices />
    </div>
  );
}
