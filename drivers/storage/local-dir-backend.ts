// A repository in a local directory: write to tmp/, fsync, rename into place, fsync the directory,
// so a kill at any instant leaves either the old state or the new file, never half a file.
import { mkdir, open, readdir, rename, rm, stat, readFile, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { StrataError, toStrataError } from '../../agent-core/api/errors.js';
import type { FileType, RepoBackend, StagedFile } from '../../agent-core/repo/backend.js';
import { DIRS } from '../../agent-core/repo/format.js';

const TYPE_DIRS: Record<Exclude<FileType, 'config'>, string> = {
  keys: DIRS.keys,
  data: DIRS.data,
  index: DIRS.index,
  snapshots: DIRS.snapshots,
  locks: DIRS.locks,
};

// No leading dot: '..' and '..x' would otherwise resolve outside their type's directory (a data
// file lives in data/<first two characters>/).
const NAME_RE = /^[0-9a-zA-Z_-][0-9a-zA-Z._-]*$/;

export class LocalDirBackend implements RepoBackend {
  readonly location: string;

  constructor(dir: string) {
    this.location = path.resolve(dir);
  }

  private dirOf(type: FileType, name: string): string {
    if (type === 'config') return this.location;
    if (type === 'data') return path.join(this.location, DIRS.data, name.slice(0, 2));
    return path.join(this.location, TYPE_DIRS[type]);
  }

  private fileOf(type: FileType, name: string): string {
    if (type === 'config') return path.join(this.location, 'config');
    if (!NAME_RE.test(name)) throw new StrataError('InvalidInput', `"${name}" is not a valid repository file name.`);
    return path.join(this.dirOf(type, name), name);
  }

  async create(): Promise<void> {
    try {
      await mkdir(this.location, { recursive: true });
      const existing = await readdir(this.location);
      if (existing.length > 0) {
        throw new StrataError('InvalidInput', `${this.location} is not empty; choose an empty or new directory for the repository.`);
      }
      for (const d of [...Object.values(TYPE_DIRS), DIRS.tmp]) await mkdir(path.join(this.location, d), { recursive: true });
    } catch (err) {
      throw toStrataError(err, 'Creating the repository');
    }
  }

  async isRepository(): Promise<boolean> {
    try {
      return (await stat(path.join(this.location, 'config'))).isFile();
    } catch {
      return false;
    }
  }

  async save(type: FileType, name: string, parts: Uint8Array | readonly Uint8Array[]): Promise<void> {
    const final = this.fileOf(type, name);
    const dir = path.dirname(final);
    const tmp = path.join(this.location, DIRS.tmp, `${type}-${randomBytes(8).toString('hex')}`);
    try {
      await mkdir(dir, { recursive: true });
      const fh = await open(tmp, 'wx', 0o600);
      try {
        const list = parts instanceof Uint8Array ? [parts] : [...parts];
        await fh.writev(list as Uint8Array[]);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, final);
      await syncDir(dir);
    } catch (err) {
      await rm(tmp, { force: true }).catch(() => {});
      throw toStrataError(err, `Writing ${type} ${name}`);
    }
  }

  async stage(type: FileType): Promise<StagedFile> {
    const tmp = path.join(this.location, DIRS.tmp, `${type}-${randomBytes(8).toString('hex')}`);
    let fh: FileHandle;
    try {
      fh = await open(tmp, 'wx', 0o600);
    } catch (err) {
      throw toStrataError(err, `Writing a ${type} file`);
    }
    const drop = async (): Promise<void> => {
      await fh.close().catch(() => {});
      await rm(tmp, { force: true }).catch(() => {});
    };
    return {
      append: async (parts) => {
        try {
          await fh.writev(parts as Uint8Array[]);
        } catch (err) {
          throw toStrataError(err, `Writing a ${type} file`);
        }
      },
      flush: async () => {
        try {
          await fh.datasync();
        } catch (err) {
          throw toStrataError(err, `Writing a ${type} file`);
        }
      },
      commit: async (name) => {
        const final = this.fileOf(type, name);
        try {
          await fh.sync();
          await fh.close();
          await mkdir(path.dirname(final), { recursive: true });
          await rename(tmp, final);
          await syncDir(path.dirname(final));
        } catch (err) {
          await drop();
          throw toStrataError(err, `Writing ${type} ${name}`);
        }
      },
      discard: drop,
    };
  }

  async load(type: FileType, name: string, offsetBytes?: number, lengthBytes?: number): Promise<Buffer> {
    if (offsetBytes === undefined) {
      try {
        return await readFile(this.fileOf(type, name));
      } catch (err) {
        throw this.loadError(err, type, name);
      }
    }
    return (await this.loadRanges(type, name, [{ offsetBytes, lengthBytes: lengthBytes ?? 0 }]))[0]!;
  }

  async loadRanges(type: FileType, name: string, ranges: readonly { readonly offsetBytes: number; readonly lengthBytes: number }[]): Promise<Buffer[]> {
    const file = this.fileOf(type, name);
    try {
      const fh = await open(file, 'r');
      try {
        // Side by side: on a cold cache each range is a read of its own.
        return await Promise.all(
          ranges.map(async ({ offsetBytes, lengthBytes }) => {
            const buf = Buffer.allocUnsafe(lengthBytes);
            let done = 0;
            while (done < buf.length) {
              const { bytesRead } = await fh.read(buf, done, buf.length - done, offsetBytes + done);
              if (bytesRead === 0) break;
              done += bytesRead;
            }
            if (done !== buf.length) {
              throw new StrataError('Corrupt', `${type} file ${name} is shorter than the index says; the repository is damaged (run \`strata verify\`).`);
            }
            return buf;
          }),
        );
      } finally {
        await fh.close();
      }
    } catch (err) {
      throw this.loadError(err, type, name);
    }
  }

  private loadError(err: unknown, type: FileType, name: string): StrataError {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      return new StrataError('NotFound', `The repository has no ${type} file ${name}; it may be damaged (run \`strata verify\`).`, { cause: err });
    }
    return toStrataError(err, `Reading ${type} ${name}`);
  }

  async size(type: FileType, name: string): Promise<number> {
    try {
      return (await stat(this.fileOf(type, name))).size;
    } catch (err) {
      throw toStrataError(err, `Reading ${type} ${name}`);
    }
  }

  async list(type: FileType): Promise<string[]> {
    if (type === 'config') return (await this.isRepository()) ? ['config'] : [];
    const base = path.join(this.location, TYPE_DIRS[type]);
    try {
      if (type !== 'data') return (await readdir(base)).filter((n) => NAME_RE.test(n)).sort();
      const out: string[] = [];
      // A stray file beside the subdirectories (a .DS_Store) is ignored, not listed into.
      const subs = (await readdir(base, { withFileTypes: true })).filter((d) => d.isDirectory()).map((d) => d.name);
      for (const sub of subs.sort()) {
        for (const n of (await readdir(path.join(base, sub))).sort()) if (NAME_RE.test(n)) out.push(n);
      }
      return out;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw toStrataError(err, `Listing ${type}`);
    }
  }

  async remove(type: FileType, name: string): Promise<void> {
    try {
      await rm(this.fileOf(type, name), { force: true });
    } catch (err) {
      throw toStrataError(err, `Removing ${type} ${name}`);
    }
  }

  async cleanTemp(): Promise<void> {
    const tmp = path.join(this.location, DIRS.tmp);
    await mkdir(tmp, { recursive: true });
    for (const n of await readdir(tmp)) await rm(path.join(tmp, n), { force: true, recursive: true });
  }
}

async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
