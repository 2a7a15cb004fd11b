// `npm run build:electron`: bundles the Electron main process (dist/electron/main.mjs, ESM) and the
// preload (dist/electron/preload.cjs, one CommonJS file, as a sandboxed preload must be) with esbuild.
// Fast and offline: it needs neither the Electron binary nor a network.
//
// The main bundle holds only electron/ code. The agent it embeds (agent/, agent-core/, drivers/,
// native/) stays external and is loaded from tsc's output beside it (dist/agent/...), because that
// code finds its worker threads, native addon and package.json relative to its own file. npm
// packages stay external too (node_modules ships with the app; sqlite3 and zstd-napi are addons).
import { build } from 'esbuild';
import { readFileSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
const outArg = process.argv.indexOf('--outdir');
const outdir = path.resolve(outArg > 0 ? process.argv[outArg + 1] : path.join(root, 'dist', 'electron'));
const electronDir = path.join(root, 'electron');

/** Imports that leave electron/ keep their relative path: from dist/electron/ it names tsc's output. */
const agentLayersExternal = {
  name: 'agent-layers-external',
  setup(b) {
    b.onResolve({ filter: /^\.\.?\// }, (args) => {
      if (!args.importer.startsWith(electronDir + path.sep)) return undefined;
      const target = path.resolve(path.dirname(args.importer), args.path);
      if (target.startsWith(electronDir + path.sep)) return undefined;
      return { path: path.relative(electronDir, target).split(path.sep).join('/').replace(/^(?!\.)/, './'), external: true };
    });
  },
};

const common = { bundle: true, logLevel: 'warning', sourcemap: 'linked', legalComments: 'none', target: 'node22' };

await Promise.all([
  build({
    ...common,
    entryPoints: [path.join(electronDir, 'main.ts')],
    outfile: path.join(outdir, 'main.mjs'),
    platform: 'node',
    format: 'esm',
    packages: 'external',
    plugins: [agentLayersExternal],
  }),
  build({
    ...common,
    entryPoints: [path.join(electronDir, 'preload.ts')],
    outfile: path.join(outdir, 'preload.cjs'),
    // A sandboxed preload gets a require() that knows 'electron' and nothing else: everything else is inlined.
    platform: 'node',
    format: 'cjs',
    external: ['electron'],
    target: 'chrome140',
  }),
]);

const preload = readFileSync(path.join(outdir, 'preload.cjs'), 'utf8');
const required = [...preload.matchAll(/\brequire\(\s*["']([^"']+)["']\s*\)/g)].map((m) => m[1]);
const foreign = required.filter((name) => name !== 'electron');
if (foreign.length > 0) {
  console.error(`build-electron: the preload requires ${foreign.join(', ')}; a sandboxed preload may require only 'electron'.`);
  process.exit(1);
}
