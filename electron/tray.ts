// The tray: what it shows (status line, back up now, pause schedules, open console, quit) computed
// from the agent's sources, settings and jobs, and the controller that keeps it current from agent
// events and notifies when jobs end. Electron's Tray and Menu stay in main.ts; this file only
// imports Electron's types, so its logic runs in Node tests.
import type { MenuItemConstructorOptions } from 'electron';
import type { ConfiguredSource, Settings } from '../agent-core/api/console-config.js';
import type { AgentEvent, Channel, ClientInput, Handlers, Output, Reply } from '../agent-core/api/contract.js';
import type { Job, JobFinished, QueuedJobKind } from '../agent-core/api/job.js';
import { dispatch, type LogLine } from '../agent/dispatch.js';
import { notificationFor, type DesktopNotification } from './notifications.js';

export interface TraySnapshot {
  readonly sources: number;
  /** A repository is configured and exists. */
  readonly repositoryReady: boolean;
  readonly schedulesPaused: boolean;
  readonly running: { readonly kind: QueuedJobKind; readonly source: string | null; readonly percent: number | null } | null;
  readonly queued: number;
  readonly lastResult: { readonly kind: QueuedJobKind; readonly state: 'succeeded' | 'failed' | 'cancelled'; readonly finishedAt: string } | null;
  readonly notifications: Settings['notifications'];
}

export type TrayAction = 'backup-now' | 'toggle-schedules' | 'open-console' | 'quit';

export type TrayMenuItem =
  | { readonly type: 'label'; readonly label: string }
  | { readonly type: 'separator' }
  | { readonly type: 'action'; readonly label: string; readonly action: TrayAction; readonly enabled: boolean }
  | { readonly type: 'checkbox'; readonly label: string; readonly action: TrayAction; readonly checked: boolean; readonly enabled: boolean };

export type TrayTone = 'idle' | 'busy' | 'error';

const DEFAULT_NOTIFICATIONS: Settings['notifications'] = { onSuccess: true, onFailure: true };

function percentOf(job: Job): number | null {
  const p = job.progress;
  return p && p.bytesTotal > 0 ? Math.min(100, Math.floor((p.bytesDone * 100) / p.bytesTotal)) : null;
}

/** The tray's view of the agent. sources or settings are null when the agent could not list them. */
export function traySnapshotFrom(input: { sources: readonly ConfiguredSource[] | null; settings: Settings | null; jobs: readonly Job[] }): TraySnapshot {
  const running = input.jobs.find((j) => j.state === 'running');
  const finished = input.jobs.filter((j) => j.finishedAt !== null && j.state !== 'queued' && j.state !== 'running');
  const last = finished.reduce<Job | undefined>((a, j) => (a && a.finishedAt! >= j.finishedAt! ? a : j), undefined);
  let lastResult: TraySnapshot['lastResult'] = last ? { kind: last.kind, state: last.state as 'succeeded' | 'failed' | 'cancelled', finishedAt: last.finishedAt! } : null;
  if (!lastResult) {
    // A restarted agent has no jobs in memory; the sources still know how their last backup went.
    for (const s of input.sources ?? []) {
      const j = s.lastJob;
      if (j?.finishedAt && (j.state === 'succeeded' || j.state === 'failed' || j.state === 'cancelled') && (!lastResult || j.finishedAt > lastResult.finishedAt)) {
        lastResult = { kind: 'backup', state: j.state, finishedAt: j.finishedAt };
      }
    }
  }
  return {
    sources: input.sources?.length ?? 0,
    repositoryReady: input.settings?.repository.id != null,
    schedulesPaused: input.settings?.schedulesPaused ?? false,
    running: running ? { kind: running.kind, source: running.source, percent: percentOf(running) } : null,
    queued: input.jobs.filter((j) => j.state === 'queued').length,
    lastResult,
    notifications: input.settings?.notifications ?? DEFAULT_NOTIFICATIONS,
  };
}

/** "just now", "5 min ago", "3 h ago", "2 days ago". */
export function formatAgo(iso: string, now: Date): string {
  const ms = now.getTime() - Date.parse(iso);
  if (!Number.isFinite(ms)) return 'at an unknown time';
  const min = Math.floor(ms / 60_000);
  if (min < 1) return 'just now';
  if (min < 60) return `${min} min ago`;
  const h = Math.floor(min / 60);
  if (h < 48) return `${h} h ago`;
  return `${Math.floor(h / 24)} days ago`;
}

