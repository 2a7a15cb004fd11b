// `npm run bench`: backs up one realistic ext4 image with Strata and its peers in the same run,
// changes 1 % of it, backs up again and restores, then prints the table docs/PERFORMANCE.md quotes.
import { cpus, loadavg, release } from 'node:os';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { BENCH_TOOLS, ensureTools } from './tools.mjs';
import { parseOptions } from '../bench/options.mjs';
import { prepareImage } from '../bench/image.mjs';
import { changeImage } from '../bench/mutate.mjs';
import { differingBlockBytes } from '../bench/block-delta.mjs';
import { ext4Usage } from '../bench/ext4.mjs';
import { installMountCleanup } from '../bench/loop-mount.mjs';
import { createStrata } from '../bench/strata.mjs';
import { partcloneFull, partcloneRestore, resticBackup, resticInit, resticPlace, resticRestore, zstdFull, zstdRestore } from '../bench/peers.mjs';
import { failedRow, skippedRow, TOOLS } from '../bench/rows.mjs';
import { trackedIncremental } from '../bench/tracked.mjs';
import { computeRatios, renderMarkdown, renderText } from '../bench/report.mjs';
import { dropCaches, run } from '../bench/shell.mjs';

const projectRoot = path.resolve(import.meta.dirname, '..');
const workDir = path.join(projectRoot, 'bench', 'work');
const log = (line) => console.log(line);
const NO_INCREMENTAL = 'has no incremental mode: every backup is another full';

/**
 * One run's state: the image, the rows so far, and a runner per tool that records a row, or none
 * when the tool is not selected. A tool that throws becomes a failed row, never the end of the run.
 */
function createRun(options) {
  const { imagePath: pristinePath, meta: image } = prepareImage({ workDir, sizeMiB: options.sizeMiB, rebuild: options.rebuild, log });
  const runDir = path.join(workDir, 'run');
  rmSync(runDir, { recursive: true, force: true });
  mkdirSync(runDir, { recursive: true });
  // The run changes its own copy; the cached image stays pristine for the next run and for checks.
  const imagePath = path.join(runDir, 'disk.img');
  run('cp', ['--sparse=never', pristinePath, imagePath]);

  const ctx = { runDir, coldCache: dropCaches(), statsPath: path.join(runDir, 'time.stats') };
  if (!ctx.coldCache) log('page cache: cannot drop it here; measuring WARM, every input is read once untimed first');
  const strataBin = path.resolve(options.strataBin ?? path.join(projectRoot, 'bin', 'strata'));
  const strata = createStrata(ctx, strataBin);
  const strataBlocked = options.only.has('strata') ? strata.init() : undefined;
  if (strataBlocked) log(`strata: not measured, ${strataBlocked}`);

  const rows = [];
  const measure = (tool, phase, fn) => {
    if (!options.only.has(tool.replace(/-(verified|cli)$/, ''))) return;
    let row;
    try {
      // The full reason is printed once (above and in the report's headline); rows point to it.
      row = tool.startsWith('strata') && strataBlocked ? skippedRow(tool, phase, 'Strata CLI not ready, see above') : fn();
    } catch (error) {
      row = failedRow(tool, phase, error.message);
    }
    rows.push(row);
    const outcome = row.skipped ? `skipped (${row.skipped})` : row.error ? `FAILED: ${row.error}` : `${(row.wallMs / 1000).toFixed(2)} s`;
    log(`  ${TOOLS[tool]} ${phase}: ${outcome}`);
  };
  return { options, ctx, image, pristinePath, imagePath, strata, strataBin, strataBlocked, rows, measure, strataSnapshot: undefined, strataFullSnapshot: undefined, strataSnapshotIsChanged: false, pairs: { full: [], incremental: [] }, atFull: undefined };
}

function fullBackups(r) {
  log('full backups');
  r.measure('strata', 'full', () => {
    const { row, snapshot } = r.strata.backup(r.imagePath, 'full');
    r.strataSnapshot = snapshot;
    r.strataFullSnapshot = snapshot;
    return row;
  });
  r.measure('partclone', 'full', () => partcloneFull(r.ctx, r.imagePath, r.image.usedBytes));
  r.measure('zstd', 'full', () => zstdFull(r.ctx, r.imagePath));
  r.measure('restic', 'full', () => {
    resticInit(r.ctx);
    return resticBackup(r.ctx, r.imagePath, 'full');
  });
}

/**
 * Two targets compare timed steps of two tools (Strata's full with partclone | zstd's, Strata's
 * incremental with restic's second run). A shared machine's speed moves within seconds, so one pair
 * is one sample of it: each is timed again, `--pairs` times in all, alternating which tool goes
 * first, each extra pair in a place of its own, and the target's ratio is the median of the pairs'
 * ratios (bench/report.mjs). The rows of the table are the first pair.
 */
