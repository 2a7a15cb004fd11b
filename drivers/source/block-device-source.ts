// A block device as a BlockSource: geometry from ioctls, reads with O_DIRECT into aligned memory
// so a backup neither evicts the page cache nor trusts it; buffered reads where O_DIRECT is refused.
import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { toStrataError } from '../../agent-core/api/errors.js';
import type { BlockSource } from '../../agent-core/block-source.js';
import type { Extent } from '../../agent-core/extents.js';
import { deviceSizeBytes, fadvise, logicalSectorSize, physicalSectorSize, readDirect, readDirectRuns } from '../../native/index.js';
import { clampLength, readFully, readFullyInto } from './file-source.js';

export type DeviceIoMode = 'direct' | 'buffered';

export class BlockDeviceSource implements BlockSource {
  readonly kind = 'block-device' as const;

  private constructor(
    readonly path: string,
    private readonly handle: FileHandle,
    /** direct unless the device refused O_DIRECT; shown in logs because it changes cache behaviour. */
    readonly ioMode: DeviceIoMode,
    readonly sizeBytes: number,
    readonly logicalSectorSize: number,
    readonly physicalSectorSize: number,
  ) {
    if (ioMode === 'direct') this.readRunsInto = (target, runs) => this.readRunsDirect(target, runs);
  }

  /** Defined only for O_DIRECT devices (the engine asks whether it exists): one native task for many runs. */
  readonly readRunsInto?: (target: Uint8Array, runs: readonly (readonly [number, number, number])[]) => Promise<number[]>;

  static async open(path: string): Promise<BlockDeviceSource> {
    let handle: FileHandle;
    let ioMode: DeviceIoMode = 'direct';
    try {
      handle = await open(path, constants.O_RDONLY | constants.O_DIRECT);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EINVAL') throw err;
      handle = await open(path, constants.O_RDONLY);
      ioMode = 'buffered';
    }
    try {
      const fd = handle.fd;
      return new BlockDeviceSource(path, handle, ioMode, deviceSizeBytes(fd), logicalSectorSize(fd), physicalSectorSize(fd));
    } catch (err) {
      await handle.close();
      throw err;
    }
  }

  async read(offsetBytes: number, lengthBytes: number): Promise<Buffer> {
    const length = clampLength(offsetBytes, lengthBytes, this.sizeBytes);
    try {
      if (this.ioMode === 'buffered') return await readFully(this.handle, offsetBytes, length);
      // O_DIRECT takes whole sectors: read the aligned superset (device sizes are whole sectors) and slice.
      const sector = this.logicalSectorSize;
      const start = Math.floor(offsetBytes / sector) * sector;
      const end = Math.min(this.sizeBytes, Math.ceil((offsetBytes + length) / sector) * sector);
      const buf = await readDirect(this.handle.fd, start, Math.max(0, end - start));
      return buf.subarray(offsetBytes - start, offsetBytes - start + length);
    } catch (err) {
      throw toStrataError(err, `Reading ${this.path}`);
    }
  }

  async readInto(target: Uint8Array, targetOffset: number, lengthBytes: number, offsetBytes: number): Promise<number> {
    if (this.ioMode === 'buffered') {
      try {
        return await readFullyInto(this.handle, target, targetOffset, clampLength(offsetBytes, lengthBytes, this.sizeBytes), offsetBytes);
      } catch (err) {
        throw toStrataError(err, `Reading ${this.path}`);
      }
    }
    // The caller's memory is not sector-aligned, so O_DIRECT reads land in ours and are copied.
    const data = await this.read(offsetBytes, lengthBytes);
    target.set(data, targetOffset);
    return data.length;
  }

  private async readRunsDirect(target: Uint8Array, runs: readonly (readonly [number, number, number])[]): Promise<number[]> {
    const sector = this.logicalSectorSize;
    const lengths = runs.map(([, lengthBytes, offsetBytes]) => clampLength(offsetBytes, lengthBytes, this.sizeBytes));
    // Runs off the sector grid (a backup's are whole blocks, so none of its) are read as readInto reads them.
    if (runs.some(([, , offsetBytes], i) => offsetBytes % sector !== 0 || lengths[i]! % sector !== 0)) {
      return Promise.all(runs.map(([targetOffset, lengthBytes, offsetBytes]) => this.readInto(target, targetOffset, lengthBytes, offsetBytes)));
    }
    const triples = new Float64Array(runs.length * 3);
    runs.forEach(([targetOffset, , offsetBytes], i) => triples.set([targetOffset, lengths[i]!, offsetBytes], i * 3));
    try {
      return [...(await readDirectRuns(this.handle.fd, target, triples))];
    } catch (err) {
      throw toStrataError(err, `Reading ${this.path}`);
    }
  }

  async allocatedExtents(): Promise<Extent[]> {
    // A device has no holes; which sectors matter is the filesystem's business (drivers/disk).
    return [{ startBytes: 0, lengthBytes: this.sizeBytes }];
  }

  adviseSequential(): void {
    if (this.ioMode === 'direct') return; // O_DIRECT bypasses the cache that advice steers
    try {
      fadvise(this.handle.fd, 0, 0, 'sequential');
    } catch {
      // Advice only.
    }
  }

  async close(): Promise<void> {
    await this.handle.close();
  }
}
