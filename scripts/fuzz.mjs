// `npm run fuzz`: mutates real images of every partition table and filesystem Strata reads and runs
// mapDisk and each image's own parser on them. Reports cases, crashes (anything but a typed error or a
// broken map) and hangs (a case over its time limit), and exits non-zero on any. Needs root (loop devices, mkfs).
//
//   node scripts/fuzz.mjs [--cases 100000] [--seed 1] [--workers 1] [--case-timeout-ms 5000] [--case N]
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();

const engineUrl = new URL('../drivers/disk/fuzz-engine.ts', import.meta.url).href;

if (!isMainThread) {
  // Worker: loads the corpus into memory, runs its share of the cases, reports each start and finding.
  const { loadImages, runFuzzCase } = await import(engineUrl);
  const { specs, seed, from, to, stride } = workerData;
  const images = await loadImages(specs);
  for (let i = from; i < to; i += stride) {
    parentPort.postMessage({ type: 'start', caseIndex: i });
    try {
      const r = await runFuzzCase(images, seed, i);
      parentPort.postMessage({ type: 'done', caseIndex: i, result: r });
    } catch (err) {
      parentPort.postMessage({ type: 'crash', caseIndex: i, image: specs[i % specs.length].name, error: err instanceof Error ? `${err.name}: ${err.message}\n${err.stack ?? ''}` : String(err) });
    }
  }
  parentPort.postMessage({ type: 'finished' });
} else {
  await main();
}

