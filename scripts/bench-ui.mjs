// `npm run bench:ui`: builds the UI bench page (renderer/bench), serves it on loopback, runs it in
// Debian's Chromium through Playwright and prints its performance-mark figures against the targets
// of issue 5 part 8. Exits non-zero when it cannot run; `--strict` also fails on a missed target.
import { createServer } from 'node:http';
import { readFile, stat } from 'node:fs/promises';
import { availableParallelism, loadavg } from 'node:os';
import path from 'node:path';
import { build } from 'vite';
import tailwindcss from '@tailwindcss/vite';
import { chromium } from '@playwright/test';

const projectRoot = path.resolve(import.meta.dirname, '..');
const benchRoot = path.join(projectRoot, 'renderer', 'bench');
const outDir = path.join(projectRoot, 'dist', 'renderer-bench');
const CHROMIUM = process.env.STRATA_CHROMIUM ?? '/usr/bin/chromium';
const args = new Set(process.argv.slice(2));
const strict = args.has('--strict');
const dprArg = process.argv.find((a) => a.startsWith('--dpr='));
const deviceScaleFactor = dprArg ? Number(dprArg.slice(6)) : 1;
// `--screenshot=file.png`: no measuring; a picture of both components on the bench's data.
const screenshotArg = process.argv.find((a) => a.startsWith('--screenshot='));
// `--cold-runs=N`: cold-page first paints to take, each in a browser of its own (the full run's
// included), reported as their median: one cold sample on a shared machine measures the scheduler.
const coldRunsArg = process.argv.find((a) => a.startsWith('--cold-runs='));
const coldRuns = Math.max(1, coldRunsArg ? Math.floor(Number(coldRunsArg.slice('--cold-runs='.length))) || 1 : 5);

const MIME = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.css': 'text/css', '.map': 'application/json', '.svg': 'image/svg+xml' };

async function buildPage() {
  await build({
    configFile: false,
    root: benchRoot,
    base: './',
    logLevel: 'warn',
    plugins: [tailwindcss()],
    oxc: { jsx: { runtime: 'automatic' } },
    // A production build, as the console ships: React's development checks would distort the figures.
    mode: 'production',
    build: { outDir, emptyOutDir: true, sourcemap: false, chunkSizeWarningLimit: 4000, rollupOptions: { input: path.join(benchRoot, 'index.html') } },
  });
}

/** A static server for outDir on 127.0.0.1 and a free port. */
function serve() {
  const server = createServer(async (req, res) => {
    try {
      const url = new URL(req.url ?? '/', 'http://localhost');
      const rel = decodeURIComponent(url.pathname === '/' ? '/index.html' : url.pathname);
      const file = path.resolve(outDir, `.${rel}`);
      if (!file.startsWith(outDir + path.sep) || !(await stat(file)).isFile()) throw new Error('not found');
      res.writeHead(200, { 'content-type': MIME[path.extname(file)] ?? 'application/octet-stream', 'cache-control': 'no-store' });
      res.end(await readFile(file));
    } catch {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found');
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}

/** One more cold-page first paint, in a browser launched for it alone (no code run or cached before). */
async function coldSample(url) {
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 }, deviceScaleFactor });
    const problems = [];
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
    await page.goto(url);
    await page.waitForFunction(() => globalThis.__benchResult !== undefined || globalThis.__benchError !== undefined, undefined, { timeout: 120_000, polling: 100 });
    const { result, error } = await page.evaluate(() => ({ result: globalThis.__benchResult, error: globalThis.__benchError }));
    if (error || problems.length > 0) throw new Error(`the cold page failed: ${error ?? problems.join('\n')}`);
    return result.rows[0].value;
  } finally {
    await browser.close();
  }
}

function pass(row) {
  if (row.target === undefined) return '';
  return (row.higherIsBetter ? row.value >= row.target : row.value <= row.target) ? 'ok' : 'MISSED';
}

function printTable(rows, environment) {
  const fmt = (row) => `${row.value.toFixed(row.unit === 'fps' ? 1 : 2)} ${row.unit}`;
  const target = (row) => (row.target === undefined ? '' : `${row.higherIsBetter ? '≥' : '≤'} ${row.unit === 'fps' ? row.target : row.target.toFixed(1)} ${row.unit}`);
  const table = [['measure', 'value', 'target', '', 'note'], ...rows.map((r) => [r.name, fmt(r), target(r), pass(r), r.note ?? ''])];
  const widths = table[0].map((_, c) => Math.max(...table.map((line) => line[c].length)));
  const line = (cells) => `| ${cells.map((cell, c) => cell.padEnd(widths[c])).join(' | ')} |`;
  console.log(line(table[0]));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const cells of table.slice(1)) console.log(line(cells));
  console.log(`\n${environment.userAgent}; device pixel ratio ${environment.devicePixelRatio}; ${environment.hardwareConcurrency} logical CPUs`);
}