const VERB = { backup: 'Backing up', restore: 'Restoring', verify: 'Verifying' } as const;
const NOUN = { backup: 'backup', restore: 'restore', verify: 'verification' } as const;

/** The one status line at the top of the menu and in the tooltip. */
export function trayStatusLine(s: TraySnapshot, now: Date): string {
  if (s.running) {
    const what = s.running.source ? ` ${s.running.source}` : '';
    const pct = s.running.percent === null ? '' : ` ${s.running.percent} %`;
    const more = s.queued > 0 ? ` (${s.queued} queued)` : '';
    return `${VERB[s.running.kind]}${what}…${pct}${more}`;
  }
  if (!s.lastResult) return s.sources === 0 ? 'No disks to protect yet' : 'No backup yet';
  return `Last ${NOUN[s.lastResult.kind]} ${s.lastResult.state} ${formatAgo(s.lastResult.finishedAt, now)}`;
}

export function trayTone(s: TraySnapshot): TrayTone {
  if (s.running) return 'busy';
  return s.lastResult?.state === 'failed' ? 'error' : 'idle';
}

export function trayMenuModel(s: TraySnapshot, now: Date): TrayMenuItem[] {
  let backupLabel = 'Back up now';
  if (s.sources === 0) backupLabel = 'Back up now (add a disk in the console first)';
  else if (!s.repositoryReady) backupLabel = 'Back up now (choose a repository in the console first)';
  return [
    { type: 'label', label: trayStatusLine(s, now) },
    { type: 'separator' },
    { type: 'action', label: backupLabel, action: 'backup-now', enabled: s.sources > 0 && s.repositoryReady },
    { type: 'checkbox', label: 'Pause schedules', action: 'toggle-schedules', checked: s.schedulesPaused, enabled: true },
    { type: 'separator' },
    { type: 'action', label: 'Open console', action: 'open-console', enabled: true },
    { type: 'action', label: 'Quit Strata', action: 'quit', enabled: true },
  ];
}

/** Electron's menu template for the model; each click runs its action. */
export function menuTemplate(items: readonly TrayMenuItem[], perform: (action: TrayAction) => void): MenuItemConstructorOptions[] {
  return items.map((item): MenuItemConstructorOptions => {
    switch (item.type) {
      case 'separator':
        return { type: 'separator' };
      case 'label':
        return { label: item.label, enabled: false };
      case 'checkbox':
        return { type: 'checkbox', label: item.label, checked: item.checked, enabled: item.enabled, click: () => perform(item.action) };
      case 'action':
        return { label: item.label, enabled: item.enabled, click: () => perform(item.action) };
    }
  });
}

const TONE_BGR: Record<TrayTone, [number, number, number]> = {
  idle: [0xd0, 0x8a, 0x2b], // blue
  busy: [0x3c, 0xa0, 0x2e], // green
  error: [0x35, 0x35, 0xd9], // red
};

/**
 * The tray icon as raw BGRA pixels (nativeImage.createFromBitmap): three stacked bands, the strata,
 * in the tone's color on a transparent ground. Drawn here so the app ships no image file for it.
 */
export function trayIconBitmap(sizePx: number, tone: TrayTone): Buffer {
  const pixels = Buffer.alloc(sizePx * sizePx * 4);
  const [b, g, r] = TONE_BGR[tone];
  const margin = Math.max(1, Math.round(sizePx / 8));
  const band = Math.max(1, Math.floor((sizePx - 2 * margin) / 5));
  for (let layer = 0; layer < 3; layer++) {
    const top = margin + layer * 2 * band;
    // Upper bands are narrower, so the icon reads as layers at 16 px.
    const inset = margin + (2 - layer) * Math.max(1, Math.round(sizePx / 16));
    for (let y = top; y < top + band; y++) {
      for (let x = inset; x < sizePx - inset; x++) {
        const i = (y * sizePx + x) * 4;
        pixels[i] = b;
        pixels[i + 1] = g;
        pixels[i + 2] = r;
        pixels[i + 3] = 0xff;
      }
    }
  }
  return pixels;
}

/** A typed call through dispatch(), as the tray makes them: validated like any transport's. */
export type AgentCall = <C extends Channel>(channel: C, input: ClientInput<C>) => Promise<Reply<Output<C>>>;

export function callThroughDispatch(handlers: Handlers, log: LogLine): AgentCall {
  return (channel, input) => dispatch(handlers, channel, input, (line) => log(`tray: ${line}`)) as never;
}

