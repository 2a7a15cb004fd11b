// Small building blocks every view uses, so buttons, cards and badges look and behave alike.
import type { ButtonHTMLAttributes, ReactNode } from 'react';
import type { VolumeInfo } from '../../agent-core/api/disk-layout.js';
import { formatBytes } from './components/format.js';

type Tone = 'primary' | 'secondary' | 'danger' | 'ghost';

const TONES: Record<Tone, string> = {
  primary: 'bg-sky-700 text-white hover:bg-sky-800 disabled:bg-sky-300',
  secondary: 'bg-white text-slate-800 ring-1 ring-slate-300 hover:bg-slate-50 disabled:text-slate-400',
  danger: 'bg-white text-red-700 ring-1 ring-red-300 hover:bg-red-50 disabled:text-red-300',
  ghost: 'text-sky-800 hover:bg-sky-50 disabled:text-slate-400',
};

export function Button({ tone = 'secondary', className = '', ...rest }: ButtonHTMLAttributes<HTMLButtonElement> & { tone?: Tone }) {
  return (
    <button
      type="button"
      className={`inline-flex items-center gap-1 rounded-md px-3 py-1.5 text-sm font-medium focus-visible:outline-2 focus-visible:outline-offset-2 focus-visible:outline-sky-600 disabled:cursor-not-allowed ${TONES[tone]} ${className}`}
      {...rest}
    />
  );
}

export function Card({ children, className = '', ...rest }: { children: ReactNode; className?: string } & Record<string, unknown>) {
  return (
    <section className={`rounded-lg bg-white p-4 shadow-sm ring-1 ring-slate-200 ${className}`} {...rest}>
      {children}
    </section>
  );
}

const BADGES: Record<string, string> = {
  full: 'bg-indigo-100 text-indigo-800',
  incremental: 'bg-emerald-100 text-emerald-800',
  resync: 'bg-amber-100 text-amber-800',
  succeeded: 'bg-emerald-100 text-emerald-800',
  failed: 'bg-red-100 text-red-800',
  cancelled: 'bg-slate-200 text-slate-700',
  running: 'bg-sky-100 text-sky-800',
  queued: 'bg-slate-100 text-slate-700',
};

export function Badge({ children, kind }: { children: ReactNode; kind?: string }) {
  return <span className={`inline-block rounded px-1.5 py-0.5 text-xs font-medium ${BADGES[kind ?? ''] ?? 'bg-slate-100 text-slate-700'}`}>{children}</span>;
}

export function ProgressBar({ fraction, label }: { fraction: number; label: string }) {
  const pct = Math.max(0, Math.min(100, Math.round(fraction * 100)));
  return (
    <div role="progressbar" aria-label={label} aria-valuemin={0} aria-valuemax={100} aria-valuenow={pct} className="h-2 w-full overflow-hidden rounded bg-slate-200">
      <div className="h-full bg-sky-600 transition-[width]" style={{ width: `${pct}%` }} />
    </div>
  );
}

const VOLUME_COLOURS = ['bg-sky-600', 'bg-emerald-600', 'bg-violet-600', 'bg-amber-600', 'bg-rose-600', 'bg-teal-600'];

/** A disk as one bar: each volume in proportion to its size, its used part darker. */
export function PartitionBar({ sizeBytes, volumes, label }: { sizeBytes: number; volumes: readonly VolumeInfo[]; label: string }) {
  return (
    <div role="img" aria-label={`${label}: ${volumes.length} volume${volumes.length === 1 ? '' : 's'} on ${formatBytes(sizeBytes)}`} className="relative h-6 w-full overflow-hidden rounded bg-slate-200">
      {volumes.map((v, i) => {
        const used = v.sizeBytes > 0 ? v.usedBytes / v.sizeBytes : 0;
        return (
          <div
            key={`${v.index}-${v.startBytes}`}
            title={`#${v.index} ${v.filesystem}${v.label ? ` “${v.label}”` : ''}: ${formatBytes(v.sizeBytes)}, ${Math.round(used * 100)} % used`}
            className="absolute top-0 h-full border-r-2 border-white"
            style={{ left: `${(v.startBytes / sizeBytes) * 100}%`, width: `${(v.sizeBytes / sizeBytes) * 100}%` }}
          >
            <div className={`absolute inset-0 opacity-30 ${VOLUME_COLOURS[i % VOLUME_COLOURS.length]}`} />
            <div className={`absolute inset-y-0 left-0 ${VOLUME_COLOURS[i % VOLUME_COLOURS.length]}`} style={{ width: `${used * 100}%` }} />
            <span className="absolute inset-0 truncate px-1 text-xs leading-6 font-medium text-white drop-shadow">
              {v.label ?? v.filesystem}
            </span>
          </div>
        );
      })}
    </div>
  );
}

export function Field({ label, children, hint }: { label: string; children: ReactNode; hint?: string }) {
  return (
    <label className="flex flex-col gap-1 text-sm">
      <span className="font-medium text-slate-700">{label}</span>
      {children}
      {hint ? <span className="text-xs text-slate-500">{hint}</span> : null}
    </label>
  );
}

export const inputClass = 'rounded-md border border-slate-300 px-2 py-1.5 text-sm focus:border-sky-600 focus:outline-none focus:ring-1 focus:ring-sky-600';

export function PageTitle({ children, actions }: { children: ReactNode; actions?: ReactNode }) {
  return (
    <div className="mb-4 flex items-center justify-between gap-4">
      <h1 className="text-xl font-semibold text-slate-900">{children}</h1>
      {actions ? <div className="flex gap-2">{actions}</div> : null}
    </div>
  );
}
