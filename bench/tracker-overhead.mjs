// Write overhead of the live block tracker: fio 4 KiB random writes on a loop device, untracked and
// tracked, in alternating rounds; prints IOPS of each and the tracked/untracked ratio per backend.
// Rounds alternate which run goes first; the ratio is given as the ratio of the means and as the
// median of the rounds' own ratios (steadier on a shared machine). For the bpf variants it then
// prints what the programs themselves cost: the kernel's run-time statistics (kernel.bpf_stats_enabled)
// divided by the writes, against the machine's CPU time per write in the same run.
// usage: node bench/tracker-overhead.mjs [--size-mib N] [--runtime-s N] [--rounds N] [--iodepth N]
//        [--backend bpf|bpf-armed|bpf-tracefs|bpf-strict|bpftrace|tracefs[,...]|all]
//        (root; needs fio, bpftrace for its variants and the native addon for bpf; loads TypeScript via tsx)
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, rmSync, openSync, ftruncateSync, closeSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { tsImport } from 'tsx/esm/api';

const { values } = parseArgs({
  options: {
    'size-mib': { type: 'string', default: '1024' },
    'runtime-s': { type: 'string', default: '8' },
    rounds: { type: 'string', default: '3' },
    iodepth: { type: 'string', default: '16' },
    backend: { type: 'string', default: 'all' },
  },
});
const sizeMiB = Number(values['size-mib']);
const runtimeS = Number(values['runtime-s']);
const rounds = Number(values.rounds);
const iodepth = Number(values.iodepth);
const VARIANTS = {
  // Between takes (the rounds take only at their end) only the queue program is attached.
  bpf: { backend: 'bpf' },
  // The completion program attached too, as in the 30 s after each take.
  'bpf-armed': { backend: 'bpf', bpfCompletion: 'always' },
  // The same programs on perf events (kernels without BTF).
  'bpf-tracefs': { backend: 'bpf', bpfAttach: 'tracefs' },
  // Every completion event the kernel skipped is a gap (no carry-over of the ranges before a take).
  'bpf-strict': { backend: 'bpf', carryOverMs: 0 },
  bpftrace: { backend: 'bpftrace' },
  tracefs: { backend: 'tracefs' },
};
const backends = values.backend === 'all' ? Object.keys(VARIANTS) : values.backend.split(',');
for (const [name, v] of [['size-mib', sizeMiB], ['runtime-s', runtimeS], ['rounds', rounds], ['iodepth', iodepth]]) {
  if (!Number.isInteger(v) || v < 1) {
    console.error(`tracker-overhead: --${name} must be a positive integer`);
    process.exit(2);
  }
}
if (backends.some((b) => !(b in VARIANTS))) {
  console.error(`tracker-overhead: --backend must be one or more (comma-separated) of ${Object.keys(VARIANTS).join(', ')}, or all, not ${values.backend}`);
  process.exit(2);
}
if (process.getuid?.() !== 0) {
  console.error('tracker-overhead: needs root (loop devices, tracepoints)');
  process.exit(2);
}
if (spawnSync('sh', ['-c', 'command -v fio'], { stdio: 'ignore' }).status !== 0) {
  console.error('tracker-overhead: fio is missing (Debian package fio)');
  process.exit(2);
}

const { startLiveTracker } = await tsImport('../drivers/tracker/tracker-supervisor.ts', import.meta.url);
const native = await tsImport('../native/index.ts', import.meta.url);
const { kernelOffsets, tracepointLayout, bitmapBlockShift } = await tsImport('../drivers/tracker/bpf-probe.ts', import.meta.url);
const { resolveTrackedDevice } = await tsImport('../drivers/tracker/tracked-device.ts', import.meta.url);

/**
 * Runs fio randwrite on dev and returns write IOPS. Asynchronously: the tracker's events are read
 * on this thread, and a blocked event loop would make the probe drop them.
 */
async function fioIops(dev) {
  return (await fio(dev)).iops;
}

async function fio(dev) {
  const { stdout: out } = await promisify(execFile)(
    'fio',
    [
      '--name=tracker-overhead',
      `--filename=${dev}`,
      '--rw=randwrite',
      '--bs=4k',
      '--direct=1',
      '--ioengine=libaio',
      `--iodepth=${iodepth}`,
      `--runtime=${runtimeS}`,
      '--time_based',
      '--randrepeat=1',
      '--norandommap',
      '--group_reporting',
      '--output-format=json',
    ],
    { encoding: 'utf8', maxBuffer: 64 << 20 },
  );
  const write = JSON.parse(out.slice(out.indexOf('{'))).jobs[0].write;
  return { iops: write.iops, ios: write.total_ios };
}

/** Busy and total CPU time of the whole machine so far, in clock ticks (/proc/stat). */
function cpuTicks() {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal
  return f[0] + f[1] + f[2] + f[5] + f[6] + f[7];
}

/**
 * One tracked run with the kernel's BPF statistics on: the programs' nanoseconds per write, and the
 * machine's CPU nanoseconds per write in the same run (fio, the loop device's workers, everything).
 */