function morePairs(r, kind, steps) {
  for (let i = 1; i < r.options.pairs; i++) {
    // The first pair ran Strata first; from here the other tool goes first every other pair.
    const rows = i % 2 === 1 ? [steps[1](), steps[0]()].reverse() : [steps[0](), steps[1]()];
    // A pair that failed, or measured something else (an incremental that was not one), ends the pairs.
    const failed = rows.find((row) => row.wallMs === undefined || row.warning);
    if (failed) {
      log(`  ${kind} pair ${i + 1}: FAILED: ${failed.error ?? failed.skipped ?? failed.warning}`);
      return;
    }
    r.pairs[kind].push({ numMs: rows[0].wallMs, denMs: rows[1].wallMs });
    log(`  ${kind} pair ${i + 1}: ${TOOLS[rows[0].tool]} ${(rows[0].wallMs / 1000).toFixed(2)} s, ${TOOLS[rows[1].tool]} ${(rows[1].wallMs / 1000).toFixed(2)} s`);
  }
}

/** The first pair's walls of two tools' rows in a phase, or undefined if either is not measured. */
function firstPair(r, phase, num, den) {
  const wall = (tool) => r.rows.find((x) => x.tool === tool && x.phase === phase)?.wallMs;
  return wall(num) === undefined || wall(den) === undefined ? undefined : { numMs: wall(num), denMs: wall(den) };
}

function fullPairs(r) {
  const first = firstPair(r, 'full', 'strata', 'partclone');
  if (r.options.pairs <= 1 || !first) return;
  r.pairs.full = [first];
  log(`${r.options.pairs - 1} more full pairs, Strata and partclone | zstd alternating`);
  const repo = path.join(r.ctx.runDir, 'strata-repo-pair');
  const out = path.join(r.ctx.runDir, 'partclone-pair.pcl.zst');
  morePairs(r, 'full', [
    () => {
      rmSync(repo, { recursive: true, force: true });
      const blocked = r.strata.init(repo);
      return blocked ? failedRow('strata', 'full', blocked) : r.strata.backup(r.imagePath, 'full', undefined, repo).row;
    },
    () => partcloneFull(r.ctx, r.imagePath, r.image.usedBytes, out),
  ]);
  rmSync(repo, { recursive: true, force: true });
  rmSync(out, { force: true });
}

/** Copies of Strata's and restic's repositories (and restic's cache) as the fulls left them, for the incremental pairs. */
function keepFullState(r) {
  if (r.options.pairs <= 1 || !firstPair(r, 'full', 'strata', 'restic')) return;
  r.atFull = { strata: path.join(r.ctx.runDir, 'strata-repo-at-full'), restic: resticPlace(r.ctx, '-at-full') };
  const main = resticPlace(r.ctx);
  for (const [from, to] of [
    [r.strata.repo, r.atFull.strata],
    [main.repo, r.atFull.restic.repo],
    [main.cache, r.atFull.restic.cache],
  ]) {
    if (existsSync(from)) run('cp', ['-a', from, to]);
  }
}

function incrementalPairs(r) {
  const first = firstPair(r, 'incremental', 'strata', 'restic');
  if (!r.atFull || !first) return;
  r.pairs.incremental = [first];
  log(`${r.options.pairs - 1} more incremental pairs, Strata and restic alternating, each from a copy of the repositories the fulls left`);
  const repo = path.join(r.ctx.runDir, 'strata-repo-pair');
  const place = resticPlace(r.ctx, '-pair');
  const fresh = (from, to) => {
    rmSync(to, { recursive: true, force: true });
    if (existsSync(from)) run('cp', ['-a', from, to]);
  };
  morePairs(r, 'incremental', [
    () => {
      fresh(r.atFull.strata, repo);
      return r.strata.backup(r.imagePath, 'incremental', r.strataFullSnapshot, repo).row;
    },
    () => {
      fresh(r.atFull.restic.repo, place.repo);
      fresh(r.atFull.restic.cache, place.cache);
      return resticBackup(r.ctx, r.imagePath, 'incremental', place);
    },
  ]);
  for (const p of [repo, place.repo, place.cache, r.atFull.strata, r.atFull.restic.repo, r.atFull.restic.cache]) rmSync(p, { recursive: true, force: true });
}

function changeOnePercent(r) {
  log('changing about 1 % of the used bytes');
  const change = changeImage({ imagePath: r.imagePath, usedBytes: r.image.usedBytes });
  change.differingBlockBytes = differingBlockBytes(r.pristinePath, r.imagePath);
  log(`  wrote ${change.changedBytes} bytes (${change.rewrittenBytes} in 4 KiB pieces, ${change.appendedBytes} appended, ${change.newFileBytes} in new files), deleted ${change.deletedFiles} files`);
  log(`  ${change.differingBlockBytes} bytes of 4 KiB blocks differ from the full backup's image (data plus ext4 metadata and journal)`);
  return change;
}

