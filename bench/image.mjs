// Builds the bench's disk: an ext4 image about 55 % full of prose, logs, CSV, real binaries copied
// from /usr and incompressible media, with some files deleted so freed blocks still hold old data.
// The result is cached by generator version and size; bump GENERATOR_VERSION when content changes.
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { createByteStream, createRng } from './rng.mjs';
import { CSV_HEADER, csvRows, logLines, prose } from './text.mjs';
import { ext4Check, ext4Usage } from './ext4.mjs';
import { withMount } from './loop-mount.mjs';
import { run } from './shell.mjs';

export const GENERATOR_VERSION = 1;
export const SEED = `strata-bench-g${GENERATOR_VERSION}`;
const USED_FRACTION = 0.55;
const FS_BLOCK_BYTES = 4096;
const KiB = 1024;
const MiB = 1024 * KiB;

/** Returns the cached image for this size, building it first if needed. */
export function prepareImage({ workDir, sizeMiB, rebuild, log }) {
  const imagePath = path.join(workDir, `ext4-${sizeMiB}mib-g${GENERATOR_VERSION}.img`);
  const metaPath = `${imagePath}.json`;
  if (!rebuild && isCached(imagePath, metaPath, sizeMiB)) {
    log(`image: cached ${path.basename(imagePath)} (--rebuild to build it again)`);
    return { imagePath, meta: JSON.parse(readFileSync(metaPath, 'utf8')) };
  }
  log(`image: building ${sizeMiB} MiB ext4 image (generator v${GENERATOR_VERSION}); this happens once per size`);
  const meta = buildImage({ imagePath, sizeMiB });
  writeFileSync(metaPath, JSON.stringify(meta, null, 2) + '\n');
  log(`image: built in ${(meta.buildMs / 1000).toFixed(1)} s, ${(meta.usedFraction * 100).toFixed(1)} % used`);
  return { imagePath, meta };
}

function isCached(imagePath, metaPath, sizeMiB) {
  if (!existsSync(imagePath) || !existsSync(metaPath)) return false;
  try {
    const meta = JSON.parse(readFileSync(metaPath, 'utf8'));
    return meta.generatorVersion === GENERATOR_VERSION && statSync(imagePath).size === sizeMiB * MiB;
  } catch {
    return false;
  }
}

function buildImage({ imagePath, sizeMiB }) {
  const startMs = performance.now();
  const partial = `${imagePath}.partial`;
  rmSync(partial, { force: true });
  // Real zeros, not a sparse file: a hole reads without I/O, and no real disk has holes.
  run('dd', ['if=/dev/zero', `of=${partial}`, 'bs=1M', `count=${sizeMiB}`, 'conv=fsync', 'status=none']);
  const uuid = uuidFromSeed(SEED);
  // nodiscard: mke2fs would otherwise punch the whole file back into holes. Eager init: the
  // kernel's lazy-init thread would else zero inode tables during a later, measured mount.
  run('mkfs.ext4', ['-q', '-F', '-b', String(FS_BLOCK_BYTES), '-E', `nodiscard,lazy_itable_init=0,lazy_journal_init=0,hash_seed=${uuid}`, '-U', uuid, '-L', 'strata-bench', partial]);

  const emptyUsedBytes = ext4Usage(partial).usedBytes;
  const dataBudgetBytes = Math.max(MiB, Math.round(USED_FRACTION * sizeMiB * MiB - emptyUsedBytes));
  const rng = createRng(SEED);
  const plan = rng.shuffle(planFiles(rng, dataBudgetBytes));
  const stats = withMount(partial, 'build', {}, (root) => writePlan(root, plan));

  const check = ext4Check(partial);
  if (!check.clean) throw new Error(`the freshly built image fails its check: ${check.detail}`);
  const usage = ext4Usage(partial);
  renameSync(partial, imagePath);
  return {
    generatorVersion: GENERATOR_VERSION,
    seed: SEED,
    sizeMiB,
    imageBytes: sizeMiB * MiB,
    usedBytes: usage.usedBytes,
    usedFraction: usage.usedBytes / (sizeMiB * MiB),
    inodesUsed: usage.inodesUsed,
    ...stats,
    buildMs: Math.round(performance.now() - startMs),
    builtAt: new Date().toISOString(),
  };
}

