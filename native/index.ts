// Typed wrapper of the strata_native addon (Node-API, so the same build loads in Node and
// Electron). If the addon is missing, every function throws one sentence naming what to do.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

export type FadviseAdvice = 'normal' | 'sequential' | 'random' | 'willneed' | 'dontneed' | 'noreuse';

interface Addon {
  addonVersion(): string;
  deviceSizeBytes(fd: number): number;
  logicalSectorSize(fd: number): number;
  physicalSectorSize(fd: number): number;
  readDirect(fd: number, offsetBytes: number, lengthBytes: number): Promise<Buffer>;
  fadvise(fd: number, offsetBytes: number, lengthBytes: number, advice: FadviseAdvice): void;
  seekData(fd: number, offsetBytes: number): number;
  seekHole(fd: number, offsetBytes: number): number;
  freeze(fd: number): void;
  thaw(fd: number): void;
  cloneFile(srcFd: number, dstFd: number): void;
  cloneRange(srcFd: number, srcOffsetBytes: number, lengthBytes: number, dstFd: number, dstOffsetBytes: number): void;
  punchHole(fd: number, offsetBytes: number, lengthBytes: number): void;
  zeroOut(fd: number, offsetBytes: number, lengthBytes: number): void;
  hashBlocks(data: Uint8Array, blockSizeBytes: number, key: Uint8Array): { digests: Buffer; zeroMask: Uint8Array };
}

const ADDON_PATH = path.join('native', 'build', 'Release', 'strata_native.node');

/** The project root: the nearest ancestor holding the built addon (source and dist/ layouts alike). */
function findAddon(start: string): string | null {
  for (let dir = start; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, ADDON_PATH);
    if (existsSync(candidate)) return candidate;
    if (path.dirname(dir) === dir) return null;
  }
}

export function missingAddonMessage(cause: string): string {
  return `Strata's native addon (${ADDON_PATH}) is not built or does not load: run \`npm run build:native\` (it needs g++, make, python3, Node's headers and libssl-dev): ${cause}`;
}

function load(): { addon: Addon | null; error: string | null } {
  const file = findAddon(import.meta.dirname);
  if (!file) return { addon: null, error: missingAddonMessage('the file does not exist') };
  try {
    return { addon: createRequire(import.meta.url)(file) as Addon, error: null };
  } catch (err) {
    return { addon: null, error: missingAddonMessage((err as Error).message) };
  }
}

const loaded = load();

function addon(): Addon {
  if (!loaded.addon) throw new Error(loaded.error!);
  return loaded.addon;
}

export function nativeAvailable(): boolean {
  return loaded.addon !== null;
}

export const addonVersion = (): string => addon().addonVersion();
/** Size of a block device in bytes (BLKGETSIZE64). */
export const deviceSizeBytes = (fd: number): number => addon().deviceSizeBytes(fd);
/** Smallest addressable unit of a block device (BLKSSZGET): 512 or 4096. */
export const logicalSectorSize = (fd: number): number => addon().logicalSectorSize(fd);
/** The device's internal write unit (BLKPBSZGET); writes aligned to it avoid read-modify-write. */
export const physicalSectorSize = (fd: number): number => addon().physicalSectorSize(fd);
/** Reads from an O_DIRECT fd into aligned memory on the thread pool; offset and length sector-aligned. */
export const readDirect = async (fd: number, offsetBytes: number, lengthBytes: number): Promise<Buffer> => addon().readDirect(fd, offsetBytes, lengthBytes);
/** Tells the kernel how a range will be read, so it reads ahead or drops pages we will not reuse. */
export const fadvise = (fd: number, offsetBytes: number, lengthBytes: number, advice: FadviseAdvice): void => addon().fadvise(fd, offsetBytes, lengthBytes, advice);
/** Next offset holding data at or after offsetBytes, or -1 if only a hole remains (sparse files). */
export const seekData = (fd: number, offsetBytes: number): number => addon().seekData(fd, offsetBytes);
/** Next hole at or after offsetBytes (the end of the file counts as a hole), or -1. */
export const seekHole = (fd: number, offsetBytes: number): number => addon().seekHole(fd, offsetBytes);
/** Freezes a mounted filesystem (fd of its mount point) so its blocks stop changing. */
export const freeze = (fd: number): void => addon().freeze(fd);
export const thaw = (fd: number): void => addon().thaw(fd);
/** Makes dst share src's blocks (reflink) where the filesystem can (XFS, btrfs). */
export const cloneFile = (srcFd: number, dstFd: number): void => addon().cloneFile(srcFd, dstFd);
export const cloneRange = (srcFd: number, srcOffsetBytes: number, lengthBytes: number, dstFd: number, dstOffsetBytes: number): void =>
  addon().cloneRange(srcFd, srcOffsetBytes, lengthBytes, dstFd, dstOffsetBytes);
/** Deallocates a range of a file, keeping its size: the range reads as zeros. */
export const punchHole = (fd: number, offsetBytes: number, lengthBytes: number): void => addon().punchHole(fd, offsetBytes, lengthBytes);
/** Zeroes a range of a block device (BLKZEROOUT), offloaded to the device where it can. */
export const zeroOut = (fd: number, offsetBytes: number, lengthBytes: number): void => addon().zeroOut(fd, offsetBytes, lengthBytes);
/**
 * HMAC-SHA256 of every blockSizeBytes block of data (the last may be shorter), 32 bytes each,
 * and a flag per block that is 1 when the block is all zeros. Synchronous: call it off the main thread.
 */
export const hashBlocks = (data: Uint8Array, blockSizeBytes: number, key: Uint8Array): { digests: Buffer; zeroMask: Uint8Array } =>
  addon().hashBlocks(data, blockSizeBytes, key);
