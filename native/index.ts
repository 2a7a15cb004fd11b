// Typed wrapper of the strata_native addon (Node-API, so one build loads in Node, Electron and
// worker threads). If the addon is missing, every function throws one sentence saying what to do.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

export type FadviseAdvice = 'normal' | 'sequential' | 'random' | 'willneed' | 'dontneed' | 'noreuse';

/** How hashBlocks computes: two blocks at a time on x86 SHA extensions, or OpenSSL's EVP anywhere. */
export type HashEngine = 'sha-ni-x2' | 'openssl-evp';

export interface BlockHashes {
  /** 32 bytes per block, in block order. */
  readonly digests: Buffer;
  /** 1 where the block is all zero bytes, else 0; one entry per block. */
  readonly zeroMask: Uint8Array;
}

/** Where one block tracepoint's fields sit in its raw record (events/block/<name>/format), and its event id. */
export interface BpfTracepointLayout {
  readonly id: number;
  readonly devOffset: number;
  readonly sectorOffset: number;
  readonly nrSectorOffset: number;
  readonly rwbsOffset: number;
}

/**
 * Where the programs read an event's fields in the kernel's own structures (byte offsets from BTF),
 * for the tp_btf attachment: the programs receive block_bio_queue's `struct bio *` and
 * block_rq_complete's `struct request *` and follow bio->bi_bdev->bd_disk and rq->q->disk to the
 * disk's major and first minor.
 */
export interface BpfKernelOffsets {
  /** vmlinux BTF ids of the typedefs btf_trace_block_bio_queue and btf_trace_block_rq_complete. */
  readonly queueId: number;
  readonly completeId: number;
  /** REQ_OP_MASK: the operation's bits of bi_opf and cmd_flags. */
  readonly opMask: number;
  readonly bioBdev: number;
  readonly bioOpf: number;
  readonly bioSector: number;
  readonly bioSize: number;
  readonly bdevDisk: number;
  readonly diskMajor: number;
  readonly diskFirstMinor: number;
  readonly rqQueue: number;
  readonly rqSector: number;
  readonly rqCmdFlags: number;
  readonly queueDisk: number;
}

interface BpfTrackerCommon {
  /** The whole disk's device number. */
  readonly diskMajor: number;
  readonly diskMinor: number;
  /** The tracked range of the disk, [startSector, endSector) in 512-byte sectors. */
  readonly startSector: number;
  readonly endSector: number;
  /** One bit of the kernel's bitmap covers 2^blockShift sectors of the range (3: 4 KiB). */
  readonly blockShift: number;
  /** Capacity of the kernel's hash map of wide writes (64 blocks or more; distinct ranges between two drains). */
  readonly maxEntries: number;
}

/** Attached as tp_btf programs (kernels with BTF), or as tracepoint programs on perf events (the records' layouts). */
export type BpfTrackerOptions =
  | (BpfTrackerCommon & { readonly btf: BpfKernelOffsets })
  | (BpfTrackerCommon & {
      readonly btf?: undefined;
      /** The whole disk's dev_t as the tracepoint records carry it: major << 20 | minor. */
      readonly devT: number;
      readonly queue: BpfTracepointLayout;
      readonly complete: BpfTracepointLayout;
    });

/** What one drain took out of the kernel; the counters are running totals since bpfTrackerOpen. */
export interface BpfTrackerDrain {
  /** Pairs (absolute disk sector, sector count): the runs of the bitmap (whole blocks) and the wide writes, since the last drain. */
  readonly sectors: Float64Array;
  /** Wide writes the kernel could not record (the hash map was full). */
  readonly overflows: number;
  /** Zero-length flushes seen (at queue and at completion). */
  readonly flushes: number;
  /** Reads of exactly startSector seen at queue: the sentinel reads that prove attachment. */
  readonly sentinels: number;
  /** Tracepoint hits the kernel did not run the queue program for (another BPF program was running on that CPU). */
  readonly queueMisses: number;
  /** The same for the completion program (typically a completion interrupt landing on a running BPF program). */
  readonly completeMisses: number;
  /** Runs of each program and the nanoseconds spent in them, counted only while the sysctl kernel.bpf_stats_enabled is 1. */
  readonly queueRuns: number;
  readonly queueRunNs: number;
  readonly completeRuns: number;
  readonly completeRunNs: number;
}

/** A loaded BPF program as the kernel describes it (any process's, e.g. bpftrace's). */
export interface BpfProgramInfo {
  /** The name its loader gave it, at most 15 bytes. */
  readonly name: string;
  /** bpf_prog_type (5: tracepoint). */
  readonly type: number;
  /** Runs the kernel skipped because a BPF program was already running on that CPU. */
  readonly misses: number;
  /** Runs, counted only while the sysctl kernel.bpf_stats_enabled is 1. */
  readonly runs: number;
}