export interface ConsoleTrayOptions {
  readonly call: AgentCall;
  readonly onEvent: (listener: (event: AgentEvent) => void) => () => void;
  /** Draws the menu, tooltip and icon tone. */
  readonly present: (menu: TrayMenuItem[], tooltip: string, tone: TrayTone) => void;
  readonly notify: (notification: DesktopNotification) => void;
  readonly openConsole: () => void;
  readonly quit: () => void;
  readonly log: LogLine;
  readonly now?: () => Date;
}

/** Keeps the tray current and runs its actions; every call goes through the agent's dispatch. */
export class ConsoleTray {
  private sources: ConfiguredSource[] | null = null;
  private settings: Settings | null = null;
  private jobs: Job[] = [];
  private refreshing: Promise<void> | null = null;
  private stale = false;
  private stop: (() => void) | null = null;
  private closed = false;

  constructor(private readonly options: ConsoleTrayOptions) {}

  async start(): Promise<void> {
    this.stop = this.options.onEvent((event) => this.onEvent(event));
    await this.refresh();
  }

  snapshot(): TraySnapshot {
    return traySnapshotFrom({ sources: this.sources, settings: this.settings, jobs: this.jobs });
  }

  /** Lists sources, settings and jobs again; calls that arrive meanwhile coalesce into one more pass. */
  refresh(): Promise<void> {
    if (this.refreshing) {
      this.stale = true;
      return this.refreshing;
    }
    this.refreshing = (async () => {
      do {
        this.stale = false;
        const [sources, settings, jobs] = await Promise.all([this.options.call('sources:list', {}), this.options.call('settings:get', {}), this.options.call('jobs:list', {})]);
        if (sources.ok) this.sources = sources.value;
        else this.options.log(`tray: could not list sources: ${sources.error.message}`);
        if (settings.ok) this.settings = settings.value;
        else this.options.log(`tray: could not read settings: ${settings.error.message}`);
        if (jobs.ok) this.jobs = jobs.value;
      } while (this.stale && !this.closed);
    })().finally(() => {
      this.refreshing = null;
      this.present();
    });
    return this.refreshing;
  }

  async perform(action: TrayAction): Promise<void> {
    switch (action) {
      case 'open-console':
        return this.options.openConsole();
      case 'quit':
        return this.options.quit();
      case 'toggle-schedules': {
        const paused = !(this.settings?.schedulesPaused ?? false);
        const reply = await this.options.call('settings:update', { schedulesPaused: paused });
        if (reply.ok) this.settings = reply.value;
        else this.failed(paused ? 'Could not pause schedules' : 'Could not resume schedules', reply.error.message);
        return this.present();
      }
      case 'backup-now': {
        const listed = await this.options.call('sources:list', {});
        if (!listed.ok) return this.failed('Could not start a backup', listed.error.message);
        if (listed.value.length === 0) return this.failed('Nothing to back up', 'Add a disk in the console first.');
        for (const source of listed.value) {
          const started = await this.options.call('jobs:start-backup', { source: source.path });
          if (!started.ok) this.failed(`Could not back up ${source.label}`, started.error.message);
        }
        return this.refresh();
      }
    }
  }

  close(): void {
    this.closed = true;
    this.stop?.();
    this.stop = null;
  }

  private failed(title: string, body: string): void {
    this.options.log(`tray: ${title}: ${body}`);
    this.options.notify({ title, body, urgency: 'critical' });
  }

  private onEvent(event: AgentEvent): void {
    if (this.closed) return;
    switch (event.event) {
      case 'jobs:progress': {
        const job = this.jobs.find((j) => j.id === event.payload.jobId);
        if (job) {
          job.progress = event.payload;
          this.present();
        }
        return;
      }
      case 'jobs:finished':
        void this.finished(event.payload);
        return;
      case 'settings:changed':
        this.settings = event.payload;
        this.present();
        return;
      default:
        void this.refresh();
    }
  }

  private async finished(finished: JobFinished): Promise<void> {
    const known = this.jobs.find((j) => j.id === finished.jobId);
    await this.refresh();
    const job = this.jobs.find((j) => j.id === finished.jobId) ?? known;
    const note = notificationFor(finished, job, this.settings?.notifications ?? DEFAULT_NOTIFICATIONS);
    if (note && !this.closed) this.options.notify(note);
  }

  private present(): void {
    if (this.closed) return;
    const s = this.snapshot();
    const now = (this.options.now ?? (() => new Date()))();
    this.options.present(trayMenuModel(s, now), `Strata — ${trayStatusLine(s, now)}`, trayTone(s));
  }
}
