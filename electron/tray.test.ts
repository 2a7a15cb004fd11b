// The tray: its menu, status line and icon computed from the agent's state, and the controller that
// keeps them current and runs the tray's actions through dispatch() on a real agent. Only the
// drawing with Electron's Tray and Menu (main.ts) is left out: the Electron binary cannot run here.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConfiguredSource, Settings } from '../agent-core/api/console-config.js';
import type { Job, JobId } from '../agent-core/api/job.js';
import { openAgent, type Agent } from '../agent/agent.js';
import { makeExt4Image, valueOf } from '../test-support/api-contract-suite.js';
import { Scratch } from '../test-support/disk.js';
import type { DesktopNotification } from './notifications.js';
import { callThroughDispatch, ConsoleTray, formatAgo, menuTemplate, trayIconBitmap, trayMenuModel, traySnapshotFrom, trayStatusLine, trayTone, type TrayAction, type TrayMenuItem, type TrayTone } from './tray.js';

const NOW = new Date('2026-11-23T12:00:00.000Z');

const settings = (over: Partial<Settings> = {}): Settings => ({
  repository: { path: '/srv/repo', id: 'r1', encryption: 'none' },
  retention: { chainLimit: 128 },
  notifications: { onSuccess: true, onFailure: true },
  schedulesPaused: false,
  ...over,
});

const source = (over: Partial<ConfiguredSource> = {}): ConfiguredSource => ({
  id: '11111111-2222-4333-8444-555555555555',
  path: '/dev/sdb',
  label: 'Data disk',
  sourceName: '/dev/sdb',
  schedule: null,
  addedAt: '2026-11-20T10:00:00.000Z',
  demo: false,
  lastBackup: null,
  lastJob: null,
  nextRunAt: null,
  tracking: 'off',
  layout: null,
  layoutError: null,
  ...over,
});

let n = 0;
const job = (over: Partial<Job> = {}): Job => ({
  id: `00000000-0000-4000-8000-${String(++n).padStart(12, '0')}` as JobId,
  kind: 'backup',
  state: 'succeeded',
  repo: '/srv/repo',
  source: '/dev/sdb',
  queuedAt: '2026-11-23T11:00:00.000Z',
  startedAt: '2026-11-23T11:00:00.000Z',
  finishedAt: '2026-11-23T11:10:00.000Z',
  progress: null,
  error: null,
  result: null,
  ...over,
});

const labels = (items: TrayMenuItem[]) => items.map((i) => (i.type === 'separator' ? '---' : i.label));
const item = (items: TrayMenuItem[], action: TrayAction) => items.find((i) => 'action' in i && i.action === action) as Extract<TrayMenuItem, { action: TrayAction }>;

