// The peers Strata is measured against, each run the way its users run it: partclone's used-block
// image through zstd, zstd of the raw image, and restic reading the image from stdin.
import { rmSync } from 'node:fs';
import path from 'node:path';
import { ext4Check } from './ext4.mjs';
import { measuredRow } from './rows.mjs';
import { duBytes, fileBytes, quote, run, settleCache, timed } from './shell.mjs';

const RESTIC_ENV = { RESTIC_PASSWORD: 'strata-bench' };

/** `out`: where the image goes (the run's, which the restore reads, unless given). */
export function partcloneFull(ctx, imagePath, usedBytes, out = path.join(ctx.runDir, 'partclone.pcl.zst')) {
  const log = path.join(ctx.runDir, 'partclone.log');
  // partclone prints progress to stderr even with -q; keep it in a log rather than the report.
  const script = `partclone.ext4 -c -q -s ${quote(imagePath)} -o - -L ${quote(log)} 2>>${quote(log)} | zstd -3 -q -f -o ${quote(out)}`;
  settleCache(ctx.coldCache, [imagePath]);
  const t = timed({ cmd: 'bash', args: ['-o', 'pipefail', '-c', script], outputPath: out, statsPath: ctx.statsPath });
  return measuredRow('partclone', 'full', t, { readBytes: usedBytes, storedBytes: t.ok ? fileBytes(out) : undefined });
}

export function partcloneRestore(ctx) {
  const backup = path.join(ctx.runDir, 'partclone.pcl.zst');
  const target = path.join(ctx.runDir, 'restore-partclone.img');
  const log = path.join(ctx.runDir, 'partclone.log');
  const script = `zstd -dc -q ${quote(backup)} | partclone.ext4 -r -q -W -s - -O ${quote(target)} -L ${quote(log)} 2>>${quote(log)}`;
  settleCache(ctx.coldCache, [backup]);
  const t = timed({ cmd: 'bash', args: ['-o', 'pipefail', '-c', script], outputPath: target, statsPath: ctx.statsPath });
  // partclone writes only used blocks, so free space differs from the source; fsck is the check.
  const verified = t.ok ? ext4Check(target).detail : undefined;
  rmSync(target, { force: true });
  return measuredRow('partclone', 'restore', t, { readBytes: fileBytes(backup), verified: verified && `e2fsck ${verified}` });
}

export function zstdFull(ctx, imagePath) {
  const out = path.join(ctx.runDir, 'raw.img.zst');
  settleCache(ctx.coldCache, [imagePath]);
  const t = timed({ cmd: 'zstd', args: ['-T0', '-3', '-q', '-f', imagePath, '-o', out], outputPath: out, statsPath: ctx.statsPath });
  return measuredRow('zstd', 'full', t, { readBytes: fileBytes(imagePath), storedBytes: t.ok ? fileBytes(out) : undefined });
}

export function zstdRestore(ctx, sourceImagePath) {
  const backup = path.join(ctx.runDir, 'raw.img.zst');
  const target = path.join(ctx.runDir, 'restore-zstd.img');
  settleCache(ctx.coldCache, [backup]);
  const t = timed({ cmd: 'zstd', args: ['-d', '-q', '-f', backup, '-o', target], outputPath: target, statsPath: ctx.statsPath });
  const verified = t.ok ? compareFiles(target, sourceImagePath) : undefined;
  rmSync(target, { force: true });
  return measuredRow('zstd', 'restore', t, { readBytes: fileBytes(backup), verified });
}

/** Where restic keeps a repository and its cache: the run's, or (with a suffix) a copy of them. */
export function resticPlace(ctx, suffix = '') {
  return { repo: path.join(ctx.runDir, `restic-repo${suffix}`), cache: path.join(ctx.runDir, `restic-cache${suffix}`) };
}

function resticArgs(ctx, ...args) {
  return resticArgsAt(resticPlace(ctx), ...args);
}

function resticArgsAt(place, ...args) {
  return [...args, '--repo', place.repo, '--cache-dir', place.cache];
}

export function resticInit(ctx) {
  // Format 2 is the one with compression; restic 0.14 would pick it anyway, but say so.
  run('restic', resticArgs(ctx, 'init', '--repository-version', '2', '-q'), { env: RESTIC_ENV });
}

/**
 * The second call is restic's incremental: same file name, content-defined chunks deduplicate.
 * `place`: another repository and cache than the run's (resticPlace), for the extra pairs.
 */
export function resticBackup(ctx, imagePath, phase, place = resticPlace(ctx)) {
  const repo = place.repo;
  const beforeBytes = duBytes(repo);
  settleCache(ctx.coldCache, [imagePath, repo]);
  const t = timed({
    cmd: 'restic',
    args: resticArgsAt(place, 'backup', '--stdin', '--stdin-filename', 'disk.img', '--json', '-q'),
    env: RESTIC_ENV,
    stdinPath: imagePath,
    outputPath: repo,
    statsPath: ctx.statsPath,
  });
  const summary = lastJson(t.stdout, (o) => o.message_type === 'summary');
  const storedBytes = duBytes(repo) - beforeBytes;
  return measuredRow('restic', phase, t, {
    readBytes: summary?.total_bytes_processed,
    storedBytes,
    note: summary ? `data_added ${summary.data_added}` : undefined,
  });
}

export function resticRestore(ctx, sourceImagePath) {
  const repo = path.join(ctx.runDir, 'restic-repo');
  const targetDir = path.join(ctx.runDir, 'restore-restic');
  settleCache(ctx.coldCache, [repo]);
  const t = timed({
    cmd: 'restic',
    args: resticArgs(ctx, 'restore', 'latest', '--target', targetDir, '-q'),
    env: RESTIC_ENV,
    outputPath: targetDir,
    statsPath: ctx.statsPath,
  });
  const verified = t.ok ? compareFiles(path.join(targetDir, 'disk.img'), sourceImagePath) : undefined;
  rmSync(targetDir, { recursive: true, force: true });
  return measuredRow('restic', 'restore', t, { readBytes: duBytes(repo), verified });
}

export function compareFiles(a, b) {
  const r = run('cmp', ['--quiet', a, b], { allowFail: true });
  return r.status === 0 ? 'byte-identical' : `differs from the source (cmp exit ${r.status})`;
}

/** The last line of JSON-lines output that `match` accepts; tools print progress lines before it. */
export function lastJson(stdout, match) {
  const lines = stdout.trim().split('\n').reverse();
  for (const line of lines) {
    try {
      const o = JSON.parse(line);
      if (match(o)) return o;
    } catch {
      // a progress line that is not JSON
    }
  }
  return undefined;
}
