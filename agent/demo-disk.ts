// The demo disk a newcomer can try every view on: a small GPT image with an ext4 "documents" volume
// and a FAT "photos" volume, filled with real files by the mkfs tools (no mount, no root), and a way
// to change some of those files in place so the next backup has something to find.
import { execFile } from 'node:child_process';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { StrataError } from '../agent-core/api/errors.js';
import { xorshift32 } from '../agent-core/prng.js';

const run = promisify(execFile);

const SECTOR = 512;
const MiB = 1 << 20;
/** First sector and sectors of each volume. */
const DOCUMENTS = { start: 2048, sectors: 76 * 2048 };
const PHOTOS = { start: 2048 + 76 * 2048, sectors: 48 * 2048 };
/** The volumes end at 125 MiB; the rest holds GPT's backup. */
export const DEMO_IMAGE_BYTES = 128 * MiB;

const TOOLS = 'The demo disk needs sfdisk, mkfs.ext4, debugfs, mkfs.fat and mcopy (Debian packages fdisk, e2fsprogs, dosfstools, mtools)';

async function tool(cmd: string, args: string[]): Promise<void> {
  try {
    await run(cmd, args, { maxBuffer: 4 * MiB });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === 'ENOENT') throw new StrataError('Unsupported', `${TOOLS}; ${cmd} is missing.`);
    throw new StrataError('Internal', `Making the demo disk failed: ${cmd} said ${(e.stderr ?? e.message).trim().split('\n')[0]}.`, { cause: err });
  }
}

/** Deterministic text of about `bytes` bytes. */
function documentText(n: number, bytes: number, revision = 0): string {
  const line = `Report ${n}, revision ${revision}: figures for the quarter, reviewed and approved.\n`;
  return line.repeat(Math.ceil(bytes / line.length)).slice(0, bytes);
}

/** Incompressible bytes, like a photo's, from a seeded generator. */
function photoBytes(n: number, bytes: number): Buffer {
  const buf = Buffer.alloc(bytes);
  const next = xorshift32(0x9e3779b9 ^ (n * 0x85ebca6b));
  for (let o = 0; o + 4 <= bytes; o += 4) buf.writeUInt32LE(next(), o);
  return buf;
}

const documentsAt = (image: string) => `${image}?offset=${DOCUMENTS.start * SECTOR}`;
const photosAt = (image: string) => `${image}@@${PHOTOS.start * SECTOR}`;

/** Makes the demo image at `image` (replacing one there) and returns its path. */
export async function createDemoDisk(image: string): Promise<string> {
  const work = `${image}.content`;
  await rm(work, { recursive: true, force: true });
  await mkdir(path.join(work, 'documents'), { recursive: true });
  await mkdir(path.join(work, 'photos'), { recursive: true });
  try {
    for (let i = 0; i < 40; i++) await writeFile(path.join(work, 'documents', `report-${i}.txt`), documentText(i, 6000 + i * 900));
    for (let i = 0; i < 6; i++) await writeFile(path.join(work, 'photos', `photo-${i}.raw`), photoBytes(i, (1 + i) * MiB));
    await rm(image, { force: true });
    await writeFile(image, '');
    await run('truncate', ['-s', String(DEMO_IMAGE_BYTES), image]);
    const table = `label: gpt\nstart=${DOCUMENTS.start}, size=${DOCUMENTS.sectors}, type=linux, name="documents"\nstart=${PHOTOS.start}, size=${PHOTOS.sectors}, type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7, name="photos"\n`;
    await sfdisk(image, table);
    await tool('mkfs.ext4', ['-q', '-F', '-L', 'documents', '-d', path.join(work, 'documents'), '-E', `offset=${DOCUMENTS.start * SECTOR}`, image, `${(DOCUMENTS.sectors * SECTOR) / 1024}k`]);
    await tool('mkfs.fat', ['--offset', String(PHOTOS.start), '-n', 'PHOTOS', image, String(Math.floor((PHOTOS.sectors * SECTOR) / 1024))]);
    for (let i = 0; i < 6; i++) await tool('mcopy', ['-i', photosAt(image), path.join(work, 'photos', `photo-${i}.raw`), `::/photo-${i}.raw`]);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  return image;
}

function sfdisk(image: string, table: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = execFile('sfdisk', ['-q', image], (err) => {
      if (!err) return resolve();
      const e = err as NodeJS.ErrnoException;
      reject(e.code === 'ENOENT' ? new StrataError('Unsupported', `${TOOLS}; sfdisk is missing.`) : new StrataError('Internal', `Making the demo disk failed: sfdisk refused the table.`, { cause: err }));
    });
    child.stdin?.end(table);
  });
}

/** Rewrites some documents and adds a photo, in place; `round` varies what is written. Returns files changed. */
export async function changeDemoDisk(image: string, round: number): Promise<number> {
  const work = `${image}.change`;
  await rm(work, { recursive: true, force: true });
  await mkdir(work, { recursive: true });
  try {
    const commands: string[] = [];
    for (const n of [3, 17]) {
      const file = path.join(work, `report-${n}.txt`);
      await writeFile(file, documentText(n, 20_000 + round * 1000, round + 1));
      commands.push(`rm /report-${n}.txt`, `write ${file} /report-${n}.txt`);
    }
    const script = path.join(work, 'debugfs.cmds');
    await writeFile(script, commands.join('\n') + '\n');
    await tool('debugfs', ['-w', '-f', script, documentsAt(image)]);
    // Four names in turn, so repeated rounds replace photos instead of filling the volume.
    const photo = path.join(work, `new-photo-${round % 4}.raw`);
    await writeFile(photo, photoBytes(100 + round, 2 * MiB));
    await tool('mcopy', ['-o', '-i', photosAt(image), photo, `::/${path.basename(photo)}`]);
    return 3;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
