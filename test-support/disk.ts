// Real disks for tests: sparse image files, loop devices, mkfs'd filesystems and mounts, all torn
// down by the caller's cleanup. Block-device suites need root; they fail (never skip) without it.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, openSync, ftruncateSync, closeSync, writeFileSync, mkdirSync, unlinkSync, writeSync, readSync, readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { BlockSource } from '../agent-core/block-source.js';
import { xorshift32 } from '../agent-core/prng.js';

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

/** Deletes one partition node, retrying while a closing reader (udev's probe, a finished test) holds it. */
function dropPartition(dev: string, number: number): void {
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (let attempt = 0; ; attempt++) {
    const r = spawnSync('delpart', [dev, String(number)], { encoding: 'utf8' });
    if (r.status === 0 || !existsSync(`/sys/class/block/${path.basename(dev)}p${number}`)) return;
    if (attempt === 40) throw new Error(`${dev}p${number} stayed busy for 2 s; delpart said: ${r.stderr.trim()}`);
    Atomics.wait(pause, 0, 0, 50);
  }
}

/** Deletes every partition node of a loop device, so the next user of the device starts clean. */
function dropPartitions(dev: string): void {
  const name = path.basename(dev);
  for (const entry of readdirSync(`/sys/class/block/${name}`)) {
    const number = entry.startsWith(`${name}p`) ? Number(entry.slice(name.length + 1)) : NaN;
    if (Number.isInteger(number) && existsSync(`/sys/class/block/${name}/${entry}/partition`)) dropPartition(dev, number);
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
    // The kernel keeps partitions added with BLKPG across a detach (a loop device attached without
    // partition scanning never rescans), so a device can arrive carrying a previous user's nodes.
    dropPartitions(dev);
    this.defer(() => {
      dropPartitions(dev);
      execFileSync('losetup', ['-d', dev], { stdio: 'ignore' });
    });
    return dev;
  }

  /**
   * Adds partition `number` to a loop device with BLKPG (addpart), which needs no partition-table
   * support in the kernel; removed at cleanup. Returns the partition's device path.
   */
  partition(dev: string, number: number, startBytes: number, sizeBytes: number): string {
    requireRoot();
    run('addpart', [dev, String(number), String(startBytes / 512), String(sizeBytes / 512)]);
    this.defer(() => dropPartition(dev, number));
    return `${dev}p${number}`;
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

/** A seeded 32-bit xorshift generator (agent-core/prng.ts), under the name the tests use. */
export const prng = xorshift32;

/** Deterministic content: xorshift noise (incompressible), word soup (compressible) or zeros. */
export function makeContent(sizeBytes: number, kind: 'random' | 'text' | 'zeros', seed = 1): Buffer {
  const buf = Buffer.alloc(sizeBytes);
  if (kind === 'zeros') return buf;
  const next = prng(seed * 2654435761);
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

/** What dumpe2fs says about an ext filesystem: geometry and the used blocks as byte ranges. */
export interface Dumpe2fsReport {
  blockSizeBytes: number;
  blockCount: number;
  /** Used byte ranges relative to the filesystem's start: every block minus the listed free ones. */
  usedExtents: Array<{ startBytes: number; lengthBytes: number }>;
  usedBytes: number;
  /** bg_flags per group as dumpe2fs prints them (BLOCK_UNINIT, ITABLE_ZEROED, ...). */
  groupFlags: string[][];
}

/** Runs dumpe2fs on an image (at offsetBytes) or device and turns its per-group free lists into used ranges. */
export function dumpe2fsReport(target: string, offsetBytes = 0): Dumpe2fsReport {
  const out = run('dumpe2fs', [offsetBytes ? `${target}?offset=${offsetBytes}` : target]);
  const field = (name: string): number => {
    const m = new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(out);
    if (!m) throw new Error(`dumpe2fs printed no "${name}"`);
    return Number(m[1]);
  };
  const blockSizeBytes = field('Block size');
  const blockCount = field('Block count');
  // Under bigalloc dumpe2fs prints free clusters by their first block: "a-b" ends at b's cluster end.
  const cluster = /^Cluster size:\s+(\d+)/m.exec(out);
  const clusterBlocks = cluster ? Number(cluster[1]) / blockSizeBytes : 1;
  const free: Array<[number, number]> = [];
  const groupFlags: string[][] = [];
  for (const line of out.split('\n')) {
    const g = /^Group \d+: .*?(?:\[([^\]]*)\])?$/.exec(line);
    if (g) groupFlags.push(g[1] ? g[1].split(/,\s*/) : []);
    const m = /^ {2}Free blocks: (.*)$/.exec(line);
    if (!m || !m[1]!.trim()) continue;
    for (const part of m[1]!.split(',')) {
      const [a, b] = part.trim().split('-').map(Number);
      free.push([a!, (b ?? a!) + clusterBlocks]);
    }
  }
  free.sort((x, y) => x[0] - y[0]);
  const usedExtents: Array<{ startBytes: number; lengthBytes: number }> = [];
  let cursor = 0;
  for (const [a, b] of free) {
    if (a > cursor) usedExtents.push({ startBytes: cursor * blockSizeBytes, lengthBytes: (a - cursor) * blockSizeBytes });
    cursor = Math.max(cursor, b);
  }
  if (cursor < blockCount) usedExtents.push({ startBytes: cursor * blockSizeBytes, lengthBytes: (blockCount - cursor) * blockSizeBytes });
  const usedBytes = usedExtents.reduce((s, e) => s + e.lengthBytes, 0);
  return { blockSizeBytes, blockCount, usedExtents, usedBytes, groupFlags };
}

/**
 * Fills a mounted filesystem with a deterministic mix: many small text files in nested
 * directories, a few large random files, then deletes every third small file and one large one so
 * the bitmaps have holes.
 */
export function populate(dir: string, options: { smallFiles?: number; largeFiles?: number; largeBytes?: number; seed?: number } = {}): void {
  const seed = options.seed ?? 1;
  const small = options.smallFiles ?? 200;
  const large = options.largeFiles ?? 3;
  const largeBytes = options.largeBytes ?? 2 << 20;
  const smallPaths: string[] = [];
  for (let i = 0; i < small; i++) {
    const sub = path.join(dir, `d${i % 10}`, `e${i % 3}`);
    mkdirSync(sub, { recursive: true });
    const p = path.join(sub, `f${i}.txt`);
    writeFileSync(p, makeContent(200 + ((i * 7919) % 20000), 'text', seed + i));
    smallPaths.push(p);
  }
  const largePaths: string[] = [];
  for (let i = 0; i < large; i++) {
    const p = path.join(dir, `big${i}.bin`);
    writeFileSync(p, makeContent(largeBytes, 'random', seed * 1000 + i));
    largePaths.push(p);
  }
  smallPaths.forEach((p, i) => {
    if (i % 3 === 0) unlinkSync(p);
  });
  if (largePaths.length > 1) unlinkSync(largePaths[0]!);
  run('sync', []);
}

/** Overwrites bytes of a file in place (to damage a table or superblock on purpose). */
export function patchFile(file: string, offsetBytes: number, bytes: Uint8Array): void {
  const fd = openSync(file, 'r+');
  try {
    writeSync(fd, bytes, 0, bytes.length, offsetBytes);
  } finally {
    closeSync(fd);
  }
}

/** Reads bytes of a file at an offset. */
export function peekFile(file: string, offsetBytes: number, lengthBytes: number): Buffer {
  const fd = openSync(file, 'r');
  try {
    const buf = Buffer.alloc(lengthBytes);
    readSync(fd, buf, 0, lengthBytes, offsetBytes);
    return buf;
  } finally {
    closeSync(fd);
  }
}

export interface SfdiskPartition {
  node: string;
  start: number;
  size: number;
  type: string;
  uuid?: string;
  name?: string;
}

/** The partition table as `sfdisk --json` prints it (start and size in sectors of sectorsize). */
export function sfdiskDump(target: string): { label: string; sectorsize: number; partitions: SfdiskPartition[] } {
  return (JSON.parse(run('sfdisk', ['--json', target])) as { partitiontable: { label: string; sectorsize: number; partitions: SfdiskPartition[] } }).partitiontable;
}

/** Linux's partition number from an sfdisk node name (`disk.img5` → 5). */
export function partitionNumber(node: string): number {
  return Number(/(\d+)$/.exec(node)![1]);
}

/** sha256 of every regular file under dir, by relative path: two trees hold the same files iff equal. */
export function fileTreeHashes(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!e.isFile()) continue;
    const p = path.join(e.parentPath, e.name);
    out.set(path.relative(dir, p), createHash('sha256').update(readFileSync(p)).digest('hex'));
  }
  return out;
}

/** Counts the bytes a source is asked to read from now on: a reader of metadata must read little. */
export function countReads(source: BlockSource): { bytes(): number } {
  let bytes = 0;
  const read = source.read.bind(source);
  const readInto = source.readInto.bind(source);
  source.read = async (offset, length) => {
    bytes += length;
    return read(offset, length);
  };
  source.readInto = async (target, targetOffset, length, offset) => {
    bytes += length;
    return readInto(target, targetOffset, length, offset);
  };
  return { bytes: () => bytes };
}
