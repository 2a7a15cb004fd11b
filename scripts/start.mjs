// `npm start`: the desktop app, when this machine has the Electron binary. Without it, one sentence
// pointing to `npm run console` (the same console in a browser) and exit status 1.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
const electronPackage = path.join(root, 'node_modules', 'electron');
const main = path.join(root, 'dist', 'electron', 'main.mjs');

/**
 * The Electron executable, or null. Read from the package's path.txt rather than by require('electron'),
 * which tries to download a missing binary from outside the npm registry and would hang offline.
 */
function electronBinary() {
  const pathFile = path.join(electronPackage, 'path.txt');
  if (!existsSync(pathFile)) return null;
  const relative = readFileSync(pathFile, 'utf8').trim();
  const dist = process.env.ELECTRON_OVERRIDE_DIST_PATH || path.join(electronPackage, 'dist');
  const binary = path.join(dist, relative);
  return existsSync(binary) ? binary : null;
}

const binary = electronBinary();
if (binary === null) {
  console.error('The Electron binary is not installed on this machine (its installer downloads it from outside the npm registry); run `npm run console` for the same console in a browser.');
  process.exit(1);
}
if (!existsSync(main)) {
  console.error(`${path.relative(root, main)} is missing; run \`npm run build\` first.`);
  process.exit(1);
}

const child = spawn(binary, [main, ...process.argv.slice(2)], { cwd: root, stdio: 'inherit' });
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
