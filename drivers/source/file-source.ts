// A regular image file as a BlockSource: positional reads through one reused buffer.
import { open, type FileHandle } from 'node:fs/promises';
import type { BlockSource } from '../../agent-core/block-source.js';
import type { Extent } from '../../agent-core/extents.js';

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
    const length = Math.max(0, Math.min(lengthBytes, this.sizeBytes - offsetBytes));
    const buf = Buffer.allocUnsafe(length);
    let done = 0;
    while (done < length) {
      const { bytesRead } = await this.handle.read(buf, done, length - done, offsetBytes + done);
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    return done === length ? buf : buf.subarray(0, done);
  }

  async allocatedExtents(): Promise<Extent[]> {
    return [{ startBytes: 0, lengthBytes: this.sizeBytes }];
  }

  adviseSequential(): void {}

  async close(): Promise<void> {
    await this.handle.close();
  }
}