/** An open in-kernel tracker: maps, programs and perf events, closed by bpfTrackerClose or when collected. */
export type BpfTrackerHandle = { readonly __brand: 'BpfTrackerHandle' };

interface Addon {
  addonVersion(): string;
  deviceSizeBytes(fd: number): number;
  logicalSectorSize(fd: number): number;
  physicalSectorSize(fd: number): number;
  readDirect(fd: number, offsetBytes: number, lengthBytes: number): Promise<Buffer>;
  readDirectRuns(fd: number, target: Uint8Array, runs: Float64Array): Promise<Float64Array>;
  fadvise(fd: number, offsetBytes: number, lengthBytes: number, advice: FadviseAdvice): void;
  seekData(fd: number, offsetBytes: number): number;
  seekHole(fd: number, offsetBytes: number): number;
  freeze(fd: number): void;
  thaw(fd: number): void;
  cloneFile(srcFd: number, dstFd: number): void;
  cloneRange(srcFd: number, srcOffsetBytes: number, lengthBytes: number, dstFd: number, dstOffsetBytes: number): void;
  punchHole(fd: number, offsetBytes: number, lengthBytes: number): void;
  zeroOut(fd: number, offsetBytes: number, lengthBytes: number): void;
  hashBlocks(data: Uint8Array, blockSizeBytes: number, key: Uint8Array, engine?: HashEngine): BlockHashes;
  hashEngine(): HashEngine;
  bpfTrackerOpen(options: BpfTrackerOptions): BpfTrackerHandle;
  bpfTrackerDrain(handle: BpfTrackerHandle): BpfTrackerDrain;
  bpfTrackerClose(handle: BpfTrackerHandle): void;
  bpfTrackerSupported(): string | null;
  bpfProgramInfo(id: number): BpfProgramInfo | null;
  bpfTrackerArmCompletion(handle: BpfTrackerHandle, armed: boolean): void;
}

/** Where the build puts the addon, relative to the project root. */
export const ADDON_RELATIVE_PATH = 'native/build/Release/strata_native.node';

/**
 * The sentence every function throws when the addon cannot be used. foundAt is the file when it
 * exists but does not load (a stale build, a missing libcrypto), null when it was never built.
 */
export function missingAddonMessage(cause: string, foundAt: string | null = null): string {
  const needs = "it needs g++, make, python3, Node's headers and libssl-dev";
  if (foundAt === null) {
    return `Strata's native addon (${ADDON_RELATIVE_PATH}) is not built: run \`npm run build:native\` (${needs}): ${cause}`;
  }
  return `Strata's native addon (${foundAt}) does not load: rebuild it with \`npm run build:native\` (${needs}): ${cause}`;
}

/** The built addon in the nearest ancestor of start that has one: the same search works from native/ and dist/native/. */
function findAddon(start: string): string | null {
  for (let dir = start; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, ...ADDON_RELATIVE_PATH.split('/'));
    if (existsSync(candidate)) return candidate;
    if (path.dirname(dir) === dir) return null;
  }
}

function load(): { addon: Addon } | { error: string } {
  const file = findAddon(import.meta.dirname);
  if (file === null) return { error: missingAddonMessage(`no ${ADDON_RELATIVE_PATH} above ${import.meta.dirname}`) };
  try {
    return { addon: createRequire(import.meta.url)(file) as Addon };
  } catch (err) {
    return { error: missingAddonMessage(err instanceof Error ? err.message : String(err), file) };
  }
}

const loaded = load();

function addon(): Addon {
  if ('addon' in loaded) return loaded.addon;
  throw Object.assign(new Error(loaded.error), { code: 'ERR_STRATA_NATIVE_MISSING' });
}

/** Lets callers offer a slower path (or a clear message) instead of failing on first use. */
export function nativeAvailable(): boolean {
  return 'addon' in loaded;
}

/** Names the build in logs and bug reports, so a stale addon is visible. */
export const addonVersion = (): string => addon().addonVersion();

/** A block device's size in bytes (BLKGETSIZE64): stat reports 0 for devices. */
export const deviceSizeBytes = (fd: number): number => addon().deviceSizeBytes(fd);

/** The device's smallest addressable unit (BLKSSZGET), 512 or 4096: O_DIRECT I/O must align to it. */
export const logicalSectorSize = (fd: number): number => addon().logicalSectorSize(fd);

/** The device's internal write unit (BLKPBSZGET): writes aligned to it avoid read-modify-write. */
export const physicalSectorSize = (fd: number): number => addon().physicalSectorSize(fd);

/**
 * Several O_DIRECT reads in one libuv task, each into `target` at its own offset. `runs` holds
 * [targetOffset, lengthBytes, offsetBytes] triples, offsets and lengths multiples of the logical
 * sector size. Resolves to the bytes each run read: less than asked only where the device ends
 * (the runs after it then read nothing). The caller must not touch those bytes of `target` meanwhile.
 */
