// `npm run console`: the console in a browser with its embedded agent, on the default state
// directory and a default local repository made on first start. Arguments after `--` go to
// `strata console` (for example `npm run console -- --listen 127.0.0.1:8080`).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { ensureTools } from './tools.mjs';

const root = path.resolve(import.meta.dirname, '..');

// The demo disk the console offers is made with these; install them when this user may.
const DEMO_TOOLS = { sfdisk: 'fdisk', 'mkfs.ext4': 'e2fsprogs', debugfs: 'e2fsprogs', 'mkfs.fat': 'dosfstools', mcopy: 'mtools' };
if (process.getuid?.() === 0) ensureTools(DEMO_TOOLS);

if (!existsSync(path.join(root, 'dist', 'cli', 'main.js')) || !existsSync(path.join(root, 'dist', 'renderer', 'index.html'))) {
  const r = spawnSync('npm', ['run', 'build'], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}

const child = spawn(path.join(root, 'bin', 'strata'), ['console', ...process.argv.slice(2)], { stdio: 'inherit' });
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
