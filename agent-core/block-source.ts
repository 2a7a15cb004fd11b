// The role every readable disk plays for the engine: image files, block devices and, later, tracked
// devices and hypervisor disks. Implementations live in drivers/.

export type SourceKind = 'file' | 'block-device';

export interface BlockSource {
  /** The path the user named, as given. */
  readonly path: string;
  readonly kind: SourceKind;
  readonly sizeBytes: number;
  readonly logicalSectorSize: number;
  readonly physicalSectorSize: number;
  /**
   * Reads exactly lengthBytes at offsetBytes (short only at the end of the source). The returned
   * buffer may be a view into memory the source reuses on the next call.
   */
  read(offsetBytes: number, lengthBytes: number): Promise<Buffer>;
  /** Reads lengthBytes at offsetBytes into target at targetOffset; returns the bytes read (short only at the end). */
  readInto(target: Uint8Array, targetOffset: number, lengthBytes: number, offsetBytes: number): Promise<number>;
  /**
   * Several readInto calls at once, for sources where one call costs more than a small read (O_DIRECT
   * devices: a trip to the native thread pool each): runs are [targetOffset, lengthBytes, offsetBytes].
   * Returns the bytes each run read (short only at the end of the source). Absent elsewhere.
   */
  readRunsInto?(target: Uint8Array, runs: readonly (readonly [number, number, number])[]): Promise<number[]>;
  /** Where the source may hold non-zero data (SEEK_DATA on sparse files); the whole source if unknown. */
  allocatedExtents(): Promise<import('./extents.js').Extent[]>;
  /** Tells the kernel the access pattern; a no-op where not supported. */
  adviseSequential(): void;
  /**
   * Asks the kernel to start reading a range it will be asked for soon (page-cache readahead), so
   * a cold read does not stall the pipeline; advice only, absent where reads bypass the cache.
   */
  prefetch?(offsetBytes: number, lengthBytes: number): void;
  close(): Promise<void>;
}

/**
 * A source whose bytes are computed by read() (a logical volume read through its segments, a fuzzed
 * image, a frozen copy held in memory): readInto copies what read() returns, the whole source may
 * hold data, and there is nothing to advise or close. Subclasses override what they know better.
 */
export abstract class ComputedSource implements BlockSource {
  abstract readonly path: string;
  abstract readonly kind: SourceKind;
  abstract readonly sizeBytes: number;
  abstract readonly logicalSectorSize: number;
  abstract readonly physicalSectorSize: number;

  abstract read(offsetBytes: number, lengthBytes: number): Promise<Buffer>;

  async readInto(target: Uint8Array, targetOffset: number, lengthBytes: number, offsetBytes: number): Promise<number> {
    const data = await this.read(offsetBytes, lengthBytes);
    target.set(data, targetOffset);
    return data.length;
  }

  async allocatedExtents(): Promise<import('./extents.js').Extent[]> {
    return [{ startBytes: 0, lengthBytes: this.sizeBytes }];
  }

  adviseSequential(): void {}

  async close(): Promise<void> {}
}

/** The role every restore target plays: an image file or a block device opened for writing. */
export interface BlockTarget {
  readonly path: string;
  readonly kind: SourceKind;
  readonly sizeBytes: number;
  write(offsetBytes: number, data: Uint8Array): Promise<void>;
  /** Makes [offset, offset+length) read as zeros: a hole in a file, zeroes on a device. */
  zero(offsetBytes: number, lengthBytes: number): Promise<void>;
  /** Flushes to stable storage. */
  sync(): Promise<void>;
  close(): Promise<void>;
}
