// Turns the rows of one bench run into the ratios the targets are stated in, and prints them as a
// console table, as Markdown for docs/PERFORMANCE.md and as JSON for anyone comparing runs.
import { PHASES, TOOLS } from './rows.mjs';

const MiB = 1024 * 1024;

/** The targets from the performance issue; `target` is an upper bound on the ratio. */
const RATIOS = [
  { label: 'full: Strata / partclone|zstd, wall time', num: ['strata', 'full', 'wallMs'], den: ['partclone', 'full', 'wallMs'], target: 0.6, pairs: 'full' },
  { label: 'full: Strata / partclone|zstd, stored bytes', num: ['strata', 'full', 'storedBytes'], den: ['partclone', 'full', 'storedBytes'], target: 1.05 },
  { label: 'full: Strata / zstd raw, wall time', num: ['strata', 'full', 'wallMs'], den: ['zstd', 'full', 'wallMs'] },
  { label: 'full: Strata / zstd raw, stored bytes', num: ['strata', 'full', 'storedBytes'], den: ['zstd', 'full', 'storedBytes'] },
  { label: 'full: Strata / restic, wall time', num: ['strata', 'full', 'wallMs'], den: ['restic', 'full', 'wallMs'] },
  { label: 'full: Strata / restic, stored bytes', num: ['strata', 'full', 'storedBytes'], den: ['restic', 'full', 'storedBytes'] },
  { label: 'incremental: Strata / restic, wall time', num: ['strata', 'incremental', 'wallMs'], den: ['restic', 'incremental', 'wallMs'], target: 0.5, pairs: 'incremental' },
  { label: 'incremental: Strata growth / changed bytes', num: ['strata', 'incremental', 'storedBytes'], den: 'changedBytes', target: 1.3 },
  { label: 'incremental: restic growth / changed bytes', num: ['restic', 'incremental', 'storedBytes'], den: 'changedBytes' },
  { label: 'incremental: differing 4 KiB blocks / changed bytes', num: 'differingBlockBytes', den: 'changedBytes' },
  // The tracked phase's own change (its copy of the image, the same seeded change); counted only
  // when the backup really was a live-tracked incremental (`requires`), else the row says what it was.
  { label: "tracked incremental, the product's path (API client: jobs:start-backup → jobs:wait → sync): wall / restic's second run wall", num: ['tracked', 'incremental', 'wallMs'], den: ['restic', 'incremental', 'wallMs'], target: 0.05, requires: ['tracked', 'incremental', 'liveIncremental'] },
  { label: "tracked incremental, API client: bytes read / differing 4 KiB blocks' bytes", num: ['tracked', 'incremental', 'readBytes'], den: ['tracked', 'incremental', 'differingBlockBytes'], target: 1.2, requires: ['tracked', 'incremental', 'liveIncremental'] },
  { label: "tracked incremental, API client: the agent job's durationMs (runBackup alone) / restic's second run wall", num: ['tracked', 'incremental', 'jobMs'], den: ['restic', 'incremental', 'wallMs'], requires: ['tracked', 'incremental', 'liveIncremental'] },
  { label: "tracked incremental, a fresh `strata backup` CLI process forwarding to the agent (node start included): wall / restic's second run wall", num: ['tracked-cli', 'incremental', 'wallMs'], den: ['restic', 'incremental', 'wallMs'], requires: ['tracked-cli', 'incremental', 'liveIncremental'] },
  { label: "tracked incremental, CLI: bytes read / differing 4 KiB blocks' bytes (its own change)", num: ['tracked-cli', 'incremental', 'readBytes'], den: ['tracked-cli', 'incremental', 'differingBlockBytes'], requires: ['tracked-cli', 'incremental', 'liveIncremental'] },
  { label: 'restore: Strata / partclone|zstd, wall time', num: ['strata', 'restore', 'wallMs'], den: ['partclone', 'restore', 'wallMs'] },
  { label: 'restore: Strata verified / partclone|zstd, wall time', num: ['strata-verified', 'restore', 'wallMs'], den: ['partclone', 'restore', 'wallMs'] },
  { label: 'restore: Strata / zstd raw, wall time', num: ['strata', 'restore', 'wallMs'], den: ['zstd', 'restore', 'wallMs'] },
  { label: 'restore: Strata / restic, wall time', num: ['strata', 'restore', 'wallMs'], den: ['restic', 'restore', 'wallMs'] },
];

/** The median of the ratios of alternated pairs ({numMs, denMs}, scripts/bench.mjs), if there is more than one. */
function pairsMedian(pairs) {
  if (!pairs || pairs.length < 2) return undefined;
  const ratios = pairs.map((p) => p.numMs / p.denMs).sort((a, b) => a - b);
  const mid = Math.floor(ratios.length / 2);
  return ratios.length % 2 === 1 ? ratios[mid] : (ratios[mid - 1] + ratios[mid]) / 2;
}

/** `pairs`: the alternated pairs of the ratios that have them, by kind ({ full: [...], incremental: [...] }). */
export function computeRatios(rows, change, pairs = {}) {
  const value = (ref) => {
    if (typeof ref === 'string') return change?.[ref];
    const [tool, phase, field] = ref;
    return rows.find((r) => r.tool === tool && r.phase === phase)?.[field];
  };
  return RATIOS.map(({ label, num, den, target, requires, pairs: kind }) => {
    const median = kind ? pairsMedian(pairs[kind]) : undefined;
    if (median !== undefined) {
      const met = target === undefined ? undefined : median <= target;
      return { label: `${label} (median of ${pairs[kind].length} alternated pairs)`, ratio: median, target, met };
    }
    const a = value(num);
    const b = value(den);
    const ratio = Number.isFinite(a) && Number.isFinite(b) && b > 0 && (!requires || value(requires) === true) ? a / b : undefined;
    const met = ratio === undefined || target === undefined ? undefined : ratio <= target;
    return { label, ratio, target, met };
  });
}