describe('the tray menu', () => {
  it('offers back up now, pause schedules, open console and quit under a status line', () => {
    const s = traySnapshotFrom({ sources: [source()], settings: settings(), jobs: [job()] });
    const menu = trayMenuModel(s, NOW);
    expect(labels(menu)).toEqual(['Last backup succeeded 50 min ago', '---', 'Back up now', 'Pause schedules', '---', 'Open console', 'Quit Strata']);
    expect(item(menu, 'backup-now').enabled).toBe(true);
    expect(item(menu, 'toggle-schedules')).toMatchObject({ type: 'checkbox', checked: false });
    expect(trayTone(s)).toBe('idle');
  });

  it('disables back up now until there is a disk and a repository, and says which is missing', () => {
    const none = trayMenuModel(traySnapshotFrom({ sources: [], settings: settings(), jobs: [] }), NOW);
    expect(item(none, 'backup-now')).toMatchObject({ enabled: false, label: 'Back up now (add a disk in the console first)' });
    expect(none[0]).toEqual({ type: 'label', label: 'No disks to protect yet' });
    const noRepo = trayMenuModel(traySnapshotFrom({ sources: [source()], settings: settings({ repository: { path: '/srv/repo', id: null, encryption: null } }), jobs: [] }), NOW);
    expect(item(noRepo, 'backup-now')).toMatchObject({ enabled: false, label: 'Back up now (choose a repository in the console first)' });
    expect(noRepo[0]).toEqual({ type: 'label', label: 'No backup yet' });
    const unknown = trayMenuModel(traySnapshotFrom({ sources: null, settings: null, jobs: [] }), NOW);
    expect(item(unknown, 'backup-now').enabled).toBe(false);
  });

  it('shows a running job with its percentage and queue, and the busy icon', () => {
    const running = job({ state: 'running', finishedAt: null, progress: { jobId: 'x' as JobId, phase: 'backup', bytesDone: 420, bytesTotal: 1000, rateBytesPerSec: 1, etaMs: null } });
    const s = traySnapshotFrom({ sources: [source()], settings: settings(), jobs: [job(), running, job({ state: 'queued', finishedAt: null })] });
    expect(trayStatusLine(s, NOW)).toBe('Backing up /dev/sdb… 42 % (1 queued)');
    expect(trayTone(s)).toBe('busy');
  });

  it('shows the newest finished job, and the error icon when it failed', () => {
    const s = traySnapshotFrom({ sources: [source()], settings: settings(), jobs: [job({ state: 'failed', finishedAt: '2026-11-23T11:58:00.000Z' }), job({ finishedAt: '2026-11-23T09:00:00.000Z' })] });
    expect(trayStatusLine(s, NOW)).toBe('Last backup failed 2 min ago');
    expect(trayTone(s)).toBe('error');
    const verify = traySnapshotFrom({ sources: [], settings: settings(), jobs: [job({ kind: 'verify', finishedAt: '2026-11-20T12:00:00.000Z' })] });
    expect(trayStatusLine(verify, NOW)).toBe('Last verification succeeded 3 days ago');
  });

  it('falls back to the sources’ last jobs when the agent has no job history', () => {
    const s = traySnapshotFrom({
      sources: [source({ lastJob: { state: 'failed', finishedAt: '2026-11-23T11:00:00.000Z', error: null } }), source({ lastJob: { state: 'succeeded', finishedAt: '2026-11-23T10:00:00.000Z', error: null } })],
      settings: settings(),
      jobs: [],
    });
    expect(s.lastResult).toEqual({ kind: 'backup', state: 'failed', finishedAt: '2026-11-23T11:00:00.000Z' });
  });

  it('checks pause schedules while schedules are paused', () => {
    const menu = trayMenuModel(traySnapshotFrom({ sources: [source()], settings: settings({ schedulesPaused: true }), jobs: [] }), NOW);
    expect(item(menu, 'toggle-schedules')).toMatchObject({ checked: true });
  });

  it('becomes an Electron menu template whose clicks run the actions', () => {
    const performed: TrayAction[] = [];
    const template = menuTemplate(trayMenuModel(traySnapshotFrom({ sources: [source()], settings: settings(), jobs: [] }), NOW), (a) => performed.push(a));
    expect(template[0]).toEqual({ label: 'No backup yet', enabled: false });
    expect(template[1]).toEqual({ type: 'separator' });
    expect(template[3]).toMatchObject({ type: 'checkbox', label: 'Pause schedules', checked: false });
    for (const entry of template) (entry.click as (() => void) | undefined)?.();
    expect(performed).toEqual(['backup-now', 'toggle-schedules', 'open-console', 'quit']);
  });

  it('says how long ago in words', () => {
    expect(formatAgo('2026-11-23T11:59:30.000Z', NOW)).toBe('just now');
    expect(formatAgo('2026-11-22T00:00:00.000Z', NOW)).toBe('36 h ago');
    expect(formatAgo('garbage', NOW)).toBe('at an unknown time');
  });

  it('draws its icon as BGRA pixels: opaque bands on a transparent ground, colored by tone', () => {
    const idle = trayIconBitmap(32, 'idle');
    expect(idle.length).toBe(32 * 32 * 4);
    const alpha = (buf: Buffer, x: number, y: number) => buf[(y * 32 + x) * 4 + 3];
    expect(alpha(idle, 0, 0)).toBe(0);
    expect(alpha(idle, 31, 31)).toBe(0);
    const opaque = [...Array(32 * 32).keys()].filter((i) => idle[i * 4 + 3] === 0xff).length;
    expect(opaque).toBeGreaterThan(100);
    expect(opaque).toBeLessThan(32 * 32 / 2);
    expect(trayIconBitmap(32, 'error').equals(idle)).toBe(false);
    expect(trayIconBitmap(16, 'busy').length).toBe(16 * 16 * 4);
  });
});

