// The restore wizard: source → snapshot → target (checked for size, mounts and use) → confirm →
// progress → result with the read-back verification. From a snapshot's Restore button it opens at
// the confirmation with a new image file next to the source as the target: one click to run.
import { useEffect, useState } from 'react';
import type { ConfiguredSource, TargetCheck } from '../../../agent-core/api/console-config.js';
import type { JobId, JobResult } from '../../../agent-core/api/job.js';
import type { SnapshotSummary } from '../../../agent-core/api/snapshot.js';
import { formatBytes, formatDateTime, formatDuration } from '../components/format.js';
import { snapshotsOf, useConsole } from '../store.js';
import { Badge, Button, Card, Field, inputClass, PageTitle, ProgressBar } from '../ui.js';

type Step = 'source' | 'snapshot' | 'target' | 'confirm' | 'running';
const STEPS: { step: Step; label: string }[] = [
  { step: 'source', label: 'Source' },
  { step: 'snapshot', label: 'Snapshot' },
  { step: 'target', label: 'Target' },
  { step: 'confirm', label: 'Confirm' },
  { step: 'running', label: 'Restore' },
];

/** A new image file next to an image source; nothing for devices (the user must choose one). */
export function defaultTarget(source: ConfiguredSource, snapshot: SnapshotSummary): string {
  if (!source.path.startsWith('/dev/')) {
    const slash = source.path.lastIndexOf('/');
    const dir = source.path.slice(0, slash);
    const base = source.path.slice(slash + 1).replace(/\.(img|raw|bin)$/i, '');
    return `${dir}/${base}-restored-${snapshot.id.slice(0, 8)}.img`;
  }
  return '';
}

function Steps({ current }: { current: Step }) {
  const at = STEPS.findIndex((s) => s.step === current);
  return (
    <ol className="mb-4 flex gap-2 text-sm" aria-label="Restore steps">
      {STEPS.map((s, i) => (
        <li key={s.step} aria-current={i === at ? 'step' : undefined} className={`rounded-full px-3 py-1 ${i === at ? 'bg-sky-700 text-white' : i < at ? 'bg-sky-100 text-sky-900' : 'bg-slate-100 text-slate-500'}`}>
          {i + 1}. {s.label}
        </li>
      ))}
    </ol>
  );
}

function CheckReport({ check }: { check: TargetCheck }) {
  const what = check.kind === 'missing' ? 'a new image file' : check.kind === 'file' ? `an existing file of ${formatBytes(check.sizeBytes ?? 0)}` : check.kind === 'block-device' ? `a device of ${formatBytes(check.sizeBytes ?? 0)}` : 'not a file or device';
  return (
    <div className="mt-2 text-sm" aria-live="polite" aria-label="Target check">
      <p>
        Target: {what}; the snapshot needs {formatBytes(check.neededBytes)}.{check.ok ? ' Ready.' : ''}
      </p>
      {check.problems.map((p) => (
        <p key={p} className={check.needsForce ? 'text-amber-800' : 'text-red-800'} role={check.needsForce ? undefined : 'alert'}>
          {p}
        </p>
      ))}
    </div>
  );
}

function Outcome({ result }: { result: Extract<JobResult, { kind: 'restore' }>['restore'] }) {
  const v = (result as { verification?: { blocksChecked: number; mismatches: number; bytesRead: number; durationMs: number } | null }).verification;
  return (
    <div className="text-sm" role="status" aria-label="Restore result">
      <p className="font-semibold text-emerald-800">
        Restored {result.snapshot.slice(0, 12)} to {result.target}: {formatBytes(result.bytesWritten)} written in {formatDuration(result.durationMs)}.
      </p>
      {v ? (
        <p className={v.mismatches === 0 ? 'text-emerald-800' : 'text-red-800'}>
          Verification: read back {formatBytes(v.bytesRead)}; {v.blocksChecked.toLocaleString()} blocks checked against the snapshot’s digests, {v.mismatches} mismatch{v.mismatches === 1 ? '' : 'es'}.
        </p>
      ) : (
        <p className="text-slate-700">Verification: every chunk was checked against its content id as it was read from the repository.</p>
      )}
    </div>
  );
}