function incrementalBackups(r) {
  log('incremental backups');
  r.measure('strata', 'incremental', () => {
    const { row, snapshot } = r.strata.backup(r.imagePath, 'incremental', r.strataSnapshot);
    if (snapshot) {
      r.strataSnapshot = snapshot;
      r.strataSnapshotIsChanged = true;
    }
    return row;
  });
  r.measure('partclone', 'incremental', () => skippedRow('partclone', 'incremental', NO_INCREMENTAL));
  r.measure('zstd', 'incremental', () => skippedRow('zstd', 'incremental', NO_INCREMENTAL));
  r.measure('restic', 'incremental', () => resticBackup(r.ctx, r.imagePath, 'incremental'));
}

/** Each restores its latest backup: Strata and restic the changed image, the full-only peers the original. */
function restores(r) {
  log('restores');
  r.measure('strata', 'restore', () => {
    if (!r.strataSnapshot) return skippedRow('strata', 'restore', 'no snapshot to restore');
    return r.strata.restore(r.strataSnapshot, r.strataSnapshotIsChanged ? r.imagePath : r.pristinePath);
  });
  r.measure('strata-verified', 'restore', () => {
    if (!r.strataSnapshot) return skippedRow('strata-verified', 'restore', 'no snapshot to restore');
    return r.strata.restore(r.strataSnapshot, r.strataSnapshotIsChanged ? r.imagePath : r.pristinePath, 'strata-verified');
  });
  r.measure('partclone', 'restore', () => partcloneRestore(r.ctx));
  r.measure('zstd', 'restore', () => zstdRestore(r.ctx, r.pristinePath));
  r.measure('restic', 'restore', () => resticRestore(r.ctx, r.imagePath));
}

/**
 * Last, so the rows above measure what they did without it: its own copy of the image on a loop
 * device that a running agent tracks, changed by 1 % and backed up through the agent.
 */
function trackedPhase(r) {
  if (!r.options.only.has('tracked')) return;
  log('tracked incremental (a loop device tracked by a running agent)');
  let rows;
  r.measure('tracked', 'incremental', () => {
    if (r.strataBlocked) return skippedRow('tracked', 'incremental', 'Strata CLI not ready, see above');
    rows = trackedIncremental(r.ctx, { bin: r.strataBin, pristinePath: r.pristinePath, usedBytes: r.image.usedBytes, log });
    return rows.agent;
  });
  r.measure('tracked-cli', 'incremental', () => rows?.cli ?? skippedRow('tracked-cli', 'incremental', 'the tracked phase did not run'));
}

function writeReport(r, { argv, startedAt, startMs, loadAverage, change }) {
  const report = {
    startedAt,
    argv,
    durationMs: Math.round(performance.now() - startMs),
    coldCache: r.ctx.coldCache,
    strataBlocked: r.strataBlocked,
    host: { cpus: cpus().length, cpuModel: cpus()[0]?.model.trim() ?? 'unknown', kernel: release(), loadAverage },
    image: { ...r.image, imagePath: path.relative(projectRoot, r.pristinePath) },
    imageAfterChange: ext4Usage(r.imagePath),
    change,
    rows: r.rows,
    pairs: r.pairs,
    ratios: computeRatios(r.rows, change, r.pairs),
  };
  log('');
  log(renderText(report));
  writeFileSync(path.join(workDir, 'last-run.md'), renderMarkdown(report));
  writeFileSync(path.join(workDir, 'last-run.json'), JSON.stringify(report, null, 2) + '\n');
  log(`\nwritten: ${path.relative(projectRoot, workDir)}/last-run.md and last-run.json`);
}

function main() {
  const argv = process.argv.slice(2);
  const options = parseOptions(argv);
  const startedAt = new Date().toISOString();
  const startMs = performance.now();
  // Taken before we add load ourselves: it says how busy the machine already was.
  const loadAverage = loadavg().map((l) => Number(l.toFixed(2)));

  ensureTools({ ...BENCH_TOOLS, '/usr/bin/time': 'time', cmp: 'diffutils', diff: 'diffutils' });
  mkdirSync(workDir, { recursive: true });
  installMountCleanup(workDir);

  const r = createRun(options);
  fullBackups(r);
  fullPairs(r);
  keepFullState(r);
  const change = changeOnePercent(r);
  incrementalBackups(r);
  incrementalPairs(r);
  restores(r);
  trackedPhase(r);
  writeReport(r, { argv, startedAt, startMs, loadAverage, change });
}

main();