const seconds = (ms) => (ms === undefined ? '' : (ms / 1000).toFixed(2));
const mib = (bytes) => (bytes === undefined ? '' : `${(bytes / MiB).toFixed(1)} MiB`);
const growth = (bytes) => (bytes === undefined ? '' : `+${mib(bytes)}`);

function rowCells(r) {
  const notes = r.skipped ? `skipped: ${r.skipped}` : r.error ? `FAILED: ${r.error}` : [r.warning, r.verified, r.note].filter(Boolean).join('; ');
  return [
    TOOLS[r.tool],
    r.phase,
    seconds(r.wallMs),
    mib(r.readBytes),
    mib(r.diskReadBytes),
    r.phase === 'incremental' ? growth(r.storedBytes) : mib(r.storedBytes),
    mib(r.peakRssBytes),
    notes,
  ];
}

const ROW_HEADER = ['tool', 'phase', 'wall s', 'read', 'disk read', 'stored / growth', 'peak RSS', 'notes'];
const RATIO_HEADER = ['ratio', 'measured', 'target', ''];

function ratioCells(q) {
  const mark = q.met === undefined ? (q.target === undefined ? '' : 'n/a') : q.met ? '✓' : '✗';
  return [q.label, q.ratio === undefined ? 'n/a' : `${q.ratio.toFixed(2)}×`, q.target === undefined ? '' : `≤ ${q.target}×`, mark];
}

function sortedRows(rows) {
  const order = Object.keys(TOOLS);
  return [...rows].sort((a, b) => PHASES.indexOf(a.phase) - PHASES.indexOf(b.phase) || order.indexOf(a.tool) - order.indexOf(b.tool));
}

function headline(report) {
  const { image, change, coldCache, host, strataBlocked } = report;
  return [
    ...(strataBlocked ? [`Strata not measured: ${strataBlocked}`] : []),
    `image: ${image.sizeMiB} MiB ext4, ${mib(image.usedBytes)} used (${(image.usedFraction * 100).toFixed(1)} %), ${image.inodesUsed} inodes, generator v${image.generatorVersion}`,
    `change between full and incremental: ${mib(change?.changedBytes)} written by files (${change?.changedBytes} bytes); ${mib(change?.differingBlockBytes)} of 4 KiB blocks differ in the image`,
    ...pairsLines(report.pairs),
    ...trackedLine(report.rows),
    `page cache: ${coldCache ? 'dropped before every timed step (cold)' : 'WARM: could not drop caches; every input was read once untimed first'}`,
    `host: ${host.cpus} × ${host.cpuModel}, load ${host.loadAverage.join(' ')} at start, Linux ${host.kernel}`,
  ];
}

const PAIRED = { full: 'full pairs, Strata / partclone | zstd', incremental: 'incremental pairs, Strata / restic' };

function pairsLines(pairs = {}) {
  return Object.entries(PAIRED)
    .filter(([kind]) => (pairs[kind]?.length ?? 0) > 1)
    .map(([kind, what]) => {
      const each = pairs[kind].map((p, i) => `${i + 1}: ${seconds(p.numMs)} / ${seconds(p.denMs)} s = ${(p.numMs / p.denMs).toFixed(2)}×`);
      return `${what} (the table's rows are pair 1): ${each.join('; ')}`;
    });
}

/** The tracked phase changes its own copy of the image, once per row; each row's yardstick is its own count. */
function trackedLine(rows) {
  const lines = [];
  const t = rows.find((r) => r.tool === 'tracked' && r.differingBlockBytes !== undefined);
  if (t) lines.push(`tracked phase's change for the API client's row (its own copy on ${t.device}, the same seeded change): ${mib(t.changedBytes)} written by files; ${mib(t.differingBlockBytes)} of 4 KiB blocks differ`);
  const c = rows.find((r) => r.tool === 'tracked-cli' && r.differingBlockBytes !== undefined);
  if (c) lines.push(`tracked phase's second change, for the CLI's row (another seed, after the first): ${mib(c.changedBytes)} written by files; ${mib(c.differingBlockBytes)} of 4 KiB blocks differ`);
  return lines;
}

function textTable(header, lines) {
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => [...l[i]].length)));
  const fmt = (cells) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]))).join('  ').trimEnd();
  return [fmt(header), widths.map((w) => '-'.repeat(w)).join('  '), ...lines.map(fmt)].join('\n');
}

function markdownTable(header, lines) {
  const esc = (c) => c.replaceAll('|', '\\|');
  return [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`, ...lines.map((l) => `| ${l.map(esc).join(' | ')} |`)].join('\n');
}

export function renderText(report) {
  return [
    ...headline(report),
    '',
    textTable(ROW_HEADER, sortedRows(report.rows).map(rowCells)),
    '',
    textTable(RATIO_HEADER, report.ratios.map(ratioCells)),
    '',
    `total bench time ${seconds(report.durationMs)} s`,
  ].join('\n');
}

export function renderMarkdown(report) {
  return [
    `Run of ${report.startedAt.slice(0, 10)} (\`npm run bench${report.argv.length ? ` -- ${report.argv.join(' ')}` : ''}\`, ${seconds(report.durationMs)} s in all).`,
    '',
    ...headline(report).map((l) => `- ${l}`),
    '',
    markdownTable(ROW_HEADER, sortedRows(report.rows).map(rowCells)),
    '',
    markdownTable(RATIO_HEADER, report.ratios.map(ratioCells)),
    '',
  ].join('\n');
}