describe('the tray controller on a real agent', () => {
  const scratch = new Scratch('strata-tray-');
  const lines: string[] = [];
  const presented: Array<{ menu: TrayMenuItem[]; tooltip: string; tone: TrayTone }> = [];
  const notes: DesktopNotification[] = [];
  let opened = 0;
  let quits = 0;
  let agent: Agent;
  let tray: ConsoleTray;
  const last = () => presented.at(-1)!;

  async function until<T>(found: () => T | undefined, what: string, timeoutMs = 60_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = found();
      if (v !== undefined) return v;
      if (Date.now() > deadline) throw new Error(`waited ${timeoutMs} ms for ${what}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  beforeAll(async () => {
    agent = await openAgent({ stateDir: scratch.path('state'), log: (line) => lines.push(`agent: ${line}`) });
    tray = new ConsoleTray({
      call: callThroughDispatch(agent.handlers, (line) => lines.push(line)),
      onEvent: (listener) => agent.onEvent(listener),
      present: (menu, tooltip, tone) => presented.push({ menu, tooltip, tone }),
      notify: (n) => notes.push(n),
      openConsole: () => opened++,
      quit: () => quits++,
      log: (line) => lines.push(line),
    });
    await tray.start();
  });

  afterAll(async () => {
    tray?.close();
    await agent?.close();
    scratch.cleanup();
  });

  it('starts with nothing to protect, and back up now says so', async () => {
    expect(last().menu[0]).toEqual({ type: 'label', label: 'No disks to protect yet' });
    expect(item(last().menu, 'backup-now').enabled).toBe(false);
    expect(last().tooltip).toBe('Strata — No disks to protect yet');
    await tray.perform('backup-now');
    expect(notes.at(-1)).toEqual({ title: 'Nothing to back up', body: 'Add a disk in the console first.', urgency: 'critical' });
  });

  it('backs up every disk on "back up now", shows the run, and notifies when it has finished', async () => {
    const image = makeExt4Image(scratch, 'disk.img', 32, 1, 2);
    const call = callThroughDispatch(agent.handlers, (line) => lines.push(line));
    const config = valueOf(await call('settings:get', {}));
    valueOf(await call('repository:init', { repo: config.repository.path, encryption: 'none' }));
    valueOf(await call('sources:add', { path: image, label: 'Test disk' }));
    await tray.refresh();
    expect(item(last().menu, 'backup-now')).toMatchObject({ enabled: true, label: 'Back up now' });
    const before = notes.length;
    await tray.perform('backup-now');
    const note = await until(() => notes.slice(before).find((x) => x.title.startsWith('Backup of')), 'the backup notification');
    expect(note).toMatchObject({ title: `Backup of ${image} finished`, urgency: 'normal', body: expect.stringMatching(/^Full snapshot [0-9a-f]{8}: .* new, .* stored, in \d+ s\.$/) });
    expect(presented.some((p) => p.tone === 'busy' && /^Strata — Backing up /.test(p.tooltip))).toBe(true);
    await until(() => (last().tone === 'idle' && /^Last backup succeeded/.test(trayStatusLine(tray.snapshot(), new Date())) ? true : undefined), 'the idle tray');
    expect(valueOf(await call('snapshots:list', {}))).toHaveLength(1);
  });

  it('pauses and resumes the agent’s schedules', async () => {
    await tray.perform('toggle-schedules');
    expect((await agent.handlers['settings:get']({})).schedulesPaused).toBe(true);
    expect(item(last().menu, 'toggle-schedules')).toMatchObject({ checked: true });
    await tray.perform('toggle-schedules');
    expect((await agent.handlers['settings:get']({})).schedulesPaused).toBe(false);
    expect(item(last().menu, 'toggle-schedules')).toMatchObject({ checked: false });
  });

  it('hands open console and quit to the app', async () => {
    await tray.perform('open-console');
    await tray.perform('quit');
    expect([opened, quits]).toEqual([1, 1]);
  });
});
