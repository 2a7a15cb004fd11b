// `npm test`: installs the Debian tools the suites need, then runs lint, typecheck, every vitest
// suite and the Playwright end-to-end suite in Chromium, and ends with one line
// "N passed, N failed, N skipped" summing them all (CI reads it).
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { ensureTools, TEST_TOOLS } from './tools.mjs';

const root = path.resolve(import.meta.dirname, '..');
const resultsDir = path.join(root, '.test-results');
mkdirSync(resultsDir, { recursive: true });

let passed = 0;
let failed = 0;
let skipped = 0;

function step(name, cmd, args) {
  console.log(`\n=== ${name}: ${cmd} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' });
  if (r.status === 0) passed++;
  else {
    failed++;
    console.log(`=== ${name} failed (exit ${r.status ?? r.signal})`);
  }
}

ensureTools(TEST_TOOLS);

const built = ['dist/cli/main.js', 'native/build/Release/strata_native.node', 'dist/renderer/index.html', 'dist/electron/preload.cjs'];
if (built.some((f) => !existsSync(path.join(root, f)))) {
  step('build', 'npm', ['run', 'build']);
}
step('lint', 'npx', ['eslint', '--max-warnings=0', '.']);
step('typecheck', 'npx', ['tsc', '-p', 'tsconfig.json', '--noEmit']);
step('typecheck (renderer)', 'npx', ['tsc', '-p', 'renderer/tsconfig.json', '--noEmit']);
step('typecheck (renderer bench)', 'npx', ['tsc', '-p', 'renderer/bench/tsconfig.json', '--noEmit']);

const vitestJson = path.join(resultsDir, 'vitest.json');
console.log('\n=== vitest');
const v = spawnSync('npx', ['vitest', 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${vitestJson}`], {
  cwd: root,
  stdio: 'inherit',
});
if (existsSync(vitestJson)) {
  const report = JSON.parse(readFileSync(vitestJson, 'utf8'));
  passed += report.numPassedTests ?? 0;
  failed += report.numFailedTests ?? 0;
  skipped += (report.numPendingTests ?? 0) + (report.numTodoTests ?? 0);
  // A suite that failed to load has no tests to count; count it as one failure.
  for (const file of report.testResults ?? []) {
    if (file.status === 'failed' && (file.assertionResults ?? []).length === 0) failed++;
  }
} else {
  failed++;
}
if (v.status !== 0 && failed === 0) failed++;

// The browser suite: Playwright in Debian's Chromium against a real `strata console`.
const playwrightJson = path.join(resultsDir, 'playwright.json');
console.log('\n=== playwright (e2e/)');
const failedBefore = failed;
const p = spawnSync('npx', ['playwright', 'test'], { cwd: root, stdio: 'inherit' });
if (existsSync(playwrightJson)) {
  const report = JSON.parse(readFileSync(playwrightJson, 'utf8'));
  passed += (report.stats?.expected ?? 0) + (report.stats?.flaky ?? 0);
  failed += report.stats?.unexpected ?? 0;
  skipped += report.stats?.skipped ?? 0;
  // Every skip says why, here as well as in the report.
  const walk = (suite) => {
    for (const spec of suite.specs ?? []) {
      for (const t of spec.tests ?? []) {
        if (t.status === 'skipped') {
          const why = (t.annotations ?? []).find((a) => a.type === 'skip')?.description ?? 'no reason given';
          console.log(`skipped: ${spec.title} — ${why}`);
        }
      }
    }
    for (const child of suite.suites ?? []) walk(child);
  };
  for (const suite of report.suites ?? []) walk(suite);
  for (const e of report.errors ?? []) {
    console.log(`playwright error: ${e.message ?? JSON.stringify(e)}`);
    failed++;
  }
} else {
  failed++;
}
if (p.status !== 0 && failed === failedBefore) failed++;

const summary = `${passed} passed, ${failed} failed, ${skipped} skipped`;
writeFileSync(path.join(resultsDir, 'summary.txt'), summary + '\n');
console.log('\n' + summary);
process.exit(failed === 0 ? 0 : 1);
