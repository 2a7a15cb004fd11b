// Loop mounts that never outlive the bench. Every mount lives in one directory (<work>/mnt/<name>),
// is undone on error and on exit, and a watcher undoes it if the bench is killed (Ctrl-C).
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { run } from './shell.mjs';

let mountRoot;
const mounted = new Set();

/**
 * Call once before any mount. Clears what a killed earlier run left, unmounts on a thrown error or
 * a normal exit, and starts a detached watcher for Ctrl-C: the bench is synchronous, so a signal
 * handler would only run after the whole bench had finished.
 */
export function installMountCleanup(workDir) {
  mountRoot = path.join(workDir, 'mnt');
  mkdirSync(mountRoot, { recursive: true });
  clearMountsBelow(mountRoot);
  process.on('exit', unmountAll);
  const script = [
    'while kill -0 "$1" 2>/dev/null; do sleep 1; done',
    'for dir in "$2"/*; do mountpoint -q "$dir" && umount -l "$dir"; done',
  ].join('\n');
  spawn('sh', ['-c', script, 'mount-watcher', String(process.pid), mountRoot], { detached: true, stdio: 'ignore' }).unref();
}

function clearMountsBelow(root) {
  for (const name of readdirSync(root)) {
    const dir = path.join(root, name);
    if (run('mountpoint', ['-q', dir], { allowFail: true }).status === 0) run('umount', ['-l', dir], { allowFail: true });
  }
}

function mountImage(imagePath, name, { readOnly = false } = {}) {
  if (!mountRoot) throw new Error('installMountCleanup() must run before the first mount');
  const mountDir = path.join(mountRoot, name);
  mkdirSync(mountDir, { recursive: true });
  // noload: a read-only mount must not replay the journal, or "read-only" would still write.
  // A block device (the tracked phase's loop device) is mounted as it is: `loop` on top of it would
  // stack a second loop device, and its writes would reach the first one only through its page cache.
  const options = [...(statSync(imagePath).isBlockDevice() ? [] : ['loop']), ...(readOnly ? ['ro', 'noload'] : [])];
  run('mount', [...(options.length ? ['-o', options.join(',')] : []), imagePath, mountDir]);
  mounted.add(mountDir);
  return mountDir;
}

function unmount(mountDir) {
  if (!mounted.has(mountDir)) return;
  const r = run('umount', [mountDir], { allowFail: true });
  // Something still open in it (a shell cd'd there): detach lazily rather than leave it mounted.
  if (r.status !== 0) run('umount', ['-l', mountDir], { allowFail: true });
  mounted.delete(mountDir);
  if (existsSync(mountDir)) rmSync(mountDir, { recursive: true, force: true });
}

/** Mounts `imagePath` (an image file, or a block device) at <work>/mnt/<name> for the duration of `fn(mountDir)`. */
export function withMount(imagePath, name, options, fn) {
  const mountDir = mountImage(imagePath, name, options);
  try {
    return fn(mountDir);
  } finally {
    unmount(mountDir);
  }
}

function unmountAll() {
  for (const dir of [...mounted].reverse()) unmount(dir);
}
