// BlockCompute on worker threads, one per core: tasks go to the least busy worker; results come
// back as transferred buffers. Works from source (vitest, through tsx) and from dist/.
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { StrataError, type ErrorCode } from '../../agent-core/api/errors.js';
import type { BlockCompute, HashedWindow, SealedBlob, SealItem } from '../../agent-core/engine/compute.js';
import type { RepoKeys } from '../../agent-core/repo/crypto.js';
import type { BlobType, Compression } from '../../agent-core/repo/format.js';
import { hashRuns } from './hash-runs.js';
import type { WorkerInit, WorkerRequest } from './compute-worker.js';

interface Pending {
  resolve(value: unknown): void;
  reject(err: unknown): void;
}

type RequestBody = WorkerRequest extends infer R ? (R extends { id: number } ? Omit<R, 'id'> : never) : never;

/** The worker entry: compiled JS beside this file, or (tests running the sources) the .ts through tsx. */
function workerEntry(): { entry: string | URL; eval: boolean } {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const js = path.join(here, 'compute-worker.js');
  if (existsSync(js)) return { entry: js, eval: false };
  // Loader flags do not reach worker threads here, so the worker registers tsx itself.
  const ts = pathToFileURL(path.join(here, 'compute-worker.ts')).href;
  const api = import.meta.resolve('tsx/esm/api');
  return { entry: `import(${JSON.stringify(api)}).then((m) => { m.register(); return import(${JSON.stringify(ts)}); });`, eval: true };
}

/**
 * Windows with at most this many bytes to hash are hashed on the calling thread: a message to a
 * worker and back costs more main-thread time (~0.1 ms) than hashing that much (~3 µs per 4 KiB
 * block). A tracked incremental's windows are mostly a few changed blocks each.
 */
const INLINE_HASH_BYTES = 64 << 10;

export class WorkerPool implements BlockCompute {
  private readonly workers: Worker[] = [];
  private readonly blockKey: Buffer;
  private readonly blockSizeBytes: number;
  private readonly load: number[] = [];
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private failure: Error | null = null;
  private closing = false;
  private readonly inflight = new Set<Promise<unknown>>();

  constructor(keys: RepoKeys, options: { blockSizeBytes: number; zstdLevel: number; threads?: number }) {
    const init: WorkerInit = { encKey: keys.encKey, idKey: keys.idKey, blockSizeBytes: options.blockSizeBytes, zstdLevel: options.zstdLevel };
    this.blockKey = keys.blockKey;
    this.blockSizeBytes = options.blockSizeBytes;
    const { entry, eval: isEval } = workerEntry();
    const threads = options.threads ?? Math.max(1, Math.min(os.availableParallelism(), 8));
    for (let i = 0; i < threads; i++) {
      const w = new Worker(entry, { workerData: init, eval: isEval });
      w.on('message', (msg: { id: number; ok: boolean; result?: unknown; error?: { code: ErrorCode; message: string } }) => {
        const p = this.pending.get(msg.id);
        if (!p) return;
        this.pending.delete(msg.id);
        this.load[i]!--;
        if (msg.ok) p.resolve(msg.result);
        else p.reject(new StrataError(msg.error!.code, msg.error!.message));
      });
      w.on('error', (err) => this.fail(err));
      this.workers.push(w);
      this.load.push(0);
    }
  }

  private fail(err: Error): void {
    this.failure = new StrataError('Internal', `A compute worker stopped: ${err.message}`, { cause: err });
    for (const p of this.pending.values()) p.reject(this.failure);
    this.pending.clear();
  }

  private call<T>(body: RequestBody, transfer: ArrayBuffer[] = []): Promise<T> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.closing) return Promise.reject(new StrataError('Cancelled', 'The compute pool is shutting down.'));
    let best = 0;
    for (let i = 1; i < this.workers.length; i++) if (this.load[i]! < this.load[best]!) best = i;
    const id = this.nextId++;
    const promise = new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.load[best]!++;
      this.workers[best]!.postMessage({ ...body, id }, transfer);
    });
    this.inflight.add(promise);
    const settle = (): void => {
      this.inflight.delete(promise);
    };
    promise.then(settle, settle);
    return promise;
  }

  async hash(window: SharedArrayBuffer, runs: readonly (readonly [number, number])[]): Promise<HashedWindow> {
    let bytes = 0;
    for (const [, l] of runs) bytes += l;
    if (bytes <= INLINE_HASH_BYTES && !this.failure && !this.closing) {
      return hashRuns(window, runs, this.blockSizeBytes, this.blockKey);
    }
    const r = await this.call<{ digests: Uint8Array; zeroMask: Uint8Array }>({ op: 'hash', sab: window, runs: runs.map(([o, l]) => [o, l]) });
    return { digests: Buffer.from(r.digests.buffer, r.digests.byteOffset, r.digests.byteLength), zeroMask: r.zeroMask };
  }

  async seal(window: SharedArrayBuffer, items: readonly SealItem[], inPlace = false): Promise<SealedBlob[]> {
    const rs = await this.call<
      { sealed: Uint8Array | null; storedLength: number; compression: Compression; rawLength: number; digests?: { idHex: string; sealed: Uint8Array } }[]
    >({
      op: 'seal',
      sab: window,
      items: items.map(({ offset, length, type, idHex, digests16 }) => (digests16 ? { offset, length, type, idHex, digests16 } : { offset, length, type, idHex })),
      inPlace,
    });
    return rs.map((r) => ({
      sealed: r.sealed ? Buffer.from(r.sealed.buffer, r.sealed.byteOffset, r.sealed.byteLength) : null,
      storedLength: r.storedLength,
      compression: r.compression,
      rawLength: r.rawLength,
      ...(r.digests ? { digests: { idHex: r.digests.idHex, sealed: Buffer.from(r.digests.sealed.buffer, r.digests.sealed.byteOffset, r.digests.sealed.byteLength) } } : {}),
    }));
  }

  async open(stored: Buffer, type: BlobType, idHex: string, compression: Compression, rawLength: number): Promise<Buffer> {
    const r = await this.call<Uint8Array>({ op: 'open', stored, type, idHex, compression, rawLength });
    return Buffer.from(r.buffer, r.byteOffset, r.byteLength);
  }

  async check(stored: Buffer, type: BlobType, idHex: string, compression: Compression, rawLength: number): Promise<{ digests16: Buffer | null }> {
    const r = await this.call<{ digests16: Uint8Array | null }>({ op: 'check', stored, type, idHex, compression, rawLength });
    return { digests16: r.digests16 ? Buffer.from(r.digests16.buffer, r.digests16.byteOffset, r.digests16.byteLength) : null };
  }

  /**
   * Stops the workers once their running tasks have finished. Terminating a worker in the middle of
   * a native call (hashing, zstd) can abort the whole process, so a cancelled job drains first;
   * tasks are milliseconds long.
   */
  async close(): Promise<void> {
    this.closing = true;
    await Promise.allSettled([...this.inflight]);
    await Promise.all(this.workers.map((w) => w.terminate()));
    this.workers.length = 0;
  }
}
