// Settings: where snapshots are kept and how, when schedules run, how many snapshots a chain keeps,
// and which notifications the desktop shows.
import { useState } from 'react';
import { useConsole } from '../store.js';
import { Button, Card, Field, inputClass, PageTitle } from '../ui.js';

function Toggle({ label, checked, onChange }: { label: string; checked: boolean; onChange: (v: boolean) => void }) {
  return (
    <label className="flex items-center gap-2 text-sm">
      <input type="checkbox" className="h-4 w-4 accent-sky-700" checked={checked} onChange={(e) => onChange(e.target.checked)} />
      {label}
    </label>
  );
}

export function SettingsView() {
  const { settings, call } = useConsole();
  const [repoPath, setRepoPath] = useState('');
  const [newRepo, setNewRepo] = useState({ path: '', encryption: 'none' as 'none' | 'aes-256-gcm', password: '' });
  const [chainLimit, setChainLimit] = useState<string>('');
  if (!settings) return <p className="text-sm text-slate-500">Loading…</p>;
  const { repository } = settings;
  return (
    <div className="flex max-w-3xl flex-col gap-4">
      <PageTitle>Settings</PageTitle>
      <Card aria-label="Repository">
        <h2 className="mb-2 text-base font-semibold">Repository</h2>
        <dl className="mb-3 grid grid-cols-[10rem_1fr] gap-y-1 text-sm">
          <dt className="text-slate-500">Location</dt>
          <dd className="font-mono">{repository.path}</dd>
          <dt className="text-slate-500">Encryption</dt>
          <dd>{repository.encryption === null ? 'no repository there yet' : repository.encryption === 'none' ? 'none' : 'AES-256-GCM'}</dd>
          <dt className="text-slate-500">Id</dt>
          <dd className="font-mono text-xs">{repository.id ?? '–'}</dd>
        </dl>
        <form
          className="mb-4 flex items-end gap-2"
          onSubmit={(e) => {
            e.preventDefault();
            void call('settings:update', { repositoryPath: repoPath.trim() }).then((r) => r && setRepoPath(''));
          }}
        >
          <Field label="Use another repository">
            <input className={`${inputClass} w-96 font-mono`} value={repoPath} onChange={(e) => setRepoPath(e.target.value)} placeholder="/path/to/existing/repository" />
          </Field>
          <Button type="submit" disabled={repoPath.trim() === ''}>
            Switch
          </Button>
        </form>
        <form
          className="flex flex-wrap items-end gap-2"
          onSubmit={(e) => {
            e.preventDefault();
            void (async () => {
              const made = await call('repository:init', {
                repo: newRepo.path.trim(),
                encryption: newRepo.encryption,
                ...(newRepo.encryption === 'aes-256-gcm' ? { password: newRepo.password } : {}),
              });
              if (made && (await call('settings:update', { repositoryPath: made.path }))) setNewRepo({ path: '', encryption: 'none', password: '' });
            })();
          }}
        >
          <Field label="Create a repository">
            <input className={`${inputClass} w-72 font-mono`} value={newRepo.path} onChange={(e) => setNewRepo({ ...newRepo, path: e.target.value })} placeholder="/path/to/new/repository" />
          </Field>
          <Field label="Encryption">
            <select className={inputClass} value={newRepo.encryption} onChange={(e) => setNewRepo({ ...newRepo, encryption: e.target.value as 'none' | 'aes-256-gcm' })}>
              <option value="none">none</option>
              <option value="aes-256-gcm">AES-256-GCM</option>
            </select>
          </Field>
          {newRepo.encryption === 'aes-256-gcm' ? (
            <Field label="Password">
              <input type="password" className={`${inputClass} w-48`} value={newRepo.password} onChange={(e) => setNewRepo({ ...newRepo, password: e.target.value })} />
            </Field>
          ) : null}
          <Button type="submit" disabled={newRepo.path.trim() === '' || (newRepo.encryption === 'aes-256-gcm' && newRepo.password === '')}>
            Create and use
          </Button>
        </form>
      </Card>
      <Card aria-label="Schedules">
        <h2 className="mb-2 text-base font-semibold">Schedules</h2>
        <Toggle label="Pause all scheduled backups" checked={settings.schedulesPaused} onChange={(v) => void call('settings:update', { schedulesPaused: v })} />
        <p className="mt-1 text-xs text-slate-500">Each source’s schedule is set on its card under Sources. Backups missed while paused or switched off run once when possible.</p>
      </Card>
      <Card aria-label="Retention">
        <h2 className="mb-2 text-base font-semibold">Retention</h2>
        <form
          className="flex items-end gap-2"
          onSubmit={(e) => {
            e.preventDefault();
            void call('settings:update', { chainLimit: Number(chainLimit) }).then((r) => r && setChainLimit(''));
          }}
        >
          <Field label="Snapshots per chain" hint="After each backup, the oldest scheduled snapshots beyond this are forgotten; snapshots taken by hand are kept until you delete them.">
            <input type="number" min={2} max={4096} className={`${inputClass} w-32`} value={chainLimit} placeholder={String(settings.retention.chainLimit)} onChange={(e) => setChainLimit(e.target.value)} />
          </Field>
          <Button type="submit" disabled={chainLimit === ''}>
            Save
          </Button>
        </form>
      </Card>
      <Card aria-label="Notifications">
        <h2 className="mb-2 text-base font-semibold">Notifications</h2>
        <div className="flex flex-col gap-2">
          <Toggle label="When a backup succeeds" checked={settings.notifications.onSuccess} onChange={(v) => void call('settings:update', { notifications: { onSuccess: v } })} />
          <Toggle label="When a backup fails" checked={settings.notifications.onFailure} onChange={(v) => void call('settings:update', { notifications: { onFailure: v } })} />
        </div>
      </Card>
    </div>
  );
}
