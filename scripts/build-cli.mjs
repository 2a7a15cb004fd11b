// Part of `npm run build:ts`: bundles the command line (cli/main.ts and everything it imports, npm
// packages included) into dist/cli/strata.mjs, and the compute pool's worker into
// dist/cli/compute-worker.js beside it, where the bundled pool looks for it. bin/strata runs the
// bundle: Node then resolves and reads two files instead of ~200 (zod alone is 99), which took a
// quarter of a second of every command's start on the bench machine. tsc's per-file output stays
// the reference build (tests, the Electron main process, and bin/strata whenever the bundle is
// older than tsc's last build). Native addons stay external: sqlite3 and zstd-napi load their .node
// files relative to their packages; ours is found by walking up from the bundle, as from dist/native.
import { build } from 'esbuild';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
const outdir = path.join(root, 'dist', 'cli');

const common = {
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  logLevel: 'warning',
  sourcemap: 'linked',
  legalComments: 'none',
  // Whitespace and syntax only: names stay, so stack traces stay readable even without the map.
  minifyWhitespace: true,
  minifySyntax: true,
  // Addons (and packages only some optional path needs) load from node_modules at run time.
  external: ['sqlite3', 'zstd-napi', 'bufferutil', 'utf-8-validate', 'electron', 'tsx', 'tsx/*'],
  // Bundled CommonJS packages call require(); ESM output has none of its own.
  banner: { js: "import { createRequire as __strataRequire } from 'node:module'; const require = __strataRequire(import.meta.url);" },
};

await Promise.all([
  build({ ...common, entryPoints: [path.join(root, 'cli', 'main.ts')], outfile: path.join(outdir, 'strata.mjs') }),
  build({ ...common, entryPoints: [path.join(root, 'drivers', 'compute', 'compute-worker.ts')], outfile: path.join(outdir, 'compute-worker.js') }),
]);
