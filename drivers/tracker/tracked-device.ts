// What the kernel's block tracepoints need to know about the device a tracker watches: the whole
// disk's device number (events carry it, even for writes made through a partition) and the sector
// range the device occupies on that disk.
import { realpathSync, readFileSync, existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { StrataError } from '../../agent-core/api/errors.js';

/** Block-layer events count in 512-byte sectors whatever the device's logical sector size. */
export const TRACE_SECTOR_BYTES = 512;

export interface TrackedDevice {
  /** The path the caller gave, resolved (symlinks followed). */
  readonly path: string;
  /** Kernel name: loop0, loop0p1, nvme0n1p2. */
  readonly name: string;
  /** Kernel name of the whole disk the events are reported against (the same as name for a disk). */
  readonly diskName: string;
  readonly diskMajor: number;
  readonly diskMinor: number;
  /** The whole disk's dev_t as the tracepoints print it: major << 20 | minor. */
  readonly diskDevT: number;
  readonly isPartition: boolean;
  /** First sector of the device on its disk (0 for a whole disk), from /sys/class/block/X/start. */
  readonly startSector: number;
  readonly sizeSectors: number;
  readonly sizeBytes: number;
}

/** Byte range [offsetBytes, offsetBytes + lengthBytes) of a device, as a change map marks it. */
export interface DeviceRange {
  readonly offsetBytes: number;
  readonly lengthBytes: number;
}

/** Looks a block device up in sysfs; throws NotFound or InvalidInput for anything else. */
export function resolveTrackedDevice(devicePath: string): TrackedDevice {
  let real: string;
  try {
    real = realpathSync(devicePath);
  } catch (cause) {
    throw new StrataError('NotFound', `The device ${devicePath} does not exist.`, { cause });
  }
  const st = statSync(real);
  if (!st.isBlockDevice()) {
    throw new StrataError('InvalidInput', `${devicePath} is not a block device; only block devices can be tracked live.`);
  }
  const major = (st.rdev >>> 8) & 0xfff;
  const minor = (st.rdev & 0xff) | ((st.rdev >> 12) & 0xfff00);
  const sysDir = realpathSync(`/sys/dev/block/${major}:${minor}`);
  const name = path.basename(sysDir);
  const isPartition = existsSync(path.join(sysDir, 'partition'));
  const diskDir = isPartition ? path.dirname(sysDir) : sysDir;
  const [diskMajor, diskMinor] = readSys(diskDir, 'dev').split(':').map(Number) as [number, number];
  const startSector = isPartition ? Number(readSys(sysDir, 'start')) : 0;
  const sizeSectors = Number(readSys(sysDir, 'size'));
  return {
    path: real,
    name,
    diskName: path.basename(diskDir),
    diskMajor,
    diskMinor,
    diskDevT: diskMajor * 2 ** 20 + diskMinor,
    isPartition,
    startSector,
    sizeSectors,
    sizeBytes: sizeSectors * TRACE_SECTOR_BYTES,
  };
}

/**
 * Turns a disk-relative event (absolute sector, sector count) into a byte range of the tracked
 * device, clipped to it; undefined when the event lies outside (another partition of the disk).
 */
export function eventRange(device: TrackedDevice, sector: number, sectors: number): DeviceRange | undefined {
  const first = Math.max(sector, device.startSector);
  const end = Math.min(sector + sectors, device.startSector + device.sizeSectors);
  if (end <= first) return undefined;
  return { offsetBytes: (first - device.startSector) * TRACE_SECTOR_BYTES, lengthBytes: (end - first) * TRACE_SECTOR_BYTES };
}

function readSys(dir: string, file: string): string {
  return readFileSync(path.join(dir, file), 'utf8').trim();
}
