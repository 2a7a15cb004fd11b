// Worker thread of the compute pool: hashes blocks with the native addon, compresses with zstd and
// seals with AES-256-GCM, so the main thread only reads, decides and writes.
import { createRequire } from 'node:module';
import { parentPort, workerData } from 'node:worker_threads';
import zstd from 'zstd-napi';
import { StrataError, toStrataError } from '../../agent-core/api/errors.js';
import { deriveKeys, hmac, unseal } from '../../agent-core/repo/crypto.js';
import { BlobType, Compression, LABELS, STORED_DIGEST_BYTES } from '../../agent-core/repo/format.js';
import { blobAad, sealBlob } from '../../agent-core/repo/pack.js';
import { hashBlocks } from '../../native/index.js';
import { hashRuns } from './hash-runs.js';

export interface WorkerInit {
  encKey: Uint8Array | null;
  idKey: Uint8Array;
  blockSizeBytes: number;
  zstdLevel: number;
}

export type WorkerRequest =
  | { id: number; op: 'hash'; sab: SharedArrayBuffer; runs: [number, number][] }
  | { id: number; op: 'seal'; sab: SharedArrayBuffer; items: { offset: number; length: number; type: BlobType; idHex: string; digests16?: Uint8Array }[]; inPlace: boolean }
  | { id: number; op: 'open' | 'check'; stored: Uint8Array; type: BlobType; idHex: string; compression: Compression; rawLength: number };

const init = workerData as WorkerInit;
const keys = deriveKeys(init.encKey ? Buffer.from(init.encKey) : null, Buffer.from(init.idKey));

// One zstd compression context per worker, reused for every blob (making a context costs more than
// compressing a small chunk, and a fragmented disk has thousands), writing into one reused scratch
// buffer: zstd-napi's Compressor allocates a compressBound-sized buffer per call and copies the
// result out of it again, a megabyte of garbage per chunk. Here the only allocation is the exact
// result, which goes to the main thread without a copy. Decompression stays one-shot: measured no
// slower, and it sizes its output from the frame.
const zstdBinding = createRequire(import.meta.url)('zstd-napi/binding.js') as typeof import('zstd-napi/binding.js');
const cctx = new zstdBinding.CCtx();
let scratch = Buffer.allocUnsafeSlow(zstdBinding.compressBound(1 << 20));

/** zstd of raw into the scratch buffer; returns the compressed length. */
function compressToScratch(raw: Uint8Array): number {
  const bound = zstdBinding.compressBound(raw.length);
  if (scratch.length < bound) scratch = Buffer.allocUnsafeSlow(bound);
  return cctx.compress(scratch, raw, init.zstdLevel);
}

const DIGESTS_LABEL = Buffer.from(LABELS.digestsBlob);

/**
 * A chunk's digests blob, made beside the chunk: its id (repository.ts digestsBlobId, docs/FORMAT.md
 * §5) and its sealed bytes, stored uncompressed as the engine's own would be.
 */
function sealDigests(chunkIdHex: string, digests16: Uint8Array): { idHex: string; sealed: Uint8Array } {
  const idHex = hmac(keys.idKey, DIGESTS_LABEL, Buffer.from(chunkIdHex, 'hex')).toString('hex');
  const sealed = sealBlob(keys, BlobType.digests, idHex, Buffer.from(digests16.buffer, digests16.byteOffset, digests16.byteLength));
  // Memory of its own, exactly sized: a small Buffer is a slice of Node's pool, which a message would copy whole.
  return { idHex, sealed: new Uint8Array(sealed) };
}

/** Chunks shorter than this are compressed without a probe: the probe would cost as much. */
const PROBE_MIN_BYTES = 64 << 10;
const PROBE_SAMPLE_BYTES = 4096;
const PROBE_SAMPLES = 8;
/** A sample that shrinks below this share of its size means the chunk is worth compressing. */
const PROBE_SHRINKS = 0.97;

/**
 * Whether compressing the chunk may pay: samples spread over it are compressed, and if none of
 * them shrinks (media, archives, encrypted files), the chunk is stored as it is. Costs about 3 %
 * of compressing an incompressible chunk, which zstd does at ~1 GB/s for nothing.
 */
function worthCompressing(raw: Uint8Array): boolean {
  if (raw.length < PROBE_MIN_BYTES) return true;
  const step = Math.floor((raw.length - PROBE_SAMPLE_BYTES) / (PROBE_SAMPLES - 1));
  for (let i = 0; i < PROBE_SAMPLES; i++) {
    const sample = raw.subarray(i * step, i * step + PROBE_SAMPLE_BYTES);
    if (compressToScratch(sample) < PROBE_SHRINKS * PROBE_SAMPLE_BYTES) return true;
  }
  return false;
}