/** Before measuring: the components answer to the roles and names the e2e tests select by. */
async function checkRoles(page, url) {
  await page.goto(url);
  const must = async (locator, what) => {
    try {
      await locator.first().waitFor({ timeout: 10_000 });
    } catch {
      throw new Error(`the bench page shows no ${what}`);
    }
  };
  await must(page.getByRole('img', { name: /Disk map/ }), 'disk-map canvas (role img, named)');
  for (const name of ['Zoom in', 'Zoom out', 'Reset zoom']) await must(page.getByRole('button', { name, exact: true }), `"${name}" button`);
  await must(page.getByRole('status'), 'status line');
  await must(page.getByRole('list', { name: 'Legend' }), 'legend');
  await must(page.getByRole('button', { name: /^Go to volume 2/ }), 'partition strip button');
  await must(page.getByRole('tree', { name: 'Snapshots' }), 'snapshot tree');
  await must(page.getByRole('treeitem', { selected: true }), 'selected tree item');
  await must(page.getByRole('button', { name: /^Restore snapshot/ }), 'Restore button');
  // Keyboard: focus the map, zoom in, and the status line names a cell.
  await page.getByRole('img', { name: /Disk map/ }).focus();
  await page.keyboard.press('+');
  const status = await page.getByRole('status').textContent();
  if (!/^Bytes .* used /.test(status ?? '')) throw new Error(`the status line does not describe the cursor cell: "${status}"`);
}

async function main() {
  const started = Date.now();
  await buildPage();
  console.log(`built the bench page in ${((Date.now() - started) / 1000).toFixed(1)} s → ${path.relative(projectRoot, outDir)}`);
  const server = await serve();
  const { port } = server.address();
  let browser;
  try {
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 }, deviceScaleFactor });
    const problems = [];
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(`console error: ${message.text()}`);
    });
    if (screenshotArg) {
      await page.goto(`http://127.0.0.1:${port}/index.html?view`);
      await page.getByRole('img', { name: /Disk map/ }).hover({ position: { x: 500, y: 120 } });
      await page.getByRole('treeitem').first().waitFor();
      const file = path.resolve(screenshotArg.slice('--screenshot='.length));
      await page.screenshot({ path: file, fullPage: true });
      if (problems.length > 0) throw new Error(problems.join('\n'));
      console.log(`screenshot: ${file}`);
      return 0;
    }
    await page.goto(`http://127.0.0.1:${port}/index.html`);
    await page.waitForFunction(() => globalThis.__benchResult !== undefined || globalThis.__benchError !== undefined, undefined, { timeout: 300_000, polling: 250 });
    const { result, error } = await page.evaluate(() => ({ result: globalThis.__benchResult, error: globalThis.__benchError }));
    if (error) throw new Error(`the bench page failed: ${error}`);
    if (problems.length > 0) throw new Error(`the bench page reported errors (a CSP violation counts):\n${problems.join('\n')}`);
    // After measuring, so that the cold row meets a browser that has never run the page's code.
    await checkRoles(page, `http://127.0.0.1:${port}/index.html?view`);
    const coldRow = result.rows.find((r) => r.name.startsWith('DiskMap first paint, cold page'));
    if (coldRow && coldRuns > 1) {
      const samples = [coldRow.value];
      for (let i = 1; i < coldRuns; i++) samples.push(await coldSample(`http://127.0.0.1:${port}/index.html?cold`));
      const sorted = [...samples].sort((a, b) => a - b);
      coldRow.name = `DiskMap first paint, cold page (first React render at all; median of ${coldRuns} fresh browsers)`;
      coldRow.value = sorted[Math.floor((sorted.length - 1) / 2)];
      coldRow.note = `each: ${samples.map((v) => v.toFixed(1)).join(', ')} ms`;
    }
    if (problems.length > 0) throw new Error(`the view page reported errors:\n${problems.join('\n')}`);
    printTable(result.rows, result.environment);
    // Frame figures on a shared machine measure the machine as much as the code.
    const [load1] = loadavg();
    const cores = availableParallelism();
    if (load1 > cores) console.log(`\nBUSY MACHINE: load average ${load1.toFixed(1)} on ${cores} cores while measuring; frame rates and p95 times are pessimistic, medians are the fairer read.`);
    const missed = result.rows.filter((r) => pass(r) === 'MISSED');
    if (missed.length > 0) console.log(`\n${missed.length} target(s) missed${strict ? '' : ' (pass --strict to fail on that)'}`);
    return strict && missed.length > 0 ? 1 : 0;
  } finally {
    await browser?.close();
    server.close();
  }
}

main().then(
  (code) => process.exit(code),
  (error) => {
    console.error(`bench:ui cannot run: ${error.message}`);
    process.exit(2);
  },
);
