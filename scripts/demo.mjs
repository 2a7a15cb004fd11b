// `npm run console`: until the desktop console lands (issue 4), the main job is a guided demo on a
// disk image made on the spot: inspect it, back it up, change it, back it up again, list the
// snapshot tree, verify, and restore — all with the real CLI into a default local repository.
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync, existsSync, appendFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
const base = process.env.STRATA_DEMO_DIR ?? path.join(process.env.XDG_STATE_HOME ?? path.join(os.homedir(), '.local', 'state'), 'strata-demo');
const image = path.join(base, 'demo-disk.img');
const repo = path.join(base, 'repository');
const env = { ...process.env, STRATA_STATE_DIR: path.join(base, 'state') };

function step(title, args) {
  console.log(`\n$ strata ${args.join(' ')}`);
  const r = spawnSync(path.join(root, 'bin', 'strata'), args, { stdio: 'inherit', env });
  if (r.status !== 0) {
    console.error(`\nThe demo stopped: "${title}" failed (exit ${r.status}).`);
    process.exit(r.status ?? 1);
  }
}

function makeDemoImage() {
  // mkfs.ext4 -d fills the filesystem from a directory: no mount, no root needed.
  const content = path.join(base, 'content');
  rmSync(content, { recursive: true, force: true });
  mkdirSync(path.join(content, 'documents'), { recursive: true });
  mkdirSync(path.join(content, 'photos'), { recursive: true });
  for (let i = 0; i < 50; i++) {
    writeFileSync(path.join(content, 'documents', `report-${i}.txt`), `Quarterly report ${i}\n`.repeat(400 + i * 20));
  }
  for (let i = 0; i < 6; i++) {
    const buf = Buffer.alloc((2 + i) << 20);
    for (let o = 0; o < buf.length; o += 4) buf.writeUInt32LE(((o * 2654435761) ^ (i * 40503)) >>> 0, o);
    writeFileSync(path.join(content, 'photos', `photo-${i}.raw`), buf);
  }
  rmSync(image, { force: true });
  const r = spawnSync('mkfs.ext4', ['-q', '-F', '-L', 'demo', '-d', content, image, '128M'], { stdio: 'inherit' });
  if (r.status !== 0) {
    console.error('mkfs.ext4 is needed for the demo image (Debian package e2fsprogs).');
    process.exit(1);
  }
  return content;
}

console.log(`Strata demo in ${base}\n(a 128 MiB ext4 image with documents and photos, backed up into a local repository)`);
mkdirSync(base, { recursive: true });
const content = makeDemoImage();
step('inspect', ['inspect', image]);
if (!existsSync(path.join(repo, 'config'))) step('init', ['init', '--repo', repo]);
step('first backup', ['backup', image, '--repo', repo, '--tag', 'demo']);

// Change a little, in place (debugfs writes into the image without mounting it): replace one
// document with a longer version and add a new one.
const report = path.join(content, 'documents', 'report-3.txt');
appendFileSync(report, 'Revised figures.\n'.repeat(100));
const note = path.join(content, 'documents', 'new-note.txt');
writeFileSync(note, 'A new note.\n'.repeat(500));
for (const cmd of ['rm /documents/report-3.txt', `write ${report} /documents/report-3.txt`, `write ${note} /documents/new-note.txt`]) {
  spawnSync('debugfs', ['-w', '-R', cmd, image], { stdio: 'ignore' });
}
step('second backup', ['backup', image, '--repo', repo]);
step('snapshots', ['snapshots', '--repo', repo]);
step('verify', ['verify', '--repo', repo, '--read-data']);
step('restore', ['restore', 'latest', '--repo', repo, '--target', path.join(base, 'restored.img'), '--force']);
console.log(`\nDone. The restored image is ${path.join(base, 'restored.img')}; check it with: e2fsck -fn ${path.join(base, 'restored.img')}`);
