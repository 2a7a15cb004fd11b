// Progress of a running job, as the CLI's bar, JSON lines and (later) the console's events show it.
export interface Progress {
  readonly phase: 'backup' | 'restore' | 'verify';
  readonly bytesDone: number;
  readonly bytesTotal: number;
  readonly elapsedMs: number;
}

export function rateAndEta(p: Progress): { rateBytesPerSec: number; etaMs: number | null } {
  const rate = p.elapsedMs > 0 ? (p.bytesDone * 1000) / p.elapsedMs : 0;
  const eta = rate > 0 ? ((p.bytesTotal - p.bytesDone) * 1000) / rate : null;
  return { rateBytesPerSec: Math.round(rate), etaMs: eta === null ? null : Math.round(eta) };
}