export function RestoreWizard({ sourceId, snapshotId }: { sourceId: string | null; snapshotId: string | null }) {
  const { sources, snapshots, jobs, call } = useConsole();
  const [step, setStep] = useState<Step | null>(null);
  const [source, setSource] = useState<ConfiguredSource | null>(null);
  const [snapshot, setSnapshot] = useState<SnapshotSummary | null>(null);
  const [target, setTarget] = useState('');
  const [check, setCheck] = useState<TargetCheck | null>(null);
  const [force, setForce] = useState(false);
  const [jobId, setJobId] = useState<JobId | null>(null);

  // Opened from a Restore button: preselect, propose a target, and skip to the confirmation when it checks out.
  useEffect(() => {
    if (step !== null || !sources || !snapshots) return;
    const src = sources.find((s) => s.id === sourceId) ?? null;
    const chain = src ? snapshotsOf(src, snapshots) : [];
    const snap = chain.find((s) => s.id === snapshotId) ?? chain.at(-1) ?? null;
    if (!src || !snap) return setStep(src ? 'snapshot' : 'source');
    setSource(src);
    setSnapshot(snap);
    const proposed = defaultTarget(src, snap);
    setTarget(proposed);
    if (!proposed) return setStep('target');
    void call('targets:check', { path: proposed, snapshot: snap.id }).then((c) => {
      setCheck(c);
      setStep(c?.ok ? 'confirm' : 'target');
    });
  }, [step, sources, snapshots, sourceId, snapshotId, call]);

  // Re-check the target as it is typed.
  useEffect(() => {
    if (step !== 'target' || !snapshot || target.trim() === '') return;
    const timer = setTimeout(() => void call('targets:check', { path: target.trim(), snapshot: snapshot.id }).then(setCheck), 300);
    return () => clearTimeout(timer);
  }, [step, target, snapshot, call]);

  const job = jobId ? jobs.find((j) => j.id === jobId) : undefined;
  const chain = source && snapshots ? [...snapshotsOf(source, snapshots)].reverse() : [];
  const withBackups = (sources ?? []).filter((s) => s.lastBackup);

  if (!sources || !snapshots || step === null) return <p className="text-sm text-slate-500">Loading…</p>;
  return (
    <div className="flex max-w-4xl flex-col gap-4">
      <PageTitle>Restore</PageTitle>
      <Steps current={step} />
      {step === 'source' ? (
        <Card aria-label="Choose a source">
          {withBackups.length === 0 ? <p className="text-sm text-slate-600">No source has a backup yet.</p> : null}
          <ul className="flex flex-col gap-2">
            {withBackups.map((s) => (
              <li key={s.id}>
                <Button
                  onClick={() => {
                    setSource(s);
                    setSnapshot(null);
                    setStep('snapshot');
                  }}
                >
                  {s.label} <span className="font-mono text-xs text-slate-500">{s.path}</span>
                </Button>
              </li>
            ))}
          </ul>
        </Card>
      ) : null}
      {step === 'snapshot' && source ? (
        <Card aria-label="Choose a snapshot">
          <fieldset>
            <legend className="mb-2 text-sm font-semibold">Snapshots of {source.label}, newest first</legend>
            <div className="flex flex-col gap-1">
              {chain.map((s) => (
                <label key={s.id} className="flex items-center gap-2 text-sm">
                  <input type="radio" name="snapshot" className="accent-sky-700" checked={snapshot?.id === s.id} onChange={() => setSnapshot(s)} />
                  {formatDateTime(s.createdAt)} <Badge kind={s.mode}>{s.mode}</Badge> <span className="font-mono text-xs">{s.id.slice(0, 12)}</span> {s.tags.join(', ')}
                </label>
              ))}
            </div>
          </fieldset>
          <div className="mt-3 flex gap-2">
            <Button onClick={() => setStep('source')}>Back</Button>
            <Button
              tone="primary"
              disabled={!snapshot}
              onClick={() => {
                setTarget(snapshot ? defaultTarget(source, snapshot) : '');
                setCheck(null);
                setStep('target');
              }}
            >
              Next
            </Button>
          </div>
        </Card>
      ) : null}
      {step === 'target' && snapshot ? (
        <Card aria-label="Choose a target">
          <Field label="Target" hint="a new image file, an existing one to replace, or a device such as /dev/sdc">
            <input className={`${inputClass} font-mono`} value={target} onChange={(e) => setTarget(e.target.value)} />
          </Field>
          {check && check.path === target.trim() ? <CheckReport check={check} /> : null}
          {check?.needsForce && check.path === target.trim() ? (
            <label className="mt-2 flex items-center gap-2 text-sm text-amber-900">
              <input type="checkbox" className="accent-amber-700" checked={force} onChange={(e) => setForce(e.target.checked)} />
              Replace what is there
            </label>
          ) : null}
          <div className="mt-3 flex gap-2">
            <Button onClick={() => setStep('snapshot')}>Back</Button>
            <Button tone="primary" disabled={!check || check.path !== target.trim() || !(check.ok || (check.needsForce && force))} onClick={() => setStep('confirm')}>
              Next
            </Button>
          </div>
        </Card>
      ) : null}
      {step === 'confirm' && source && snapshot ? (
        <Card aria-label="Confirm the restore">
          <p className="text-sm">
            Restore <strong>{source.label}</strong> as of <strong>{formatDateTime(snapshot.createdAt)}</strong> (snapshot <span className="font-mono">{snapshot.id.slice(0, 12)}</span>,{' '}
            {formatBytes(snapshot.sourceBytes)}) to <span className="font-mono">{target}</span>
            {force ? ', replacing what is there' : ''}.
          </p>
          {check ? <CheckReport check={check} /> : null}
          <div className="mt-3 flex gap-2">
            <Button onClick={() => setStep('target')}>Change target</Button>
            <Button
              tone="primary"
              onClick={() =>
                void call('jobs:start-restore', { snapshot: snapshot.id, target: target.trim(), force }).then((r) => {
                  if (r) {
                    setJobId(r.jobId);
                    setStep('running');
                  }
                })
              }
            >
              Restore now
            </Button>
          </div>
        </Card>
      ) : null}
      {step === 'running' ? (
        <Card aria-label="Restore progress">
          {!job || job.state === 'queued' || job.state === 'running' ? (
            <>
              <ProgressBar fraction={job?.progress && job.progress.bytesTotal > 0 ? job.progress.bytesDone / job.progress.bytesTotal : 0} label="Restore progress" />
              <p className="mt-1 text-xs text-slate-600">{job?.progress ? `${job.progress.phase}: ${formatBytes(job.progress.bytesDone)} of ${formatBytes(job.progress.bytesTotal)}` : 'starting…'}</p>
            </>
          ) : job.state === 'succeeded' && job.result?.kind === 'restore' ? (
            <Outcome result={job.result.restore} />
          ) : (
            <p role="alert" className="text-sm text-red-800">
              The restore {job.state === 'cancelled' ? 'was cancelled' : `failed: ${job.error?.message ?? 'see Jobs'}`}.
            </p>
          )}
        </Card>
      ) : null}
    </div>
  );
}
