// Opens a restore target after the checks that protect the user's data: an existing file is not
// overwritten and a mounted or busy device is not touched (unless --force), and a device too
// small for the snapshot is always refused.
import { constants } from 'node:fs';
import { open, stat, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { StrataError, toStrataError } from '../../agent-core/api/errors.js';
import type { BlockTarget } from '../../agent-core/block-source.js';
import { deviceSizeBytes, logicalSectorSize, punchHole, zeroOut } from '../../native/index.js';
import { loopDevicesBackedBy, mountOfDevice } from './device-usage.js';

export interface TargetOptions {
  /** Bytes the snapshot will write: a new file gets this size, a device must hold at least this. */
  readonly sizeBytes: number;
  /** Overwrite an existing file, a file behind a loop device, or a mounted device. */
  readonly force: boolean;
}

/** Zeros are written in pieces of this size where the kernel cannot zero for us. */
const ZERO_WRITE_BYTES = 1 << 20;
/** One BLKZEROOUT call blocks the event loop; pieces of this size keep it responsive. */
const ZERO_OUT_BYTES = 64 << 20;

export async function openTarget(path: string, options: TargetOptions): Promise<BlockTarget> {
  let st;
  try {
    st = await stat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw toStrataError(err, `Opening the target ${path}`);
  }
  try {
    if (!st || st.isFile()) return await FileTarget.open(path, options, st?.size ?? null);
    if (st.isBlockDevice()) return await DeviceTarget.open(path, options);
  } catch (err) {
    throw toStrataError(err, `Opening the target ${path}`);
  }
  throw new StrataError('InvalidInput', `The target ${path} is neither a file nor a block device; give an image file path or a device such as /dev/sdc.`);
}

/** Positional writes, sync and close over one open file handle, with errors as StrataErrors. */
abstract class HandleTarget implements BlockTarget {
  abstract readonly kind: BlockTarget['kind'];

  protected constructor(
    readonly path: string,
    readonly sizeBytes: number,
    protected readonly handle: FileHandle,
  ) {}

  async write(offsetBytes: number, data: Uint8Array): Promise<void> {
    try {
      await this.writeAll(offsetBytes, data);
    } catch (err) {
      throw toStrataError(err, `Writing to ${this.path}`);
    }
  }

  async zero(offsetBytes: number, lengthBytes: number): Promise<void> {
    if (lengthBytes <= 0) return;
    try {
      await this.zeroRange(offsetBytes, lengthBytes);
    } catch (err) {
      throw toStrataError(err, `Zeroing part of ${this.path}`);
    }
  }

  protected abstract zeroRange(offsetBytes: number, lengthBytes: number): Promise<void>;

  async sync(): Promise<void> {
    try {
      await this.handle.sync();
    } catch (err) {
      throw toStrataError(err, `Flushing ${this.path}`);
    }
  }

  async close(): Promise<void> {
    await this.handle.close();
  }

  protected async writeAll(offsetBytes: number, data: Uint8Array): Promise<void> {
    for (let done = 0; done < data.length; ) {
      const { bytesWritten } = await this.handle.write(data, done, data.length - done, offsetBytes + done);
      done += bytesWritten;
    }
  }

  /** Zeros written through the page cache: the fallback for ranges the kernel cannot zero. */
  protected async writeZeros(offsetBytes: number, lengthBytes: number): Promise<void> {
    const zeros = Buffer.alloc(Math.min(lengthBytes, ZERO_WRITE_BYTES));
    for (let done = 0; done < lengthBytes; done += zeros.length) {
      await this.writeAll(offsetBytes + done, zeros.subarray(0, Math.min(zeros.length, lengthBytes - done)));
    }
  }
}

class FileTarget extends HandleTarget {
  readonly kind = 'file' as const;

  /** existingBytes is null when the file does not exist yet. */
  static async open(filePath: string, options: TargetOptions, existingBytes: number | null): Promise<FileTarget> {
    if (existingBytes !== null && !options.force) {
      const loops = loopDevicesBackedBy(filePath);
      if (loops.length > 0) {
        throw new StrataError('DeviceBusy', `The target file ${filePath} is attached as ${loops.join(', ')}; detach it (losetup -d) first, or pass --force to overwrite it anyway.`);
      }
      if (existingBytes > 0) {
        throw new StrataError('InvalidInput', `The target file ${filePath} already exists; choose a new path or pass --force to overwrite it.`);
      }
    }
    let handle: FileHandle;
    try {
      // O_EXCL for a new file: one created meanwhile by someone else is theirs, not ours to truncate.
      handle = await open(filePath, constants.O_RDWR | constants.O_CREAT | (existingBytes === null ? constants.O_EXCL : 0), 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new StrataError('NotFound', `The folder ${path.dirname(filePath)} of the target does not exist; create it first or choose another path.`);
      }
      throw err;
    }
    try {
      // Empty, then sized: every range the restore does not write is a hole and reads as zeros.
      await handle.truncate(0);
      await handle.truncate(options.sizeBytes);
    } catch (err) {
      await handle.close();
      throw err;
    }
    return new FileTarget(filePath, options.sizeBytes, handle);
  }

  protected async zeroRange(offsetBytes: number, lengthBytes: number): Promise<void> {
    try {
      punchHole(this.handle.fd, offsetBytes, lengthBytes);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'EOPNOTSUPP' && code !== 'ENOTSUP') throw err;
      await this.writeZeros(offsetBytes, lengthBytes); // a filesystem without holes (vfat, …)
    }
  }
}