function parseArgs(argv) {
  const o = { cases: 100_000, seed: 1, workers: 1, caseTimeoutMs: 5000, only: null };
  for (let i = 0; i < argv.length; i++) {
    const v = argv[i + 1];
    if (argv[i] === '--cases') o.cases = Number(v);
    else if (argv[i] === '--seed') o.seed = Number(v);
    else if (argv[i] === '--workers') o.workers = Number(v);
    else if (argv[i] === '--case-timeout-ms') o.caseTimeoutMs = Number(v);
    else if (argv[i] === '--case') o.only = Number(v);
    else throw new Error(`unknown option ${argv[i]}`);
    i++;
  }
  return o;
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  if (process.getuid?.() !== 0) {
    console.error('fuzz: needs root (loop devices, mkfs, LVM metadata)');
    process.exit(2);
  }
  const { TEST_TOOLS, ensureTools } = await import('./tools.mjs');
  ensureTools(TEST_TOOLS);
  const { buildFuzzCorpus } = await import(new URL('../drivers/disk/fuzz-corpus.ts', import.meta.url).href);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'strata-fuzz-'));
  const cleanup = [() => rmSync(dir, { recursive: true, force: true })];
  let exitCode = 0;
  try {
    const started = performance.now();
    const specs = buildFuzzCorpus(dir, cleanup);
    console.log(`fuzz: ${specs.length} images (${specs.map((s) => s.name).join(', ')}) built in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    const from = o.only ?? 0;
    const to = o.only === null ? o.cases : o.only + 1;
    const report = await runWorkers(specs, o, from, to);
    const seconds = (performance.now() - started) / 1000;
    console.log('');
    console.log('image      cases  mapDisk mapped/warned/refused  reader mapped/refused');
    for (const [name, s] of Object.entries(report.perImage)) {
      console.log(`${name.padEnd(10)} ${String(s.cases).padStart(6)}  ${`${s.mapped}/${s.warned}/${s.refused}`.padStart(28)}  ${`${s.readerMapped}/${s.readerRefused}`.padStart(20)}`);
    }
    console.log('');
    console.log(`fuzz: ${report.cases} cases, ${report.crashes.length} crashes, ${report.hangs.length} hangs, ${seconds.toFixed(1)} s (seed ${o.seed})`);
    for (const c of report.crashes.slice(0, 20)) console.log(`CRASH case ${c.caseIndex} (${c.image}): ${c.error}`);
    for (const h of report.hangs) console.log(`HANG case ${h.caseIndex} (${h.image}): over ${o.caseTimeoutMs} ms`);
    if (report.crashes.length > 0 || report.hangs.length > 0) {
      console.log(`replay one with: node scripts/fuzz.mjs --seed ${o.seed} --case <N>`);
      exitCode = 1;
    }
  } finally {
    for (const fn of cleanup) {
      try {
        fn();
      } catch {
        // best effort: a busy loop device must not hide the run's result
      }
    }
  }
  process.exit(exitCode);
}

/**
 * Runs cases [from, to) on o.workers workers, case i on worker i % workers. A worker whose current
 * case passes the time limit is terminated, the case recorded as a hang, and a new worker resumes after it.
 */
function runWorkers(specs, o, from, to) {
  const report = { cases: 0, crashes: [], hangs: [], perImage: {} };
  for (const s of specs) report.perImage[s.name] = { cases: 0, mapped: 0, warned: 0, refused: 0, readerMapped: 0, readerRefused: 0 };
  const stride = Math.max(1, Math.min(o.workers, to - from));
  const seen = new Set();
  let lastPrinted = performance.now();
  const settle = () => {
    // A case seen to finish after all was slow, not hung (the watchdog reads a message late).
    report.hangs = report.hangs.filter((h) => !seen.has(h.caseIndex));
    report.cases += report.hangs.length;
    return report;
  };
  return new Promise((resolve) => {
    let running = 0;
    const start = (first) => {
      if (first >= to) return;
      running++;
      const state = { current: -1, since: performance.now(), done: false };
      const worker = new Worker(new URL(import.meta.url), { workerData: { specs, seed: o.seed, from: first, to, stride } });
      const finish = () => {
        if (state.done) return;
        state.done = true;
        clearInterval(watchdog);
        running--;
        if (running === 0) resolve(settle());
      };
      const watchdog = setInterval(() => {
        if (state.current < 0 || performance.now() - state.since < o.caseTimeoutMs) return;
        const hung = state.current;
        report.hangs.push({ caseIndex: hung, image: specs[hung % specs.length].name });
        void worker.terminate();
        // The successor first, so that the count of running workers never touches zero in between.
        start(hung + stride);
        finish();
      }, 250);
      worker.on('message', (m) => {
        if (m.type === 'start') {
          state.current = m.caseIndex;
          state.since = performance.now();
        } else if (m.type === 'done') {
          // A worker stopped for a hang may have run past the case the watchdog saw: its successor
          // starts again after that case, so a case can be reported twice. Count each once.
          if (seen.has(m.caseIndex)) return;
          seen.add(m.caseIndex);
          report.cases++;
          const s = report.perImage[m.result.image];
          s.cases++;
          s[m.result.disk]++;
          if (m.result.reader === 'mapped') s.readerMapped++;
          else s.readerRefused++;
          if (performance.now() - lastPrinted > 10_000) {
            lastPrinted = performance.now();
            console.log(`fuzz: ${report.cases} cases, ${report.crashes.length} crashes, ${report.hangs.length} hangs`);
          }
        } else if (m.type === 'crash') {
          if (seen.has(m.caseIndex)) return;
          seen.add(m.caseIndex);
          report.cases++;
          report.perImage[m.image].cases++;
          report.crashes.push(m);
        } else if (m.type === 'finished') {
          state.current = -1;
          void worker.terminate();
          finish();
        }
      });
      worker.on('error', (err) => {
        // An exception that escaped the case loop: count it against the current case and go on after it.
        if (state.current >= 0) report.crashes.push({ caseIndex: state.current, image: specs[state.current % specs.length].name, error: String(err?.stack ?? err) });
        const resume = state.current >= 0 ? state.current + stride : to;
        start(resume);
        finish();
      });
    };
    for (let w = 0; w < stride; w++) start(from + w);
  });
}
