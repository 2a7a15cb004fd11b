// A block device as a BlockSource: geometry from ioctls, reads with O_DIRECT into aligned memory
// so a backup neither pollutes nor trusts the page cache; buffered reads where O_DIRECT is refused.
import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import type { BlockSource } from '../../agent-core/block-source.js';
import type { Extent } from '../../agent-core/extents.js';
import { deviceSizeBytes, logicalSectorSize, physicalSectorSize, readDirect } from '../../native/index.js';
import { readFully } from './file-source.js';

export class BlockDeviceSource implements BlockSource {
  readonly kind = 'block-device' as const;

  private constructor(
    readonly path: string,
    private readonly handle: FileHandle,
    private readonly direct: boolean,
    readonly sizeBytes: number,
    readonly logicalSectorSize: number,
    readonly physicalSectorSize: number,
  ) {}

  static async open(path: string): Promise<BlockDeviceSource> {
    let handle: FileHandle;
    let direct = true;
    try {
      handle = await open(path, constants.O_RDONLY | constants.O_DIRECT);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EINVAL') throw err;
      handle = await open(path, constants.O_RDONLY);
      direct = false;
    }
    try {
      const fd = handle.fd;
      return new BlockDeviceSource(path, handle, direct, deviceSizeBytes(fd), logicalSectorSize(fd), physicalSectorSize(fd));
    } catch (err) {
      await handle.close();
      throw err;
    }
  }

  async read(offsetBytes: number, lengthBytes: number): Promise<Buffer> {
    const length = Math.max(0, Math.min(lengthBytes, this.sizeBytes - offsetBytes));
    if (!this.direct) return readFully(this.handle, offsetBytes, length);
    // O_DIRECT needs sector alignment: read the aligned superset and slice.
    const sector = this.logicalSectorSize;
    const start = Math.floor(offsetBytes / sector) * sector;
    const end = Math.min(this.sizeBytes, Math.ceil((offsetBytes + length) / sector) * sector);
    const buf = await readDirect(this.handle.fd, start, end - start);
    return buf.subarray(offsetBytes - start, offsetBytes - start + length);
  }

  async readInto(target: Uint8Array, targetOffset: number, lengthBytes: number, offsetBytes: number): Promise<number> {
    const data = await this.read(offsetBytes, lengthBytes);
    target.set(data, targetOffset);
    return data.length;
  }

  async allocatedExtents(): Promise<Extent[]> {
    return [{ startBytes: 0, lengthBytes: this.sizeBytes }];
  }

  adviseSequential(): void {}

  async close(): Promise<void> {
    await this.handle.close();
  }
}