function uuidFromSeed(seed) {
  const h = createHash('sha256').update(seed).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

const roundToBlock = (n) => Math.max(FS_BLOCK_BYTES, Math.ceil(n / FS_BLOCK_BYTES) * FS_BLOCK_BYTES);

/**
 * Shares of the data budget per kind of content. Doomed files come on top: they are written among
 * the others and deleted at the end, leaving stale data scattered through the free space.
 */
function planFiles(rng, budgetBytes) {
  const plan = [];
  const scaled = (fraction, floorBytes) => Math.max(floorBytes, Math.round(budgetBytes * fraction));
  const add = (share, category, make) => {
    let leftBytes = share * budgetBytes;
    for (let i = 0; leftBytes > 0; i++) {
      const file = make(i);
      file.sizeBytes = Math.max(1, Math.min(file.sizeBytes, Math.round(leftBytes)));
      plan.push({ category, ...file });
      leftBytes -= roundToBlock(file.sizeBytes);
    }
  };
  const n = (i, width = 4) => String(i).padStart(width, '0');

  for (const copy of planCopies(0.35 * budgetBytes)) plan.push(copy);
  add(0.1, 'prose', (i) => ({ kind: 'prose', rel: `home/ada/documents/project-${n(i % 24, 2)}/${i % 3 ? 'notes' : 'drafts/draft'}-${n(i)}.txt`, sizeBytes: rng.logInt(512, 48 * KiB) }));
  add(0.1, 'logs', (i) => ({ kind: 'log', rel: `var/log/app/service-${n(i, 2)}.log`, sizeBytes: rng.logInt(256 * KiB, scaled(1 / 40, MiB)) }));
  add(0.08, 'csv', (i) => ({ kind: 'csv', rel: `home/ada/data/export-${n(i, 3)}.csv`, sizeBytes: rng.logInt(64 * KiB, scaled(1 / 30, 256 * KiB)) }));
  add(0.25, 'media', (i) => ({ kind: 'random', rel: `home/ada/media/clip-${n(i, 3)}.mp4`, sizeBytes: rng.logInt(scaled(1 / 64, MiB), scaled(1 / 12, 2 * MiB)) }));
  add(0.07, 'photos', (i) => ({ kind: 'random', rel: `home/ada/photos/${2019 + (i % 6)}/IMG_${n(i)}.jpg`, sizeBytes: rng.logInt(48 * KiB, Math.min(4 * MiB, scaled(1 / 100, 128 * KiB))) }));
  add(0.05, 'cache', (i) => ({ kind: 'random', rel: `home/ada/.cache/thumbs/${n(i % 64, 2)}/${n(i, 5)}.png`, sizeBytes: rng.logInt(KiB, 32 * KiB) }));
  add(0.08, 'deleted', (i) => ({ kind: 'random', rel: `var/cache/pkgs/pkg-${n(i, 3)}.deb`, sizeBytes: rng.logInt(64 * KiB, 8 * MiB), doomed: true }));
  add(0.04, 'deleted', (i) => ({ kind: 'prose', rel: `home/ada/tmp/scratch-${n(i)}.txt`, sizeBytes: rng.logInt(KiB, 256 * KiB), doomed: true }));
  return plan;
}

/** Real binaries and data files from this machine's /usr, taken in sorted order until each share is met. */
function planCopies(budgetBytes) {
  const roots = [
    ['/usr/bin', 0.3],
    ['/usr/lib/x86_64-linux-gnu', 0.45],
    ['/usr/share', 0.25],
  ];
  const plan = [];
  for (const [root, share] of roots) {
    if (!existsSync(root)) continue;
    let leftBytes = share * budgetBytes;
    for (const src of walkFiles(root)) {
      if (leftBytes <= 0) break;
      const sizeBytes = statSync(src).size;
      // One huge library would eat a share alone; real disks hold many files of many sizes.
      if (sizeBytes > Math.max(MiB, budgetBytes / 16)) continue;
      plan.push({ category: 'binaries', kind: 'copy', src, rel: src.slice(1), sizeBytes });
      leftBytes -= roundToBlock(sizeBytes);
    }
  }
  return plan;
}

function* walkFiles(dir) {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  } catch {
    return;
  }
  for (const entry of entries) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) yield* walkFiles(full);
    else if (entry.isFile()) yield full;
  }
}

function writePlan(root, plan) {
  const bytes = createByteStream(SEED);
  const made = new Set();
  const categories = {};
  let deletedFiles = 0;
  let deletedBytes = 0;
  for (const file of plan) {
    const target = path.join(root, file.rel);
    const dir = path.dirname(target);
    if (!made.has(dir)) {
      mkdirSync(dir, { recursive: true });
      made.add(dir);
    }
    if (file.kind === 'copy') {
      try {
        copyFileSync(file.src, target);
      } catch {
        continue; // unreadable or vanished; the share is approximate anyway
      }
    } else {
      writeFileSync(target, content(file, bytes));
    }
    const c = (categories[file.category] ??= { files: 0, bytes: 0 });
    c.files++;
    c.bytes += file.sizeBytes;
  }
  for (const file of plan.filter((f) => f.doomed)) {
    rmSync(path.join(root, file.rel), { force: true });
    deletedFiles++;
    deletedBytes += file.sizeBytes;
  }
  delete categories.deleted;
  return { categories, deletedFiles, deletedBytes };
}

function content(file, bytes) {
  // Text depends only on the file's path, so its words do not shift when the plan's order does.
  const rng = createRng(`${SEED}:${file.rel}`);
  switch (file.kind) {
    case 'prose':
      return prose(rng, file.sizeBytes);
    case 'log':
      return logLines(rng, file.sizeBytes, Date.UTC(2024, 0, 1));
    case 'csv':
      return Buffer.concat([Buffer.from(CSV_HEADER), csvRows(rng, Math.max(0, file.sizeBytes - CSV_HEADER.length), 0)]);
    default:
      return bytes.take(file.sizeBytes);
  }
}
