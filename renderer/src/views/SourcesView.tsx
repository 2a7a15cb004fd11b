// Sources: every disk or image the agent protects, drawn as a bar of its volumes, with its last
// backup, its schedule and what to do next. With nothing configured, it offers a demo disk.
import { useState } from 'react';
import type { ConfiguredSource } from '../../../agent-core/api/console-config.js';
import { formatBytes, formatDateTime } from '../components/format.js';
import { useConsole } from '../store.js';
import { Badge, Button, Card, Field, inputClass, PageTitle, PartitionBar } from '../ui.js';

function usedPercent(used: number, size: number): string {
  return size > 0 ? `${Math.round((used / size) * 100)} %` : '–';
}

function ScheduleEditor({ source }: { source: ConfiguredSource }) {
  const call = useConsole((s) => s.call);
  const [value, setValue] = useState(source.schedule ?? '');
  const changed = value.trim() !== (source.schedule ?? '');
  return (
    <form
      className="flex items-end gap-2"
      onSubmit={(e) => {
        e.preventDefault();
        void call('sources:update', { id: source.id, schedule: value.trim() === '' ? null : value.trim() });
      }}
    >
      <Field label="Schedule" hint="cron, local time; e.g. 0 2 * * * for 02:00 daily; empty for none">
        <input className={`${inputClass} w-44 font-mono`} aria-label={`Schedule of ${source.label}`} value={value} onChange={(e) => setValue(e.target.value)} placeholder="no schedule" />
      </Field>
      <Button type="submit" disabled={!changed}>
        Save schedule
      </Button>
    </form>
  );
}

function SourceCard({ source }: { source: ConfiguredSource }) {
  const { call, navigate, jobs } = useConsole();
  const running = jobs.some((j) => j.kind === 'backup' && (j.state === 'running' || j.state === 'queued') && (j.source === source.path || j.source === source.sourceName));
  const layout = source.layout;
  return (
    <Card aria-label={`Source ${source.label}`}>
      <div className="mb-3 flex flex-wrap items-start justify-between gap-3">
        <div>
          <h2 className="text-base font-semibold">
            {source.label} {source.demo ? <Badge>demo</Badge> : null}
          </h2>
          <div className="font-mono text-xs text-slate-500">{source.path}</div>
        </div>
        <div className="flex flex-wrap gap-2">
          <Button tone="primary" disabled={running || !layout} onClick={() => void call('jobs:start-backup', { source: source.path })}>
            {running ? 'Backing up…' : 'Back up now'}
          </Button>
          <Button disabled={!layout} onClick={() => navigate({ view: 'disk', sourceId: source.id })}>
            Disk map
          </Button>
          <Button onClick={() => navigate({ view: 'snapshots', sourceId: source.id })}>Snapshots</Button>
          <Button disabled={!source.lastBackup} onClick={() => navigate({ view: 'restore', sourceId: source.id, snapshotId: source.lastBackup?.snapshotId ?? null })}>
            Restore
          </Button>
          {source.demo ? (
            <Button tone="ghost" onClick={() => void call('sources:change-demo', { id: source.id }).then((r) => r && useConsole.getState().notify('info', `Changed ${r.filesChanged} files on the demo disk.`))}>
              Change some files
            </Button>
          ) : null}
        </div>
      </div>
      {layout ? (
        <>
          <PartitionBar sizeBytes={layout.sizeBytes} volumes={layout.volumes} label={`Volumes of ${source.label}`} />
          <table className="mt-3 w-full text-left text-sm">
            <caption className="sr-only">Volumes of {source.label}</caption>
            <thead className="text-xs text-slate-500">
              <tr>
                <th className="py-1 font-medium">Volume</th>
                <th className="font-medium">Filesystem</th>
                <th className="font-medium">Label</th>
                <th className="font-medium">Size</th>
                <th className="font-medium">Used</th>
              </tr>
            </thead>
            <tbody>
              {layout.volumes.flatMap((v) => [
                <tr key={`${v.index}-${v.startBytes}`} className="border-t border-slate-100">
                  <td className="py-1">#{v.index}</td>
                  <td>{v.filesystem}</td>
                  <td>{v.label ?? '–'}</td>
                  <td>{formatBytes(v.sizeBytes)}</td>
                  <td>
                    {formatBytes(v.usedBytes)} ({usedPercent(v.usedBytes, v.sizeBytes)})
                  </td>
                </tr>,
                ...(v.logicalVolumes ?? []).map((lv) => (
                  <tr key={`${v.index}-${lv.name}`} className="text-slate-600">
                    <td className="py-0.5 pl-4">↳ {lv.name}</td>
                    <td>{lv.filesystem}</td>
                    <td>{lv.label ?? '–'}</td>
                    <td>{formatBytes(lv.sizeBytes)}</td>
                    <td>
                      {formatBytes(lv.usedBytes)} ({usedPercent(lv.usedBytes, lv.sizeBytes)})
                    </td>
                  </tr>
                )),
              ])}
            </tbody>
          </table>
          {layout.warnings.map((w) => (
            <p key={w} className="mt-2 text-xs text-amber-800">
              {w}
            </p>
          ))}
        </>
      ) : (
        <p role="alert" className="text-sm text-red-800">
          {source.layoutError?.message ?? 'The disk cannot be read.'}
        </p>
      )}
      <dl className="mt-3 grid grid-cols-2 gap-x-6 gap-y-1 text-sm md:grid-cols-4">
        <div>
          <dt className="text-xs text-slate-500">Size</dt>
          <dd>{layout ? formatBytes(layout.sizeBytes) : '–'}</dd>
        </div>
        <div>
          <dt className="text-xs text-slate-500">Last backup</dt>
          <dd>{source.lastBackup ? <>{formatDateTime(source.lastBackup.at)} <Badge kind={source.lastBackup.mode}>{source.lastBackup.mode}</Badge></> : 'never'}</dd>
        </div>
        <div>
          <dt className="text-xs text-slate-500">Next scheduled</dt>
          <dd>{source.nextRunAt ? formatDateTime(source.nextRunAt) : 'not scheduled'}</dd>
        </div>
        <div>
          <dt className="text-xs text-slate-500">Change tracking</dt>
          <dd>{source.tracking === 'live' ? 'live' : source.tracking === 'blind' ? 'interrupted (next backup resyncs)' : 'off (backups compare digests)'}</dd>
        </div>
      </dl>
      {source.lastJob?.state === 'failed' && source.lastJob.error ? (
        <p role="alert" className="mt-2 text-sm text-red-800">
          Last backup failed: {source.lastJob.error.message}
        </p>
      ) : null}
      <div className="mt-3 flex items-end justify-between gap-4 border-t border-slate-100 pt-3">
        <ScheduleEditor source={source} />
        {source.path.startsWith('/dev/') ? (
          <label className="flex items-center gap-2 text-sm">
            <input
              type="checkbox"
              className="h-4 w-4 accent-sky-700"
              checked={source.tracking !== 'off'}
              onChange={(e) => void call('sources:update', { id: source.id, tracking: e.target.checked })}
            />
            Track changes live (incrementals read only what changed)
          </label>
        ) : null}
        <Button tone="danger" onClick={() => void call('sources:remove', { id: source.id })} aria-label={`Remove ${source.label}`}>
          Remove
        </Button>
      </div>
    </Card>
  );
}

