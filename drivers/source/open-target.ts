// Opens a restore target after the checks that protect the user's data: an existing file is not
// overwritten, a mounted or busy device is not touched (unless --force), and a device too small for
// the snapshot is always refused.
import { constants, readdirSync, readFileSync, existsSync } from 'node:fs';
import { open, realpath, stat, type FileHandle } from 'node:fs/promises';
import { StrataError, toStrataError } from '../../agent-core/api/errors.js';
import type { BlockTarget } from '../../agent-core/block-source.js';
import { deviceSizeBytes, zeroOut } from '../../native/index.js';

export interface TargetOptions {
  readonly sizeBytes: number;
  readonly force: boolean;
}

function devNumbers(rdev: number): string {
  const major = Math.floor(rdev / 256) & 0xfff;
  const minor = (rdev & 0xff) | ((Math.floor(rdev / 4096) & ~0xff) >>> 0);
  return `${major}:${minor}`;
}

/** Where each device (major:minor) is mounted, from /proc/self/mountinfo. */
function mountsByDevice(): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const f = line.split(' ');
    if (f.length > 4) out.set(f[2]!, f[4]!);
  }
  return out;
}

/** The device and its partitions, as major:minor. */
function deviceAndPartitions(dev: string): string[] {
  const out = [dev];
  const dir = `/sys/dev/block/${dev}`;
  try {
    for (const name of readdirSync(dir)) {
      if (existsSync(`${dir}/${name}/partition`)) out.push(readFileSync(`${dir}/${name}/dev`, 'utf8').trim());
    }
  } catch {
    // no sysfs entry: only the device itself
  }
  return out;
}

/** Loop devices whose backing file is this path. */
function loopsBackedBy(file: string): string[] {
  const out: string[] = [];
  try {
    for (const name of readdirSync('/sys/block')) {
      if (!name.startsWith('loop')) continue;
      try {
        const backing = readFileSync(`/sys/block/${name}/loop/backing_file`, 'utf8').trim();
        if (backing === file) out.push(`/dev/${name}`);
      } catch {
        // not attached
      }
    }
  } catch {
    // no sysfs
  }
  return out;
}

export async function openTarget(path: string, options: TargetOptions): Promise<BlockTarget> {
  let st;
  try {
    st = await stat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw toStrataError(err, `Opening the target ${path}`);
  }
  try {
    if (!st || st.isFile()) return await FileTarget.open(path, options, st?.size ?? 0);
    if (st.isBlockDevice()) return await DeviceTarget.open(path, options, devNumbers(st.rdev));
  } catch (err) {
    throw toStrataError(err, `Opening the target ${path}`);
  }
  throw new StrataError('InvalidInput', `The target ${path} is neither a file nor a block device; give an image file path or a device such as /dev/sdc.`);
}

/** Positional writes, sync and close over one open file handle. */
abstract class HandleTarget implements BlockTarget {
  abstract readonly kind: BlockTarget['kind'];

  protected constructor(
    readonly path: string,
    readonly sizeBytes: number,
    protected readonly handle: FileHandle,
  ) {}

  async write(offsetBytes: number, data: Uint8Array): Promise<void> {
    let done = 0;
    while (done < data.length) {
      const { bytesWritten } = await this.handle.write(data, done, data.length - done, offsetBytes + done);
      done += bytesWritten;
    }
  }

  abstract zero(offsetBytes: number, lengthBytes: number): Promise<void>;

  async sync(): Promise<void> {
    await this.handle.sync();
  }

  async close(): Promise<void> {
    await this.handle.close();
  }
}

class FileTarget extends HandleTarget {
  readonly kind = 'file' as const;

  static async open(path: string, options: TargetOptions, existingBytes: number): Promise<FileTarget> {
    if (existingBytes > 0) {
      const loops = loopsBackedBy(await realpath(path));
      if (loops.length > 0 && !options.force) {
        throw new StrataError('DeviceBusy', `The target file ${path} is in use as ${loops.join(', ')}; detach it (losetup -d) first, or pass --force.`);
      }
      if (!options.force) {
        throw new StrataError('InvalidInput', `The target file ${path} already exists; choose a new path or pass --force to overwrite it.`);
      }
    }
    const handle = await open(path, constants.O_RDWR | constants.O_CREAT, 0o600);
    // Empty it first so every range the snapshot does not write is a hole (reads as zeros).
    await handle.truncate(0);
    await handle.truncate(options.sizeBytes);
    return new FileTarget(path, options.sizeBytes, handle);
  }

  async zero(): Promise<void> {
    // The file was emptied when opened: every range not written is already a hole.
  }
}

class DeviceTarget extends HandleTarget {
  readonly kind = 'block-device' as const;

  static async open(path: string, options: TargetOptions, dev: string): Promise<DeviceTarget> {
    const mounts = mountsByDevice();
    for (const d of deviceAndPartitions(dev)) {
      const at = mounts.get(d);
      if (at && !options.force) {
        throw new StrataError('DeviceBusy', `The target ${path} (or a partition of it) is mounted at ${at}; unmount it first.`);
      }
    }
    let handle: FileHandle;
    try {
      handle = await open(path, constants.O_WRONLY | (options.force ? 0 : constants.O_EXCL));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EBUSY') {
        throw new StrataError('DeviceBusy', `The target ${path} is in use by another program (mounted, held by LVM or device-mapper, or open exclusively); stop it first.`);
      }
      throw err;
    }
    const size = deviceSizeBytes(handle.fd);
    if (size < options.sizeBytes) {
      await handle.close();
      throw new StrataError('NoSpace', `The target ${path} holds ${size} bytes but the snapshot needs ${options.sizeBytes}; choose a larger device.`);
    }
    return new DeviceTarget(path, size, handle);
  }

  async zero(offsetBytes: number, lengthBytes: number): Promise<void> {
    zeroOut(this.handle.fd, offsetBytes, lengthBytes);
  }
}
