// One result row per tool and phase, the unit the report and last-run.json are made of.

export const TOOLS = {
  strata: 'Strata',
  'strata-verified': 'Strata, restore read back and verified (its default)',
  // Its own phase after the others (bench/tracked.mjs): a tracked loop device backed up through the
  // agent, timed twice: as a connected client of the agent's API asks for it (the product's path),
  // and as a fresh `strata backup` process that forwards to the agent (selected with `tracked`).
  tracked: 'Strata, tracked: API client → agent job',
  'tracked-cli': 'Strata, tracked: strata backup CLI → agent',
  partclone: 'partclone | zstd -3',
  zstd: 'zstd -T0 -3 (raw image)',
  restic: 'restic --stdin',
};

export const PHASES = ['full', 'incremental', 'restore'];

/** A measured row from a `timed()` result; a failed run becomes a row that says why. */
export function measuredRow(tool, phase, timing, fields) {
  if (!timing.ok) return failedRow(tool, phase, timing.failure);
  return {
    tool,
    phase,
    wallMs: Math.round(timing.wallMs),
    diskReadBytes: timing.diskReadBytes,
    peakRssBytes: timing.peakRssBytes,
    ...fields,
  };
}

export function failedRow(tool, phase, reason) {
  return { tool, phase, error: String(reason) };
}

/** Not measured on purpose (no such mode, or the tool was not selected or is not ready). */
export function skippedRow(tool, phase, reason) {
  return { tool, phase, skipped: reason };
}