export const readDirectRuns = async (fd: number, target: Uint8Array, runs: Float64Array): Promise<Float64Array> => addon().readDirectRuns(fd, target, runs);

/** O_DIRECT read on the thread pool into 4096-aligned memory, so a backup neither fills nor trusts the page cache; sector-aligned ranges only (EINVAL), short only at the end. */
export const readDirect = async (fd: number, offsetBytes: number, lengthBytes: number): Promise<Buffer> =>
  addon().readDirect(fd, offsetBytes, lengthBytes);

/** Tells the kernel how a range will be read (length 0 = to the end), so it reads ahead or drops pages. */
export const fadvise = (fd: number, offsetBytes: number, lengthBytes: number, advice: FadviseAdvice): void =>
  addon().fadvise(fd, offsetBytes, lengthBytes, advice);

/** The first offset at or after offsetBytes that holds data, or -1 if only holes remain: sparse images skip holes. */
export const seekData = (fd: number, offsetBytes: number): number => addon().seekData(fd, offsetBytes);

/** The first hole at or after offsetBytes (the end of the file counts as one), or -1 past the end. */
export const seekHole = (fd: number, offsetBytes: number): number => addon().seekHole(fd, offsetBytes);

/** Freezes the filesystem mounted at fd's directory (FIFREEZE) so its blocks hold still for a snapshot; EBUSY if frozen. */
export const freeze = (fd: number): void => addon().freeze(fd);

/** Lets a frozen filesystem write again (FITHAW); EINVAL if it was not frozen. */
export const thaw = (fd: number): void => addon().thaw(fd);

/** Makes dstFd share all of srcFd's blocks (FICLONE reflink): an instant copy on XFS and btrfs, EOPNOTSUPP elsewhere. */
export const cloneFile = (srcFd: number, dstFd: number): void => addon().cloneFile(srcFd, dstFd);

/** Shares one block-aligned range of srcFd into dstFd (FICLONERANGE): copies a chunk without moving bytes. */
export const cloneRange = (srcFd: number, srcOffsetBytes: number, lengthBytes: number, dstFd: number, dstOffsetBytes: number): void =>
  addon().cloneRange(srcFd, srcOffsetBytes, lengthBytes, dstFd, dstOffsetBytes);

/** Deallocates a range of a file and keeps its size, so the range reads as zeros and costs no space. */
export const punchHole = (fd: number, offsetBytes: number, lengthBytes: number): void => addon().punchHole(fd, offsetBytes, lengthBytes);

/** Zeroes a sector-aligned range of a block device (BLKZEROOUT), offloaded to the device where it can. */
export const zeroOut = (fd: number, offsetBytes: number, lengthBytes: number): void => addon().zeroOut(fd, offsetBytes, lengthBytes);

/** HMAC-SHA256(key, block) per block (the last may be short) plus zero flags: change detection in one synchronous call, made from worker threads. */
export const hashBlocks = (data: Uint8Array, blockSizeBytes: number, key: Uint8Array): BlockHashes =>
  addon().hashBlocks(data, blockSizeBytes, key);

/** The engine hashBlocks uses on this CPU, for logs and benchmarks. */
export const hashEngine = (): HashEngine => addon().hashEngine();

/** hashBlocks on a chosen engine, so tests and benchmarks cover both; EOPNOTSUPP if this CPU lacks it. */
export const hashBlocksWith = (engine: HashEngine, data: Uint8Array, blockSizeBytes: number, key: Uint8Array): BlockHashes =>
  addon().hashBlocks(data, blockSizeBytes, key, engine);

/**
 * Loads the block-tracking eBPF programs for one disk range and attaches them to block_bio_queue
 * and block_rq_complete. Throws a system error, or ERR_STRATA_BPF_VERIFIER with the verifier's log.
 */
export const bpfTrackerOpen = (options: BpfTrackerOptions): BpfTrackerHandle => addon().bpfTrackerOpen(options);

/** Atomically takes every mark out of the kernel map (lookup-and-delete per bucket) and reads the counters. */
export const bpfTrackerDrain = (handle: BpfTrackerHandle): BpfTrackerDrain => addon().bpfTrackerDrain(handle);

/** Detaches and frees the tracker; safe to call twice (a collected handle is closed too). */
export const bpfTrackerClose = (handle: BpfTrackerHandle): void => addon().bpfTrackerClose(handle);

/** Null when this process may use eBPF (it can create a map), else one sentence why not. */
export const bpfTrackerSupported = (): string | null => addon().bpfTrackerSupported();

/** Attaches the completion program (armed) or detaches it; the queue program stays attached. Idempotent. */
export const bpfTrackerArmCompletion = (handle: BpfTrackerHandle, armed: boolean): void => addon().bpfTrackerArmCompletion(handle, armed);

/** The program with this id (from /proc/PID/fdinfo's prog_id), or null once it has been unloaded. */
export const bpfProgramInfo = (id: number): BpfProgramInfo | null => addon().bpfProgramInfo(id);
