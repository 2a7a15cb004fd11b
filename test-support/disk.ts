// Real disks for tests: sparse image files, loop devices, mkfs'd filesystems and mounts, all torn
// down by the caller's cleanup. Block-device suites need root; they fail (never skip) without it.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, openSync, ftruncateSync, closeSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export function run(cmd: string, args: string[], input?: string | Buffer): string {
  const r = spawnSync(cmd, args, { input, encoding: 'utf8', maxBuffer: 256 << 20 });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr || r.stdout}`);
  return r.stdout;
}

export function requireRoot(): void {
  if (process.getuid?.() !== 0) {
    throw new Error('block-device tests need root (loop devices, mkfs, mount); CI and the dev machines run as root');
  }
}

/** A scratch directory plus a list of undo actions run in reverse by cleanup(). */
export class Scratch {
  readonly dir: string;
  private undo: Array<() => void> = [];

  constructor(prefix = 'strata-test-') {
    this.dir = mkdtempSync(path.join(os.tmpdir(), prefix));
    this.defer(() => rmSync(this.dir, { recursive: true, force: true }));
  }

  path(name: string): string {
    return path.join(this.dir, name);
  }

  defer(fn: () => void): void {
    this.undo.push(fn);
  }

  cleanup(): void {
    for (const fn of this.undo.reverse()) {
      try {
        fn();
      } catch {
        // best effort: a failed detach must not hide the test's own failure
      }
    }
    this.undo = [];
  }

  /** A sparse file of sizeBytes. */
  image(name: string, sizeBytes: number): string {
    const p = this.path(name);
    const fd = openSync(p, 'w');
    ftruncateSync(fd, sizeBytes);
    closeSync(fd);
    return p;
  }

  /** Attaches a loop device; detached at cleanup. */
  loop(file: string, options: { sectorSize?: number; readOnly?: boolean; offsetBytes?: number; sizeBytes?: number } = {}): string {
    requireRoot();
    const args = ['--find', '--show'];
    if (options.sectorSize) args.push('--sector-size', String(options.sectorSize));
    if (options.readOnly) args.push('--read-only');
    if (options.offsetBytes) args.push('--offset', String(options.offsetBytes));
    if (options.sizeBytes) args.push('--sizelimit', String(options.sizeBytes));
    args.push(file);
    const dev = run('losetup', args).trim();
    this.defer(() => execFileSync('losetup', ['-d', dev], { stdio: 'ignore' }));
    return dev;
  }

  /** Mounts dev (or an image file through -o loop) on a fresh directory; unmounted at cleanup. */
  mount(dev: string, options: string[] = []): string {
    requireRoot();
    const dir = mkdtempSync(path.join(this.dir, 'mnt-'));
    run('mount', [...options, dev, dir]);
    this.defer(() => execFileSync('umount', [dir], { stdio: 'ignore' }));
    return dir;
  }

  umount(dir: string): void {
    run('umount', [dir]);
  }
}

/** Writes a file of sizeBytes with deterministic content of the chosen kind. */
export function writeContent(file: string, sizeBytes: number, kind: 'random' | 'text' | 'zeros', seed = 1): void {
  writeFileSync(file, makeContent(sizeBytes, kind, seed));
}

/** Deterministic content: xorshift noise (incompressible), word soup (compressible) or zeros. */
export function makeContent(sizeBytes: number, kind: 'random' | 'text' | 'zeros', seed = 1): Buffer {
  const buf = Buffer.alloc(sizeBytes);
  if (kind === 'zeros') return buf;
  let x = (seed * 2654435761) >>> 0 || 1;
  const next = (): number => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
  if (kind === 'random') {
    for (let i = 0; i + 4 <= sizeBytes; i += 4) buf.writeUInt32LE(next(), i);
    for (let i = sizeBytes & ~3; i < sizeBytes; i++) buf[i] = next() & 0xff;
    return buf;
  }
  const words = ['block', 'extent', 'sector', 'volume', 'snapshot', 'restore', 'chunk', 'index', 'the', 'a', 'of', 'backup', 'disk', 'change', 'valid', 'map'];
  let o = 0;
  while (o < sizeBytes) {
    const w = words[next() % words.length]! + (next() % 7 === 0 ? '.\n' : ' ');
    o += buf.write(w, o);
  }
  return buf;
}
