// Jobs: what runs now (phase, bytes, rate, time left, cancel), driven by the agent's events, and
// what ran before, with each failure's sentence.
import type { Job } from '../../../agent-core/api/job.js';
import { formatBytes, formatDateTime, formatDuration } from '../components/format.js';
import { useConsole } from '../store.js';
import { Badge, Button, Card, PageTitle, ProgressBar } from '../ui.js';

function name(job: Job): string {
  return job.source ? job.source.split('/').pop()! : job.repo.split('/').pop()!;
}

function ActiveJob({ job }: { job: Job }) {
  const call = useConsole((s) => s.call);
  const p = job.progress;
  const fraction = p && p.bytesTotal > 0 ? p.bytesDone / p.bytesTotal : 0;
  return (
    <Card aria-label={`${job.kind} of ${name(job)}`}>
      <div className="mb-2 flex items-center justify-between gap-3">
        <div className="text-sm">
          <span className="font-semibold capitalize">{job.kind}</span> of <span className="font-mono">{name(job)}</span> <Badge kind={job.state}>{job.state}</Badge>
        </div>
        <Button tone="danger" onClick={() => void call('jobs:cancel', { jobId: job.id })}>
          Cancel
        </Button>
      </div>
      <ProgressBar fraction={fraction} label={`Progress of the ${job.kind} of ${name(job)}`} />
      <p className="mt-1 text-xs text-slate-600">
        {p
          ? `${p.phase}: ${formatBytes(p.bytesDone)} of ${formatBytes(p.bytesTotal)} · ${formatBytes(p.rateBytesPerSec)}/s · ${p.etaMs === null ? 'estimating time left' : `${formatDuration(p.etaMs)} left`}`
          : job.state === 'queued'
            ? 'waiting for the jobs before it on this repository'
            : 'starting…'}
      </p>
    </Card>
  );
}

function outcome(job: Job): string {
  if (job.error) return job.error.message;
  const r = job.result;
  if (!r) return '';
  if (r.kind === 'backup') return `snapshot ${r.snapshot.id.slice(0, 12)} (${r.snapshot.mode}), read ${formatBytes(r.snapshot.bytesRead)}, new ${formatBytes(r.snapshot.bytesNew)}`;
  if (r.kind === 'restore') return `wrote ${formatBytes(r.restore.bytesWritten)} to ${r.restore.target}`;
  return r.report.problems.length === 0 ? `no problems in ${r.report.snapshots} snapshots` : `${r.report.problems.length} problem(s) found`;
}

export function JobsView() {
  const jobs = useConsole((s) => s.jobs);
  const active = jobs.filter((j) => j.state === 'running' || j.state === 'queued');
  const past = jobs.filter((j) => j.finishedAt !== null).reverse();
  return (
    <div className="flex max-w-5xl flex-col gap-4">
      <PageTitle>Jobs</PageTitle>
      <h2 className="text-sm font-semibold text-slate-700">Running and queued</h2>
      {active.length === 0 ? <p className="text-sm text-slate-500">Nothing is running.</p> : active.map((j) => <ActiveJob key={j.id} job={j} />)}
      <h2 className="mt-2 text-sm font-semibold text-slate-700">History</h2>
      <Card className="p-0">
        <table className="w-full text-left text-sm">
          <caption className="sr-only">Job history</caption>
          <thead className="bg-slate-50 text-xs text-slate-500">
            <tr>
              <th className="px-3 py-2 font-medium">Job</th>
              <th className="font-medium">State</th>
              <th className="font-medium">Started</th>
              <th className="font-medium">Took</th>
              <th className="font-medium">Outcome</th>
            </tr>
          </thead>
          <tbody>
            {past.length === 0 ? (
              <tr>
                <td colSpan={5} className="px-3 py-3 text-slate-500">
                  No jobs yet.
                </td>
              </tr>
            ) : null}
            {past.map((j) => (
              <tr key={j.id} className="border-t border-slate-100 align-top">
                <td className="px-3 py-2">
                  <span className="capitalize">{j.kind}</span> <span className="font-mono text-xs">{name(j)}</span>
                </td>
                <td className="py-2">
                  <Badge kind={j.state}>{j.state}</Badge>
                </td>
                <td className="py-2 whitespace-nowrap">{j.startedAt ? formatDateTime(j.startedAt) : '–'}</td>
                <td className="py-2">{j.startedAt && j.finishedAt ? formatDuration(Date.parse(j.finishedAt) - Date.parse(j.startedAt)) : '–'}</td>
                <td className={`py-2 pr-3 ${j.error ? 'text-red-800' : 'text-slate-700'}`}>{outcome(j)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </Card>
    </div>
  );
}
