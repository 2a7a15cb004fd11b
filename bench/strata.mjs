// Strata through its CLI, exactly as a user runs it. The CLI may not be built yet while the bench
// is: then every Strata row is skipped with the reason, and the peers are still measured.
import { existsSync, rmSync } from 'node:fs';
import path from 'node:path';
import { ext4Check } from './ext4.mjs';
import { withMount } from './loop-mount.mjs';
import { lastJson } from './peers.mjs';
import { failedRow, measuredRow } from './rows.mjs';
import { describeFailure, duBytes, run, settleCache, timed } from './shell.mjs';

export function createStrata(ctx, bin) {
  const repo = path.join(ctx.runDir, 'strata-repo');
  const env = { STRATA_STATE_DIR: path.join(ctx.runDir, 'strata-state') };
  const strata = (args, options = {}) => run('sh', [bin, ...args], { env, allowFail: true, ...options });

  /** Sets up an empty repository (the run's unless given); returns why Strata cannot be measured, or undefined if it can. */
  function init(at = repo) {
    if (!existsSync(bin)) return `${bin} is missing`;
    const r = strata(['init', '--repo', at]);
    return r.status === 0 ? undefined : `\`strata init\` failed: ${describeFailure(r)}`;
  }

  /**
   * `expectedParent`: for the incremental, the full's snapshot, which the CLI should pick itself.
   * `into`: another repository than the run's (made ready by the caller), for the extra pairs.
   */
  function backup(imagePath, phase, expectedParent, into = repo) {
    const beforeBytes = duBytes(into);
    settleCache(ctx.coldCache, [imagePath, into]);
    const t = timed({ cmd: 'sh', args: [bin, 'backup', imagePath, '--repo', into, '--json'], env, outputPath: into, statsPath: ctx.statsPath });
    if (!t.ok) return { row: failedRow('strata', phase, t.failure) };
    const summary = lastJson(t.stdout, (o) => o.type === 'summary');
    if (!summary) return { row: failedRow('strata', phase, 'the backup printed no {type:"summary"} line') };
    const row = measuredRow('strata', phase, t, {
      readBytes: summary.bytesRead,
      storedBytes: duBytes(into) - beforeBytes,
      note: `mode ${summary.mode}, tracker ${summary.tracker}, summary bytesStored ${summary.bytesStored}`,
      summary,
    });
    if (phase === 'incremental' && summary.mode !== 'incremental') row.warning = `expected an incremental, got mode ${summary.mode}`;
    else if (expectedParent && summary.parent !== expectedParent) row.warning = `parent ${summary.parent}, expected the full ${expectedParent}`;
    return { row, snapshot: summary.snapshot };
  }

  /**
   * Restores to a new file, then proves it: fsck, and the mounted tree equals the source's. `tool`
   * 'strata' restores with --no-verify, as the peers restore (they do not read back what they
   * wrote); 'strata-verified' is Strata's default, which reads the target back and checks every block.
   */
  function restore(snapshot, sourceImagePath, tool = 'strata') {
    const target = path.join(ctx.runDir, 'restore-strata.img');
    rmSync(target, { force: true });
    settleCache(ctx.coldCache, [repo]);
    const args = [bin, 'restore', snapshot, '--repo', repo, '--target', target, '--json', ...(tool === 'strata' ? ['--no-verify'] : [])];
    const t = timed({ cmd: 'sh', args, env, outputPath: target, statsPath: ctx.statsPath });
    if (!t.ok) return failedRow(tool, 'restore', t.failure);
    const verified = verifyRestore(target, sourceImagePath);
    rmSync(target, { force: true });
    return measuredRow(tool, 'restore', t, { readBytes: duBytes(repo), verified });
  }

  return { init, backup, restore, repo };
}

/**
 * Strata restores used blocks only, so free space differs from the source and `cmp` of the images
 * would fail by design; the files are what must be identical.
 */
function verifyRestore(restoredPath, sourceImagePath) {
  const check = ext4Check(restoredPath);
  if (!check.clean) return `e2fsck: ${check.detail}`;
  const diff = withMount(sourceImagePath, 'source', { readOnly: true }, (source) =>
    withMount(restoredPath, 'restored', { readOnly: true }, (restored) =>
      run('diff', ['-r', '--no-dereference', '-q', source, restored], { allowFail: true }),
    ),
  );
  if (diff.status === 0) return 'e2fsck clean, trees identical';
  const first = `${diff.stdout}${diff.stderr}`.trim().split('\n')[0];
  return `e2fsck clean, trees DIFFER: ${first}`;
}
