// A regular image file as a BlockSource: positional reads, holes found with SEEK_DATA/SEEK_HOLE so
// the engine never reads what the file does not store.
import { open, type FileHandle } from 'node:fs/promises';
import type { BlockSource } from '../../agent-core/block-source.js';
import type { Extent } from '../../agent-core/extents.js';
import { fadvise, seekData, seekHole } from '../../native/index.js';

export class FileSource implements BlockSource {
  readonly kind = 'file' as const;
  readonly logicalSectorSize = 512;
  readonly physicalSectorSize = 512;

  private constructor(
    readonly path: string,
    readonly sizeBytes: number,
    private readonly handle: FileHandle,
  ) {}

  static async open(path: string): Promise<FileSource> {
    const handle = await open(path, 'r');
    const st = await handle.stat();
    return new FileSource(path, st.size, handle);
  }

  async read(offsetBytes: number, lengthBytes: number): Promise<Buffer> {
    return readFully(this.handle, offsetBytes, Math.max(0, Math.min(lengthBytes, this.sizeBytes - offsetBytes)));
  }

  async readInto(target: Uint8Array, targetOffset: number, lengthBytes: number, offsetBytes: number): Promise<number> {
    const length = Math.max(0, Math.min(lengthBytes, this.sizeBytes - offsetBytes));
    let done = 0;
    while (done < length) {
      const { bytesRead } = await this.handle.read(target, targetOffset + done, length - done, offsetBytes + done);
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    return done;
  }

  async allocatedExtents(): Promise<Extent[]> {
    const out: Extent[] = [];
    const fd = this.handle.fd;
    try {
      for (let pos = 0; pos < this.sizeBytes; ) {
        const data = seekData(fd, pos);
        if (data < 0 || data >= this.sizeBytes) break;
        const hole = seekHole(fd, data);
        const end = hole < 0 ? this.sizeBytes : Math.min(hole, this.sizeBytes);
        out.push({ startBytes: data, lengthBytes: end - data });
        pos = end;
      }
    } catch {
      // A filesystem without SEEK_DATA: every byte may hold data.
      return [{ startBytes: 0, lengthBytes: this.sizeBytes }];
    }
    return out;
  }

  adviseSequential(): void {
    try {
      fadvise(this.handle.fd, 0, 0, 'sequential');
    } catch {
      // advice only
    }
  }

  async close(): Promise<void> {
    await this.handle.close();
  }
}

export async function readFully(handle: FileHandle, offsetBytes: number, lengthBytes: number): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(lengthBytes);
  let done = 0;
  while (done < lengthBytes) {
    const { bytesRead } = await handle.read(buf, done, lengthBytes - done, offsetBytes + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return done === lengthBytes ? buf : buf.subarray(0, done);
}