class DeviceTarget extends HandleTarget {
  readonly kind = 'block-device' as const;

  private constructor(
    devicePath: string,
    sizeBytes: number,
    handle: FileHandle,
    private readonly sectorBytes: number,
  ) {
    super(devicePath, sizeBytes, handle);
  }

  static async open(devicePath: string, options: TargetOptions): Promise<DeviceTarget> {
    if (!options.force) {
      const mount = await mountOfDevice(devicePath);
      if (mount) {
        const what = mount.itself ? devicePath : `${devicePath} (through ${mount.device.name})`;
        throw new StrataError('DeviceBusy', `The target ${what} is mounted at ${mount.mountPoint}; unmount it first.`);
      }
    }
    let handle: FileHandle;
    try {
      // O_EXCL on a block device fails while anyone else holds it exclusively: a mounted
      // filesystem, LVM or dm, md, swap. --force skips it, as it skips the mount check.
      handle = await open(devicePath, constants.O_WRONLY | (options.force ? 0 : constants.O_EXCL));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EBUSY') {
        throw new StrataError(
          'DeviceBusy',
          `The target ${devicePath} is in use by another program (mounted, a holder such as LVM/dm, or open exclusively); stop it first.`,
        );
      }
      throw err;
    }
    try {
      const sizeBytes = deviceSizeBytes(handle.fd);
      if (sizeBytes < options.sizeBytes) {
        throw new StrataError(
          'NoSpace',
          `The target ${devicePath} is ${sizeBytes} bytes but the snapshot needs ${options.sizeBytes} bytes; choose a larger device.`,
        );
      }
      return new DeviceTarget(devicePath, sizeBytes, handle, logicalSectorSize(handle.fd));
    } catch (err) {
      await handle.close();
      throw err;
    }
  }

  /** BLKZEROOUT for whole sectors (offloaded where the device can), written zeros for a ragged head or tail. */
  protected async zeroRange(offsetBytes: number, lengthBytes: number): Promise<void> {
    const sector = this.sectorBytes;
    const endBytes = offsetBytes + lengthBytes;
    const alignedStart = Math.ceil(offsetBytes / sector) * sector;
    const alignedEnd = Math.floor(endBytes / sector) * sector;
    if (alignedStart >= alignedEnd) {
      await this.writeZeros(offsetBytes, lengthBytes);
      return;
    }
    if (alignedStart > offsetBytes) await this.writeZeros(offsetBytes, alignedStart - offsetBytes);
    for (let at = alignedStart; at < alignedEnd; at += ZERO_OUT_BYTES) {
      zeroOut(this.handle.fd, at, Math.min(ZERO_OUT_BYTES, alignedEnd - at));
      if (at + ZERO_OUT_BYTES < alignedEnd) await new Promise((resolve) => setImmediate(resolve));
    }
    if (endBytes > alignedEnd) await this.writeZeros(alignedEnd, endBytes - alignedEnd);
  }
}