async function programCost(dev, attach) {
  const d = resolveTrackedDevice(dev);
  const common = {
    diskMajor: d.diskMajor,
    diskMinor: d.diskMinor,
    startSector: d.startSector,
    endSector: d.startSector + d.sizeSectors,
    blockShift: bitmapBlockShift(d.sizeSectors),
    maxEntries: 131072,
  };
  const h =
    attach === 'btf'
      ? native.bpfTrackerOpen({ ...common, btf: kernelOffsets() })
      : native.bpfTrackerOpen({ ...common, devT: d.diskDevT, queue: tracepointLayout('block_bio_queue'), complete: tracepointLayout('block_rq_complete') });
  const statsFile = '/proc/sys/kernel/bpf_stats_enabled';
  const before = readFileSync(statsFile, 'utf8').trim();
  writeFileSync(statsFile, '1');
  try {
    const t0 = cpuTicks();
    const r = await fio(dev);
    const cpuNs = ((cpuTicks() - t0) * 1e9) / Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }));
    const x = native.bpfTrackerDrain(h);
    return {
      programNsPerWrite: (x.queueRunNs + x.completeRunNs) / r.ios,
      queueNsPerWrite: x.queueRunNs / r.ios,
      runsPerWrite: (x.queueRuns + x.completeRuns) / r.ios,
      queueNsPerRun: x.queueRunNs / x.queueRuns,
      completeNsPerRun: x.completeRunNs / x.completeRuns,
      cpuNsPerWrite: cpuNs / r.ios,
    };
  } finally {
    writeFileSync(statsFile, before);
    native.bpfTrackerClose(h);
  }
}

const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
const medianOf = (xs) => {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};
const dir = mkdtempSync(path.join(os.tmpdir(), 'strata-tracker-bench-'));
let dev;
try {
  const image = path.join(dir, 'disk.img');
  const fd = openSync(image, 'w');
  ftruncateSync(fd, sizeMiB * 1024 * 1024);
  closeSync(fd);
  dev = execFileSync('losetup', ['--find', '--show', image], { encoding: 'utf8' }).trim();
  // Warm the backing file so the first round does not pay for allocating it.
  await fioIops(dev);
  console.log(`fio randwrite 4k, iodepth ${iodepth}, ${runtimeS} s per run, ${rounds} rounds, loop device on ${sizeMiB} MiB sparse file, ${os.cpus().length} CPUs`);
  for (const backend of backends) {
    const plain = [];
    const tracked = [];
    let marked = 0;
    const gaps = [];
    for (let r = 0; r < rounds; r++) {
      // Odd rounds run tracked first, so a drifting machine does not favour one side.
      if (r % 2 === 0) plain.push(await fioIops(dev));
      const tracker = await startLiveTracker(dev, VARIANTS[backend]);
      try {
        tracked.push(await fioIops(dev));
        const take = await tracker.takeAndReset();
        marked = Math.max(marked, take.changes.markedBytes);
        if (take.gapReason) gaps.push(take.gapReason);
      } finally {
        await tracker.close();
      }
      if (r % 2 === 1) plain.push(await fioIops(dev));
    }
    const ratio = mean(tracked) / mean(plain);
    const median = medianOf(tracked.map((t, i) => t / plain[i]));
    console.log(
      `${backend.padEnd(17)} untracked ${mean(plain).toFixed(0)} IOPS [${plain.map((x) => x.toFixed(0)).join(' ')}]  ` +
        `tracked ${mean(tracked).toFixed(0)} IOPS [${tracked.map((x) => x.toFixed(0)).join(' ')}]  ` +
        `ratio ${ratio.toFixed(3)} (overhead ${((1 - ratio) * 100).toFixed(1)} %), median of rounds ${median.toFixed(3)}  marked ${(marked / 1048576).toFixed(0)} MiB` +
        (gaps.length ? `  GAPS: ${gaps.length} (${gaps[0]})` : '  no gaps'),
    );
    const attach = backend === 'bpf-tracefs' ? 'tracefs' : backend.startsWith('bpf') && !backend.startsWith('bpftrace') ? 'btf' : undefined;
    if (attach) {
      const c = await programCost(dev, attach);
      console.log(
        `${''.padEnd(17)} programs (${attach} attachment): ${c.programNsPerWrite.toFixed(0)} ns per write (${c.runsPerWrite.toFixed(2)} runs; ` +
          `queue ${c.queueNsPerRun.toFixed(0)} ns, completion ${c.completeNsPerRun.toFixed(0)} ns a run) of ` +
          `${(c.cpuNsPerWrite / 1000).toFixed(1)} µs CPU per write = ${((c.programNsPerWrite / c.cpuNsPerWrite) * 100).toFixed(2)} %` +
          (attach === 'tracefs' ? ' (plus the perf record the kernel formats for each event, not counted here)' : ''),
      );
      console.log(
        `${''.padEnd(17)} between takes (queue program only): ${c.queueNsPerWrite.toFixed(0)} ns per write = ${((c.queueNsPerWrite / c.cpuNsPerWrite) * 100).toFixed(2)} %`,
      );
    }
  }
} finally {
  if (dev) spawnSync('losetup', ['-d', dev]);
  rmSync(dir, { recursive: true, force: true });
}