function AddSource() {
  const call = useConsole((s) => s.call);
  const [path, setPath] = useState('');
  const [label, setLabel] = useState('');
  return (
    <Card aria-label="Add a source">
      <h2 className="mb-2 text-base font-semibold">Add a disk or image</h2>
      <form
        className="flex flex-wrap items-end gap-3"
        onSubmit={(e) => {
          e.preventDefault();
          void call('sources:add', { path: path.trim(), ...(label.trim() ? { label: label.trim() } : {}) }).then((r) => {
            if (r) {
              setPath('');
              setLabel('');
            }
          });
        }}
      >
        <Field label="Path" hint="an image file, or a device such as /dev/sdb (devices need the agent to run as root)">
          <input className={`${inputClass} w-96 font-mono`} value={path} onChange={(e) => setPath(e.target.value)} placeholder="/path/to/disk.img" required />
        </Field>
        <Field label="Name">
          <input className={`${inputClass} w-48`} value={label} onChange={(e) => setLabel(e.target.value)} placeholder="optional" />
        </Field>
        <Button tone="primary" type="submit" disabled={path.trim() === ''}>
          Add source
        </Button>
      </form>
    </Card>
  );
}

function Welcome() {
  const call = useConsole((s) => s.call);
  const [busy, setBusy] = useState(false);
  return (
    <Card aria-label="Welcome">
      <h2 className="mb-1 text-base font-semibold">Nothing is protected yet</h2>
      <p className="mb-3 text-sm text-slate-700">
        Try every view safely on a small demo disk: a 128 MiB image with an ext4 and a FAT volume full of files, made in the agent’s state folder. Nothing else on this machine is touched.
      </p>
      <Button
        tone="primary"
        disabled={busy}
        onClick={() => {
          setBusy(true);
          void call('sources:create-demo', {}).finally(() => setBusy(false));
        }}
      >
        {busy ? 'Making the demo disk…' : 'Make a demo disk'}
      </Button>
    </Card>
  );
}

export function SourcesView() {
  const sources = useConsole((s) => s.sources);
  return (
    <div className="flex max-w-5xl flex-col gap-4">
      <PageTitle>Sources</PageTitle>
      {sources === null ? <p className="text-sm text-slate-500">Loading…</p> : null}
      {sources?.length === 0 ? <Welcome /> : null}
      {sources?.map((s) => <SourceCard key={s.id} source={s} />)}
      <AddSource />
    </div>
  );
}
