// Changes about 1 % of an image's used bytes the way a working day does: scattered 4 KiB rewrites
// inside large files, appended logs and CSV rows, a few new files and a couple deleted ones.
// Returns the bytes written, the yardstick for an incremental backup's growth.
import { appendFileSync, closeSync, openSync, readdirSync, rmSync, statSync, writeFileSync, writeSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { createByteStream, createRng } from './rng.mjs';
import { csvRows, logLines, prose } from './text.mjs';
import { SEED } from './image.mjs';
import { withMount } from './loop-mount.mjs';

const PIECE_BYTES = 4096;
const LARGE_FILE_BYTES = 1024 * 1024;

/**
 * `imagePath`: an image file, or a block device holding one (mounted as it is, not through a loop).
 * `variant` seeds another change of the same kind and size (the same seed again would mostly
 * rewrite the same bytes, which changes nothing a block-level backup can see).
 */
export function changeImage({ imagePath, usedBytes, fraction = 0.01, mountName = 'change', variant }) {
  const budgetBytes = Math.round(usedBytes * fraction);
  const seed = variant === undefined ? `${SEED}:change` : `${SEED}:change:${variant}`;
  const rng = createRng(seed);
  const bytes = createByteStream(seed);
  return withMount(imagePath, mountName, {}, (root) => {
    const files = listFiles(root);
    const change = {
      budgetBytes,
      rewrittenBytes: rewritePieces(rng, bytes, files, 0.45 * budgetBytes),
      appendedBytes: appendLogs(rng, root, files, 0.2 * budgetBytes) + appendCsv(rng, files, 0.05 * budgetBytes),
      newFileBytes: createFiles(rng, bytes, root, 0.3 * budgetBytes),
      deletedFiles: deleteDocuments(rng, files, 2),
    };
    change.changedBytes = change.rewrittenBytes + change.appendedBytes + change.newFileBytes;
    return change;
  });
}

function listFiles(root) {
  const out = [];
  const walk = (dir) => {
    for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory() && entry.name !== 'lost+found') walk(full);
      else if (entry.isFile()) out.push({ path: full, rel: path.relative(root, full), sizeBytes: statSync(full).size });
    }
  };
  walk(root);
  return out;
}

/** In-place overwrites (like `dd conv=notrunc`): the file keeps its blocks, only their content changes. */
function rewritePieces(rng, bytes, files, shareBytes) {
  const large = files.filter((f) => f.sizeBytes >= LARGE_FILE_BYTES && !f.rel.startsWith('var/log/'));
  const pieces = Math.max(1, Math.floor(shareBytes / PIECE_BYTES));
  for (let i = 0; i < pieces; i++) {
    const file = rng.pick(large);
    const offsetBytes = rng.int(0, Math.floor(file.sizeBytes / PIECE_BYTES) - 1) * PIECE_BYTES;
    const fd = openSync(file.path, 'r+');
    try {
      writeSync(fd, bytes.take(PIECE_BYTES), 0, PIECE_BYTES, offsetBytes);
    } finally {
      closeSync(fd);
    }
  }
  return pieces * PIECE_BYTES;
}

function appendLogs(rng, root, files, shareBytes) {
  const logs = files.filter((f) => f.rel.startsWith('var/log/app/'));
  const chosen = rng.shuffle([...logs]).slice(0, 5);
  const eachBytes = Math.floor(shareBytes / chosen.length);
  // A later clock than the build's, so the new lines read as the next day's traffic.
  for (const log of chosen) appendFileSync(log.path, logLines(rng, eachBytes, Date.UTC(2024, 6, 1)));
  return eachBytes * chosen.length;
}

function appendCsv(rng, files, shareBytes) {
  const csv = rng.pick(files.filter((f) => f.rel.endsWith('.csv')));
  const rows = csvRows(rng, Math.floor(shareBytes), 10_000_000);
  appendFileSync(csv.path, rows);
  return rows.length;
}

function createFiles(rng, bytes, root, shareBytes) {
  const docsDir = path.join(root, 'home/ada/documents/project-new');
  mkdirSync(docsDir, { recursive: true });
  let written = 0;
  const textBytes = Math.floor(shareBytes * 0.6);
  for (let i = 0; written < textBytes; i++) {
    const text = prose(rng, Math.min(rng.int(8 * 1024, 32 * 1024), textBytes - written));
    writeFileSync(path.join(docsDir, `memo-${i}.txt`), text);
    written += text.length;
  }
  const mediaBytes = Math.floor(shareBytes - written);
  writeFileSync(path.join(root, 'home/ada/media/new-clip.mp4'), bytes.take(mediaBytes));
  return written + mediaBytes;
}

function deleteDocuments(rng, files, count) {
  const docs = files.filter((f) => f.rel.startsWith('home/ada/documents/'));
  const doomed = rng.shuffle([...docs]).slice(0, count);
  for (const doc of doomed) rmSync(doc.path);
  return doomed.length;
}
