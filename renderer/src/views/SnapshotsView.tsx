// Snapshots: each source's tree of snapshots (parents, children, branches), with details of the
// selected one and, when two are selected, the regions of the disk that differ between them.
import { useState } from 'react';
import { DiskMap } from '../components/disk-map/index.js';
import { formatBytes, formatDateTime, formatDuration } from '../components/format.js';
import { SnapshotTree } from '../components/snapshot-tree/index.js';
import { snapshotsOf, useConsole } from '../store.js';
import { Badge, Button, Card, PageTitle } from '../ui.js';
import { useAgentData } from './useAgentData.js';

export function SnapshotsView({ sourceId }: { sourceId: string | null }) {
  const { sources, snapshots, settings, navigate, call } = useConsole();
  const [selected, setSelected] = useState<string[]>([]);
  const source = sources?.find((s) => s.id === sourceId) ?? sources?.find((s) => s.lastBackup) ?? sources?.[0] ?? null;
  const chain = source && snapshots ? snapshotsOf(source, snapshots) : [];
  const [a, b] = selected;
  const pair = a && b ? (chain.findIndex((s) => s.id === a) < chain.findIndex((s) => s.id === b) ? [a, b] : [b, a]) : null;
  const diff = useAgentData('snapshots:diff', pair ? { from: pair[0]!, to: pair[1]! } : null, [pair?.[0], pair?.[1]]);
  const map = useAgentData('sources:map', pair && source ? { path: source.path } : null, [pair !== null, source?.path]);
  const one = selected.length === 1 ? chain.find((s) => s.id === selected[0]) : undefined;

  if (!sources || !snapshots) return <p className="text-sm text-slate-500">Loading…</p>;
  return (
    <div className="flex max-w-6xl flex-col gap-4">
      <PageTitle>Snapshots</PageTitle>
      {sources.length === 0 ? <p className="text-sm text-slate-600">No sources yet: add one under Sources.</p> : null}
      {sources.length > 0 ? (
        <div role="tablist" aria-label="Source" className="flex gap-2">
          {sources.map((s) => (
            <button
              key={s.id}
              role="tab"
              type="button"
              aria-selected={s.id === source?.id}
              className={`rounded-md px-3 py-1 text-sm ${s.id === source?.id ? 'bg-sky-700 text-white' : 'bg-white ring-1 ring-slate-300 hover:bg-slate-50'}`}
              onClick={() => {
                setSelected([]);
                navigate({ view: 'snapshots', sourceId: s.id });
              }}
            >
              {s.label}
            </button>
          ))}
        </div>
      ) : null}
      {source ? (
        <div className="grid grid-cols-1 gap-4 lg:grid-cols-[minmax(0,3fr)_minmax(0,2fr)]">
          <Card>
            {chain.length === 0 ? (
              <p className="text-sm text-slate-600">{source.label} has no snapshots yet; back it up from Sources.</p>
            ) : (
              <>
                <p className="mb-2 text-xs text-slate-500">Select one snapshot for its details, or two (Ctrl- or Shift-click) to see where they differ.</p>
                <SnapshotTree
                  snapshots={chain}
                  selected={selected}
                  onSelect={setSelected}
                  onRestore={(id) => navigate({ view: 'restore', sourceId: source.id, snapshotId: id })}
                  chainLimit={settings?.retention.chainLimit}
                  label={`Snapshots of ${source.label}`}
                />
              </>
            )}
          </Card>
          <Card aria-label="Selection">
            {one ? (
              <div className="flex flex-col gap-2 text-sm">
                <h2 className="text-base font-semibold">
                  Snapshot {one.id.slice(0, 12)} <Badge kind={one.mode}>{one.mode}</Badge>
                </h2>
                {one.modeReason ? <p className="text-xs text-slate-600">{one.modeReason}</p> : null}
                <dl className="grid grid-cols-2 gap-x-4 gap-y-1">
                  <dt className="text-slate-500">Taken</dt>
                  <dd>{formatDateTime(one.createdAt)}</dd>
                  <dt className="text-slate-500">Disk size</dt>
                  <dd>{formatBytes(one.sourceBytes)}</dd>
                  <dt className="text-slate-500">Valid data</dt>
                  <dd>{formatBytes(one.validBytes)}</dd>
                  <dt className="text-slate-500">Read</dt>
                  <dd>{formatBytes(one.bytesRead)}</dd>
                  <dt className="text-slate-500">New data</dt>
                  <dd>{formatBytes(one.bytesNew)}</dd>
                  <dt className="text-slate-500">Stored</dt>
                  <dd>{formatBytes(one.bytesStored)}</dd>
                  <dt className="text-slate-500">Took</dt>
                  <dd>{formatDuration(one.durationMs)}</dd>
                  <dt className="text-slate-500">Tags</dt>
                  <dd>{one.tags.length ? one.tags.join(', ') : '–'}</dd>
                </dl>
                <div className="flex gap-2">
                  <Button tone="primary" onClick={() => navigate({ view: 'restore', sourceId: source.id, snapshotId: one.id })}>
                    Restore this snapshot
                  </Button>
                  <Button
                    tone="danger"
                    onClick={() => {
                      if (window.confirm(`Delete snapshot ${one.id.slice(0, 12)}? The others stay restorable.`)) {
                        void call('snapshots:forget', { snapshots: [one.id] }).then((r) => r && setSelected([]));
                      }
                    }}
                  >
                    Delete snapshot
                  </Button>
                </div>
                {one.tags.includes('scheduled') ? null : <p className="text-xs text-slate-500">Taken by hand: kept past the chain limit until you delete it.</p>}
              </div>
            ) : pair ? (
              <div className="text-sm">
                <h2 className="mb-1 text-base font-semibold">Comparing two snapshots</h2>
                <p aria-live="polite">
                  {diff ? `${formatBytes(diff.changedBytes)} differ between ${pair[0]!.slice(0, 12)} and ${pair[1]!.slice(0, 12)}, in ${diff.changed.length} region(s).` : 'Comparing…'}
                </p>
              </div>
            ) : (
              <p className="text-sm text-slate-600">Nothing selected.</p>
            )}
          </Card>
        </div>
      ) : null}
      {pair && map && diff ? (
        <Card aria-label="Differences on the disk">
          <DiskMap
            sizeBytes={map.layout.sizeBytes}
            blockSize={map.blockSize}
            volumes={map.layout.volumes}
            used={map.used}
            changed={diff.changed}
            changedLabel="Differs between the two snapshots"
            label={`Regions that differ between snapshots ${pair[0]!.slice(0, 12)} and ${pair[1]!.slice(0, 12)}`}
            heightPx={220}
          />
        </Card>
      ) : null}
    </div>
  );
}
