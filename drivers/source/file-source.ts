// A regular image file as a BlockSource: positional reads, and holes found with SEEK_DATA/SEEK_HOLE
// so the engine never reads what a sparse image does not store (holes read as zeros).
import { open, type FileHandle } from 'node:fs/promises';
import { toStrataError } from '../../agent-core/api/errors.js';
import type { BlockSource } from '../../agent-core/block-source.js';
import type { Extent } from '../../agent-core/extents.js';
import { fadvise, nativeAvailable, seekData, seekHole } from '../../native/index.js';

/** errno codes that mean "this filesystem cannot tell data from holes", not "the file is broken". */
const NO_SEEK_DATA = new Set(['EINVAL', 'EOPNOTSUPP', 'ENOTSUP']);

export class FileSource implements BlockSource {
  readonly kind = 'file' as const;
  // Files have no sectors; 512 is the finest unit a disk image is ever cut into.
  readonly logicalSectorSize = 512;
  readonly physicalSectorSize = 512;

  private constructor(
    readonly path: string,
    readonly sizeBytes: number,
    private readonly handle: FileHandle,
  ) {}

  static async open(path: string): Promise<FileSource> {
    const handle = await open(path, 'r');
    try {
      return new FileSource(path, (await handle.stat()).size, handle);
    } catch (err) {
      await handle.close();
      throw err;
    }
  }

  async read(offsetBytes: number, lengthBytes: number): Promise<Buffer> {
    try {
      return await readFully(this.handle, offsetBytes, clampLength(offsetBytes, lengthBytes, this.sizeBytes));
    } catch (err) {
      throw toStrataError(err, `Reading ${this.path}`);
    }
  }

  async readInto(target: Uint8Array, targetOffset: number, lengthBytes: number, offsetBytes: number): Promise<number> {
    try {
      return await readFullyInto(this.handle, target, targetOffset, clampLength(offsetBytes, lengthBytes, this.sizeBytes), offsetBytes);
    } catch (err) {
      throw toStrataError(err, `Reading ${this.path}`);
    }
  }

  async allocatedExtents(): Promise<Extent[]> {
    const whole = [{ startBytes: 0, lengthBytes: this.sizeBytes }];
    if (!nativeAvailable()) return whole;
    const out: Extent[] = [];
    const fd = this.handle.fd;
    try {
      for (let at = 0; at < this.sizeBytes; ) {
        const data = seekData(fd, at);
        if (data < 0 || data >= this.sizeBytes) break;
        const hole = seekHole(fd, data);
        const end = hole < 0 ? this.sizeBytes : Math.min(hole, this.sizeBytes);
        out.push({ startBytes: data, lengthBytes: end - data });
        at = end;
      }
    } catch (err) {
      if (NO_SEEK_DATA.has((err as NodeJS.ErrnoException).code ?? '')) return whole;
      throw toStrataError(err, `Finding the data in ${this.path}`);
    }
    return out;
  }

  adviseSequential(): void {
    try {
      fadvise(this.handle.fd, 0, 0, 'sequential');
    } catch {
      // Advice only: a filesystem (or a missing addon) that ignores it reads just as correctly.
    }
  }

  prefetch(offsetBytes: number, lengthBytes: number): void {
    try {
      fadvise(this.handle.fd, offsetBytes, lengthBytes, 'willneed');
    } catch {
      // Advice only, as above.
    }
  }

  async close(): Promise<void> {
    await this.handle.close();
  }
}

/** lengthBytes cut to what remains of a source of sizeBytes after offsetBytes. */
export function clampLength(offsetBytes: number, lengthBytes: number, sizeBytes: number): number {
  return Math.max(0, Math.min(lengthBytes, sizeBytes - offsetBytes));
}

/** Reads until lengthBytes or the end of the file: one read may return less than asked. */
export async function readFullyInto(handle: FileHandle, target: Uint8Array, targetOffset: number, lengthBytes: number, offsetBytes: number): Promise<number> {
  let done = 0;
  while (done < lengthBytes) {
    const { bytesRead } = await handle.read(target, targetOffset + done, lengthBytes - done, offsetBytes + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return done;
}

export async function readFully(handle: FileHandle, offsetBytes: number, lengthBytes: number): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(lengthBytes);
  const done = await readFullyInto(handle, buf, 0, lengthBytes, offsetBytes);
  return done === lengthBytes ? buf : buf.subarray(0, done);
}