function seal(sab: SharedArrayBuffer, offset: number, length: number, type: BlobType, idHex: string, inPlace: boolean) {
  const raw = new Uint8Array(sab, offset, length);
  const zLength = worthCompressing(raw) ? compressToScratch(raw) : length;
  const useZ = zLength < length;
  const compression = useZ ? Compression.zstd : Compression.none;
  if (inPlace && !keys.encKey) {
    // Unsealed: the stored bytes are the compressed ones, or the raw ones already where they belong.
    if (useZ) raw.set(scratch.subarray(0, zLength));
    return { sealed: null, storedLength: useZ ? zLength : length, compression, rawLength: length };
  }
  // Out of the scratch buffer or the shared window (reused at once) into memory of its own, exactly sized.
  const body = Buffer.allocUnsafeSlow(useZ ? zLength : length);
  body.set(useZ ? scratch.subarray(0, zLength) : raw);
  const sealed = sealBlob(keys, type, idHex, body);
  if (inPlace && sealed.length <= length) {
    raw.set(sealed);
    return { sealed: null, storedLength: sealed.length, compression, rawLength: length };
  }
  return { sealed, storedLength: sealed.length, compression, rawLength: length };
}

function open(stored: Uint8Array, type: BlobType, idHex: string, compression: Compression, rawLength: number): { raw: Buffer; digests: Buffer | null } {
  const plain = unseal(keys, stored, blobAad(type, Buffer.from(idHex, 'hex')), `Blob ${idHex}`);
  let raw: Buffer;
  try {
    raw = compression === Compression.zstd ? zstd.decompress(plain) : Buffer.from(plain);
  } catch (cause) {
    throw new StrataError('Corrupt', `Blob ${idHex} does not decompress; the repository is damaged (run \`strata verify --read-data\`).`, { cause });
  }
  if (raw.length !== rawLength) throw new StrataError('Corrupt', `Blob ${idHex} has ${raw.length} bytes where ${rawLength} were stored; the repository is damaged.`);
  if (type !== BlobType.data) return { raw, digests: null };
  const { digests } = hashBlocks(raw, init.blockSizeBytes, keys.blockKey);
  if (hmac(keys.idKey, digests).toString('hex') !== idHex) {
    throw new StrataError('Corrupt', `Chunk ${idHex} does not match its id: its content was altered or damaged (run \`strata verify --read-data\`).`);
  }
  return { raw, digests };
}

/** The first STORED_DIGEST_BYTES of each 32-byte digest: what a digests blob holds. */
function truncateDigests(digests: Buffer): Buffer {
  const n = digests.length / 32;
  const out = Buffer.alloc(n * STORED_DIGEST_BYTES);
  for (let i = 0; i < n; i++) digests.copy(out, i * STORED_DIGEST_BYTES, i * 32, i * 32 + STORED_DIGEST_BYTES);
  return out;
}

/** The buffer's memory, when it owns all of it (not a slice of Node's shared pool), to move instead of copy. */
function transferable(buf: Buffer): ArrayBuffer[] {
  return buf.byteOffset === 0 && buf.byteLength === buf.buffer.byteLength && buf.buffer instanceof ArrayBuffer ? [buf.buffer] : [];
}

parentPort!.on('message', (msg: WorkerRequest) => {
  try {
    switch (msg.op) {
      case 'hash': {
        const r = hashRuns(msg.sab, msg.runs, init.blockSizeBytes, keys.blockKey);
        parentPort!.postMessage({ id: msg.id, ok: true, result: r });
        break;
      }
      case 'seal': {
        const rs = msg.items.map((i) => {
          const r = seal(msg.sab, i.offset, i.length, i.type, i.idHex, msg.inPlace);
          return i.digests16 ? { ...r, digests: sealDigests(i.idHex, i.digests16) } : r;
        });
        parentPort!.postMessage({ id: msg.id, ok: true, result: rs }, rs.flatMap((r) => (r.sealed ? transferable(r.sealed) : [])));
        break;
      }
      case 'open': {
        const { raw } = open(msg.stored, msg.type, msg.idHex, msg.compression, msg.rawLength);
        parentPort!.postMessage({ id: msg.id, ok: true, result: raw }, transferable(raw));
        break;
      }
      case 'check': {
        const { digests } = open(msg.stored, msg.type, msg.idHex, msg.compression, msg.rawLength);
        parentPort!.postMessage({ id: msg.id, ok: true, result: { digests16: digests ? truncateDigests(digests) : null } });
        break;
      }
    }
  } catch (err) {
    const e = toStrataError(err, 'A compute task');
    parentPort!.postMessage({ id: msg.id, ok: false, error: { code: e.code, message: e.message } });
  }
});
