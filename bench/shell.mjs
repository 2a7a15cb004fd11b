// Running tools and measuring them: wall time, bytes the kernel really read from disk, peak memory,
// and sizes on disk. Every timed step uses `timed()` so all tools are measured the same way.
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync, statSync, writeFileSync, closeSync, openSync } from 'node:fs';

const MAX_OUTPUT_BYTES = 256 * 1024 * 1024;

/** Runs a command; throws with its stderr tail unless `allowFail`. */
export function run(cmd, args, { allowFail = false, env, input, stdinPath, cwd } = {}) {
  const stdinFd = stdinPath ? openSync(stdinPath, 'r') : undefined;
  try {
    const r = spawnSync(cmd, args, {
      cwd,
      env: env ? { ...process.env, ...env } : process.env,
      input,
      stdio: [stdinFd ?? (input === undefined ? 'ignore' : 'pipe'), 'pipe', 'pipe'],
      maxBuffer: MAX_OUTPUT_BYTES,
      encoding: 'utf8',
    });
    const failed = r.error || r.status !== 0;
    if (failed && !allowFail) throw new Error(`${cmd} ${args.join(' ')} failed: ${describeFailure(r)}`);
    return r;
  } finally {
    if (stdinFd !== undefined) closeSync(stdinFd);
  }
}

export function describeFailure(r) {
  if (r.error) return r.error.message;
  const tail = `${r.stderr ?? ''}`.trim().split('\n').slice(-3).join(' | ');
  return `exit ${r.status ?? r.signal}${tail ? `: ${tail}` : ''}`;
}

export function sh(script, options) {
  return run('bash', ['-o', 'pipefail', '-c', script], options);
}

export function quote(s) {
  return `'${String(s).replaceAll("'", "'\\''")}'`;
}

/**
 * Drops the page cache so every tool reads from disk. Returns false where the kernel refuses
 * (containers without /proc/sys write access); the caller then warms the inputs instead.
 */
export function dropCaches() {
  run('sync', []);
  try {
    writeFileSync('/proc/sys/vm/drop_caches', '3');
    return true;
  } catch {
    return false;
  }
}

/** Reads files once, untimed, so that in a warm-cache run every tool starts equally warm. */
export function warm(paths) {
  for (const p of paths) sh(`find ${quote(p)} -type f -exec cat {} + > /dev/null`);
}

/** Before each timed step: a cold start where the kernel allows it, an equally warm one otherwise. */
export function settleCache(coldCache, inputPaths) {
  if (coldCache) dropCaches();
  else warm(inputPaths);
}

/**
 * Times one tool run. The clock stops only after its output is flushed to disk (`sync -f`):
 * restic and a sound repository fsync, zstd does not, and the page cache would hide the difference.
 */
export function timed({ cmd, args, env, stdinPath, outputPath, statsPath }) {
  const startMs = performance.now();
  const r = run('/usr/bin/time', ['-f', '%I %M', '-o', statsPath, '--', cmd, ...args], { env, stdinPath, allowFail: true });
  if (!r.error && r.status === 0 && outputPath) run('sync', ['-f', outputPath]);
  const wallMs = performance.now() - startMs;
  const [inputBlocks, peakRssKiB] = readStats(statsPath);
  return {
    ok: !r.error && r.status === 0,
    failure: r.error || r.status !== 0 ? describeFailure(r) : undefined,
    stdout: r.stdout ?? '',
    stderr: r.stderr ?? '',
    wallMs,
    // getrusage counts block input in 512-byte units whatever the device's sector size.
    diskReadBytes: inputBlocks === undefined ? undefined : inputBlocks * 512,
    peakRssBytes: peakRssKiB === undefined ? undefined : peakRssKiB * 1024,
  };
}

function readStats(statsPath) {
  try {
    // GNU time writes "Command exited with non-zero status N" first when the command fails.
    const last = readFileSync(statsPath, 'utf8').trim().split('\n').pop();
    const [inputs, rss] = last.split(/\s+/).map(Number);
    return [Number.isFinite(inputs) ? inputs : undefined, Number.isFinite(rss) ? rss : undefined];
  } catch {
    return [undefined, undefined];
  } finally {
    rmSync(statsPath, { force: true });
  }
}

/** Apparent size in bytes (`du -sb`): what the data occupies, independent of the host's block size. */
export function duBytes(path) {
  const r = run('du', ['-sb', path], { allowFail: true });
  return r.status === 0 ? Number(r.stdout.split(/\s/)[0]) : 0;
}

export function fileBytes(path) {
  return statSync(path).size;
}
