// Speed of the disk map (drivers/disk/map-disk.ts): a sparse 1 TiB image holding an ext4 filled to
// 50 % with fallocate'd files (through a loop mount), and a 100 GB NTFS whose $Bitmap is 50 % used in
// random runs. Each map runs in a fresh child process, which reports the time and its peak RSS.
//
//   node bench/disk-map.mjs [--ext4-gib 1024] [--ntfs-gb 100] [--runs 3] [--keep]   (a size of 0 skips that image)
//
// Needs root (loop mount, mkfs). Images live in bench/work/disk-map/ and are reused unless --rebuild.
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, ftruncateSync, mkdirSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import path from 'node:path';

const GiB = 2 ** 30;
const here = import.meta.dirname;
const projectRoot = path.resolve(here, '..');
const workDir = path.join(here, 'work', 'disk-map');
/** The TypeScript compiled on its own (not dist/, which others use), so the child's RSS is the map's and Node's alone. */
const jsDir = path.join(workDir, 'js');
const js = (file) => new URL(`file://${path.join(jsDir, file)}`).href;

function compile() {
  const started = performance.now();
  run(process.execPath, [path.join(projectRoot, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', path.join(projectRoot, 'tsconfig.build.json'), '--outDir', jsDir, '--tsBuildInfoFile', path.join(jsDir, '.tsbuildinfo')]);
  console.log(`compiled the drivers to ${path.relative(projectRoot, jsDir)} in ${((performance.now() - started) / 1000).toFixed(1)} s`);
}

function run(cmd, args) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr || r.stdout}`);
  return r.stdout;
}

function sparse(file, sizeBytes) {
  const fd = openSync(file, 'w');
  ftruncateSync(fd, sizeBytes);
  closeSync(fd);
}

function parseArgs(argv) {
  const o = { ext4Gib: 1024, ntfsGb: 100, runs: 3, keep: false, rebuild: false, child: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--ext4-gib') o.ext4Gib = Number(argv[++i]);
    else if (a === '--ntfs-gb') o.ntfsGb = Number(argv[++i]);
    else if (a === '--runs') o.runs = Number(argv[++i]);
    else if (a === '--keep') o.keep = true;
    else if (a === '--rebuild') o.rebuild = true;
    else if (a === '--child') o.child = argv[++i];
    else throw new Error(`unknown option ${a}`);
  }
  for (const [name, v] of [['--ext4-gib', o.ext4Gib], ['--ntfs-gb', o.ntfsGb], ['--runs', o.runs]]) {
    // 0 skips that image; anything else must be a positive whole number.
    if (!Number.isInteger(v) || v < 0 || (name === '--runs' && v === 0)) throw new Error(`${name} must be a whole number${name === '--runs' ? ' above 0' : ' (0 skips the image)'}, not ${v}`);
  }
  return o;
}

/** ext4 of sizeGib, half of it fallocate'd in 16 GiB files through a loop mount. */
function buildExt4(file, sizeGib) {
  const started = performance.now();
  sparse(file, sizeGib * GiB);
  run('mkfs.ext4', ['-q', '-F', '-E', 'lazy_itable_init=1,lazy_journal_init=1,nodiscard', file]);
  const mnt = path.join(workDir, 'mnt');
  mkdirSync(mnt, { recursive: true });
  run('mount', ['-o', 'loop', file, mnt]);
  try {
    const fileBytes = Math.min(16 * GiB, (sizeGib * GiB) / 32);
    const target = (sizeGib * GiB) / 2;
    let n = 0;
    for (let filled = 0; filled + fileBytes <= target; filled += fileBytes) run('fallocate', ['-l', String(fileBytes), path.join(mnt, `f${n++}`)]);
    // Some small files too, so the bitmaps are not only whole runs.
    mkdirSync(path.join(mnt, 'small'), { recursive: true });
    for (let i = 0; i < 2000; i++) {
      const fd = openSync(path.join(mnt, 'small', `s${i}`), 'w');
      writeSync(fd, Buffer.alloc(1 + ((i * 7919) % 60000), 1));
      closeSync(fd);
    }
  } finally {
    run('umount', [mnt]);
  }
  return (performance.now() - started) / 1000;
}

/** A 100 GB NTFS whose $Bitmap is rewritten to 50 % used in random runs of 1–4096 clusters (synthetic, but the map reads only the bitmap). */
async function buildNtfs(file, sizeGb) {
  const started = performance.now();
  sparse(file, sizeGb * 1e9);
  run('mkntfs', ['-F', '-Q', '-q', file]);
  const { parseNtfsBootSector } = await import(js('drivers/disk/ntfs-used-extents.js'));
  const fd = openSync(file, 'r+');
  try {
    const boot = Buffer.alloc(512);
    readSync(fd, boot, 0, 512, 0);
    const g = parseNtfsBootSector(boot);
    // $Bitmap's data runs, as ntfsinfo lists them.
    const info = run('ntfsinfo', ['-f', '-v', '-i', '6', file]);
    const runs = [...info.matchAll(/^\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s*$/gim)].map((m) => ({ lcn: parseInt(m[2], 16), length: parseInt(m[3], 16) }));
    const bitmap = Buffer.alloc(Math.ceil(g.clusterCount / 8));
    readBitmap(fd, runs, g.clusterBytes, bitmap);
    let x = 12345;
    const rand = () => ((x = (Math.imul(x, 1103515245) + 12345) >>> 0), x);
    // Keep the metadata clusters mkntfs set; add runs after the first 1 %.
    for (let c = Math.floor(g.clusterCount / 100); c < g.clusterCount; ) {
      const used = 1 + (rand() % 4096);
      for (let i = c; i < Math.min(g.clusterCount, c + used); i++) bitmap[i >> 3] |= 1 << (i & 7);
      c += used + 1 + (rand() % 4096);
    }
    let at = 0;
    for (const r of runs) {
      const bytes = Math.min(r.length * g.clusterBytes, bitmap.length - at);
      if (bytes <= 0) break;
      writeSync(fd, bitmap, at, bytes, r.lcn * g.clusterBytes);
      at += bytes;
    }
  } finally {
    closeSync(fd);
  }
  return (performance.now() - started) / 1000;
}

function readBitmap(fd, runs, clusterBytes, into) {
  let at = 0;
  for (const r of runs) {
    const bytes = Math.min(r.length * clusterBytes, into.length - at);
    if (bytes <= 0) break;
    readSync(fd, into, at, bytes, r.lcn * clusterBytes);
    at += bytes;
  }
}

/** Child: maps the image once and prints time, RSS before and at peak, extents and their serialized size. */
async function child(image) {
  const { FileSource } = await import(js('drivers/source/file-source.js'));
  const { mapDisk } = await import(js('drivers/disk/map-disk.js'));
  const { totalBytes } = await import(js('agent-core/extents.js'));
  globalThis.gc?.();
  const rssBefore = process.memoryUsage().rss;
  const source = await FileSource.open(image);
  const started = performance.now();
  const map = await mapDisk(source);
  const ms = performance.now() - started;
  await source.close();
  const extents = map.validExtents.length;
  console.log(
    JSON.stringify({
      ms,
      rssBeforeBytes: rssBefore,
      maxRssBytes: process.resourceUsage().maxRSS * 1024,
      extents,
      validBytes: totalBytes(map.validExtents),
      sizeBytes: source.sizeBytes,
      // A map page stores each run as kind + length (9 bytes): a valid run and the gap after it.
      serializedBytes: extents * 18,
      filesystems: map.layout.volumes.map((v) => v.filesystem),
      warnings: map.layout.warnings,
    }),
  );
}

function measure(image, runs) {
  const results = [];
  for (let i = 0; i < runs; i++) {
    const r = spawnSync(process.execPath, ['--expose-gc', path.join(here, 'disk-map.mjs'), '--child', image], { cwd: projectRoot, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`map child failed: ${r.stderr}`);
    results.push(JSON.parse(r.stdout.trim().split('\n').at(-1)));
  }
  return results;
}

function report(name, results, sizeBytes) {
  const best = results.reduce((a, b) => (b.ms < a.ms ? b : a));
  const per100GB = (1e11 / sizeBytes) * best.serializedBytes;
  const mib = (b) => (b / 2 ** 20).toFixed(1);
  console.log(
    `${name}: map ${results.map((r) => r.ms.toFixed(0)).join(' / ')} ms (best ${best.ms.toFixed(0)}), ` +
      `RSS ${mib(best.rssBeforeBytes)} MiB before, ${mib(best.maxRssBytes)} MiB peak, ` +
      `${best.extents} extents, valid ${((100 * best.validBytes) / best.sizeBytes).toFixed(1)} %, ` +
      `serialized ${mib(best.serializedBytes)} MiB (${(per100GB / 2 ** 10).toFixed(1)} KiB per 100 GB), fs ${best.filesystems.join(',')}` +
      (best.warnings.length ? `, warnings: ${best.warnings.join(' ')}` : ''),
  );
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  if (o.child) return child(o.child);
  if (process.getuid?.() !== 0) throw new Error('bench/disk-map.mjs needs root (loop mount, mkfs)');
  mkdirSync(workDir, { recursive: true });
  compile();
  const ext4 = path.join(workDir, `ext4-${o.ext4Gib}gib.img`);
  const ntfs = path.join(workDir, `ntfs-${o.ntfsGb}gb.img`);
  if (o.ext4Gib > 0) {
    if (o.rebuild || !existsSync(ext4)) console.log(`built ${path.basename(ext4)} in ${buildExt4(ext4, o.ext4Gib).toFixed(1)} s`);
    report(`ext4 ${o.ext4Gib} GiB, 50 % fallocate'd`, measure(ext4, o.runs), o.ext4Gib * GiB);
  }
  if (o.ntfsGb > 0) {
    if (o.rebuild || !existsSync(ntfs)) console.log(`built ${path.basename(ntfs)} in ${(await buildNtfs(ntfs, o.ntfsGb)).toFixed(1)} s`);
    report(`NTFS ${o.ntfsGb} GB, 50 % in random runs`, measure(ntfs, o.runs), o.ntfsGb * 1e9);
  }
  // The images take minutes to build: --keep leaves them for the next run.
  if (!o.keep) for (const f of [ext4, ntfs]) rmSync(f, { force: true });
}

await main();
