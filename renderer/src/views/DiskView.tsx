// Disk detail: the valid-sector bitmap of one source, with what changed in its last backup and
// what a chosen snapshot holds laid over it.
import { useEffect, useState } from 'react';
import { DiskMap } from '../components/disk-map/index.js';
import { formatBytes, formatDateTime } from '../components/format.js';
import { snapshotsOf, useConsole } from '../store.js';
import { Button, Card, Field, inputClass, PageTitle } from '../ui.js';
import { useAgentData } from './useAgentData.js';

export function DiskView({ sourceId }: { sourceId: string }) {
  const { sources, snapshots, navigate } = useConsole();
  const source = sources?.find((s) => s.id === sourceId) ?? null;
  const chain = source && snapshots ? snapshotsOf(source, snapshots) : [];
  const [shown, setShown] = useState<string>('');
  const map = useAgentData('sources:map', source ? { path: source.path } : null, [source?.path, source?.lastBackup?.snapshotId]);
  const last = chain.at(-1);
  const previous = chain.at(-2);
  const diff = useAgentData('snapshots:diff', last && previous ? { from: previous.id, to: last.id } : null, [previous?.id, last?.id]);
  const contained = useAgentData('snapshots:map', shown ? { snapshot: shown } : null, [shown]);
  // With a live tracker, "changed" is what it has seen written since the last backup, polled.
  const tracked = source?.tracking === 'live';
  const [tick, setTick] = useState(0);
  useEffect(() => {
    if (!tracked) return;
    const timer = setInterval(() => setTick((t) => t + 1), 3000);
    return () => clearInterval(timer);
  }, [tracked]);
  const live = useAgentData('sources:changes', tracked && source ? { id: source.id } : null, [tracked, source?.id, tick], true);
  const changed = tracked ? live : diff;
  const changedLabel = tracked ? 'Changed since the last backup (live tracker)' : 'Changed in the last backup';

  if (!sources) return <p className="text-sm text-slate-500">Loading…</p>;
  if (!source) return <p role="alert">This source is no longer configured.</p>;
  return (
    <div className="flex max-w-6xl flex-col gap-4">
      <PageTitle actions={<Button onClick={() => navigate({ view: 'sources' })}>All sources</Button>}>Disk map: {source.label}</PageTitle>
      <Card>
        {map ? (
          <>
            <p className="mb-3 text-sm text-slate-700">
              {formatBytes(map.layout.sizeBytes)} · {map.layout.partitionTable.toUpperCase()} · {map.layout.volumes.length} volume(s) · a backup reads{' '}
              {formatBytes(map.used.reduce((n, [, l]) => n + l, 0))} of valid data
              {changed ? ` · ${formatBytes(changed.changedBytes)} ${tracked ? 'written since the last backup' : 'changed in the last backup'}` : ''}
            </p>
            <DiskMap
              sizeBytes={map.layout.sizeBytes}
              blockSize={map.blockSize}
              volumes={map.layout.volumes}
              used={map.used}
              changed={changed?.changed}
              changedLabel={changedLabel}
              snapshot={contained?.stored}
              label={`Valid-sector map of ${source.label}`}
            />
          </>
        ) : (
          <p className="text-sm text-slate-500">Reading the disk’s allocation maps…</p>
        )}
      </Card>
      <Card>
        <Field label="Show what a snapshot holds" hint={tracked ? 'Live tracking is on: “changed” is what was written since the last backup.' : 'Live change tracking is off for this source: “changed” compares the last two backups.'}>
          <select className={`${inputClass} w-96`} value={shown} onChange={(e) => setShown(e.target.value)}>
            <option value="">no snapshot overlay</option>
            {[...chain].reverse().map((s) => (
              <option key={s.id} value={s.id}>
                {formatDateTime(s.createdAt)} · {s.mode} · {s.id.slice(0, 12)}
              </option>
            ))}
          </select>
        </Field>
      </Card>
    </div>
  );
}
