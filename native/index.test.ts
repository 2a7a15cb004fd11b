// The addon against the real kernel: loop devices for geometry, O_DIRECT and BLKZEROOUT, a sparse
// file for SEEK_DATA/SEEK_HOLE, a mounted ext4 for freeze/thaw, XFS for reflinks, Node's HMAC for hashing.
import { createHmac, randomBytes } from 'node:crypto';
import { closeSync, constants, openSync, readFileSync, readSync, statSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { afterAll, describe, expect, it } from 'vitest';
import { makeContent, run, Scratch } from '../test-support/disk.js';
import {
  ADDON_RELATIVE_PATH,
  addonVersion,
  cloneFile,
  cloneRange,
  deviceSizeBytes,
  fadvise,
  freeze,
  hashBlocks,
  hashBlocksWith,
  hashEngine,
  logicalSectorSize,
  missingAddonMessage,
  nativeAvailable,
  physicalSectorSize,
  punchHole,
  readDirect,
  readDirectRuns,
  seekData,
  seekHole,
  thaw,
  zeroOut,
  type HashEngine,
} from './index.js';

const MiB = 1 << 20;

/** WebAssembly's shared memory (this project's TypeScript libraries do not declare WebAssembly). */
const wasm = (globalThis as unknown as { WebAssembly: { Memory: new (d: { initial: number; maximum: number; shared: boolean }) => { buffer: SharedArrayBuffer } } }).WebAssembly;

/** What a call threw, so a test can assert on the error's fields. */
function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected the call to throw');
}

function withFd<T>(file: string, flags: string | number, fn: (fd: number) => T): T {
  const fd = openSync(file, flags);
  try {
    return fn(fd);
  } finally {
    closeSync(fd);
  }
}

describe('the native addon', () => {
  const scratch = new Scratch();
  afterAll(() => scratch.cleanup());

  it('loads and names itself and its hash engine', () => {
    expect(nativeAvailable()).toBe(true);
    expect(addonVersion()).toMatch(/^strata-native \d+$/);
    expect(['sha-ni-x2', 'openssl-evp']).toContain(hashEngine());
  });

  it('names the missing piece and the command that builds it when the addon cannot load', () => {
    const unbuilt = missingAddonMessage('no native/build/Release/strata_native.node above /x');
    expect(unbuilt).toMatch(/^Strata's native addon \(native\/build\/Release\/strata_native\.node\) is not built: run `npm run build:native` \(it needs g\+\+, make, python3/);
    expect(unbuilt).toMatch(/: no native\/build\/Release\/strata_native\.node above \/x$/);
    const broken = missingAddonMessage('libcrypto.so.3: cannot open shared object file', '/opt/strata/' + ADDON_RELATIVE_PATH);
    expect(broken).toContain('(/opt/strata/native/build/Release/strata_native.node) does not load');
    expect(broken).toContain('npm run build:native');
    expect(broken).toMatch(/libcrypto\.so\.3: cannot open shared object file$/);
  });

  it('reads the size and sector sizes of loop devices with 512- and 4096-byte sectors', () => {
    const img = scratch.image('geo.img', 8 * MiB);
    for (const sector of [512, 4096]) {
      const dev = scratch.loop(img, { sectorSize: sector });
      withFd(dev, 'r', (fd) => {
        expect(deviceSizeBytes(fd)).toBe(8 * MiB);
        expect(logicalSectorSize(fd)).toBe(sector);
        expect(physicalSectorSize(fd)).toBe(sector);
      });
    }
  });

  it('reports a geometry ioctl on a regular file as a Node-style ENOTTY', () => {
    const file = scratch.image('plain.img', MiB);
    const err = withFd(file, 'r', (fd) => thrown(() => deviceSizeBytes(fd)));
    expect(err).toBeInstanceOf(Error);
    expect(err).toMatchObject({ code: 'ENOTTY', errno: -25, syscall: 'ioctl(BLKGETSIZE64)', message: expect.stringMatching(/^ENOTTY: .*, ioctl\(BLKGETSIZE64\)$/) });
  });

  it('reads with O_DIRECT what a buffered read sees, short at the end of the device', async () => {
    const img = scratch.path('direct.img');
    const content = makeContent(4 * MiB + 512, 'random', 11);
    writeFileSync(img, content);
    const dev = scratch.loop(img);
    const fd = openSync(dev, constants.O_RDONLY | constants.O_DIRECT);
    try {
      const buf = await readDirect(fd, MiB, 64 * 1024);
      expect(buf.equals(content.subarray(MiB, MiB + 64 * 1024))).toBe(true);
      const tail = await readDirect(fd, 4 * MiB, 8192);
      expect(tail.equals(content.subarray(4 * MiB))).toBe(true);
      expect((await readDirect(fd, 8 * MiB, 4096)).length).toBe(0);
    } finally {
      closeSync(fd);
    }
  });

  it('reads runs with O_DIRECT into shared memory, page-aligned or not, one run larger than the memory a pool thread keeps', async () => {
    const img = scratch.path('runs.img');
    const content = makeContent(24 * MiB, 'random', 12);
    writeFileSync(img, content);
    const dev = scratch.loop(img);
    const fd = openSync(dev, constants.O_RDONLY | constants.O_DIRECT);
    try {
      // A SharedArrayBuffer's memory is malloc's, 16 bytes past a page (runs bounce); a shared
      // WebAssembly memory's is whole pages (runs land in place). 384 pages of 64 KiB: 24 MiB.
      const targets = {
        malloced: Buffer.from(new SharedArrayBuffer(24 * MiB)),
        paged: Buffer.from(new wasm.Memory({ initial: 384, maximum: 384, shared: true }).buffer),
      };
      for (const [name, target] of Object.entries(targets)) {
        for (const runs of [
          [[0, 4096, 8192], [65536, 20 * MiB, MiB], [22 * MiB, 8192, 23 * MiB]],
          [[4096, 4096, 0], [16384, 512 * 1024, 3 * MiB]], // a second batch on the same pool threads
        ]) {
          target.fill(0xee);
          const got = await readDirectRuns(fd, target, new Float64Array(runs.flat()));
          expect([...got], name).toEqual(runs.map(([, l]) => l));
          for (const [at, l, from] of runs) expect(target.subarray(at!, at! + l!).equals(content.subarray(from!, from! + l!)), `${name}: run at ${at}`).toBe(true);
          expect(target[runs[0]![0]! + runs[0]![1]!], `${name}: after the first run`).toBe(0xee);
        }
      }
    } finally {
      closeSync(fd);
    }
  });

  it('refuses O_DIRECT reads not aligned to the logical sector size with EINVAL', async () => {
    const dev = scratch.loop(scratch.image('align.img', 4 * MiB), { sectorSize: 4096 });
    const fd = openSync(dev, constants.O_RDONLY | constants.O_DIRECT);
    try {
      await expect(readDirect(fd, 100, 4096)).rejects.toMatchObject({ code: 'EINVAL', syscall: 'readDirect' });
      // 512-aligned is not enough on a 4096-byte-sector device, and the message says why.
      await expect(readDirect(fd, 512, 4096)).rejects.toMatchObject({
        code: 'EINVAL',
        message: expect.stringContaining('must be multiples of the logical sector size (4096)'),
      });
      await expect(readDirect(fd, 4096, 1000)).rejects.toMatchObject({ code: 'EINVAL' });
      await expect(readDirect(fd, -4096, 4096)).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE' });
      expect((await readDirect(fd, 4096, 4096)).length).toBe(4096);
    } finally {
      closeSync(fd);
    }
  });

  it('finds data and holes in a sparse file, and punches a hole that keeps the size', () => {
    const file = scratch.image('sparse.img', 16 * MiB);
    withFd(file, 'r+', (fd) => {
      writeSync(fd, makeContent(MiB, 'random', 2), 0, MiB, 4 * MiB);
      expect(seekData(fd, 0)).toBe(4 * MiB);
      expect(seekHole(fd, 4 * MiB)).toBe(5 * MiB);
      expect(seekData(fd, 6 * MiB)).toBe(-1);
      expect(seekHole(fd, 6 * MiB)).toBe(6 * MiB);
      expect(seekData(fd, 16 * MiB)).toBe(-1);
      punchHole(fd, 4 * MiB, MiB);
      expect(seekData(fd, 0)).toBe(-1);
    });
    expect(statSync(file).size).toBe(16 * MiB);
    expect(statSync(file).blocks).toBe(0);
    expect(readFileSync(file).every((b) => b === 0)).toBe(true);
  });

  it('accepts every fadvise hint and refuses an unknown one with EINVAL', () => {
    const file = scratch.image('advise.img', MiB);
    withFd(file, 'r', (fd) => {
      for (const advice of ['normal', 'sequential', 'random', 'willneed', 'dontneed', 'noreuse'] as const) {
        expect(() => fadvise(fd, 0, 0, advice)).not.toThrow();
      }
      expect(thrown(() => fadvise(fd, 0, 0, 'later' as never))).toMatchObject({ code: 'EINVAL', syscall: 'posix_fadvise' });
    });
  });

  it('freezes and thaws a mounted ext4; a second freeze reports EBUSY and thawing twice EINVAL', () => {
    const img = scratch.image('freeze.img', 32 * MiB);
    run('mkfs.ext4', ['-q', '-F', img]);
    const dir = scratch.mount(img, ['-o', 'loop']);
    withFd(dir, 'r', (fd) => {
      freeze(fd);
      let second: unknown;
      try {
        second = thrown(() => freeze(fd));
      } finally {
        thaw(fd);
      }
      expect(second).toMatchObject({ code: 'EBUSY', errno: -16, syscall: 'ioctl(FIFREEZE)' });
      expect(thrown(() => thaw(fd))).toMatchObject({ code: 'EINVAL', syscall: 'ioctl(FITHAW)' });
    });
    writeFileSync(path.join(dir, 'after-thaw'), 'writable again');
  });

  it('clones a file and a range on XFS, and reports EOPNOTSUPP on ext4', () => {
    const xfs = scratch.image('xfs.img', 320 * MiB);
    run('mkfs.xfs', ['-q', '-f', xfs]);
    const xdir = scratch.mount(xfs, ['-o', 'loop']);
    const content = makeContent(MiB, 'random', 5);
    writeFileSync(path.join(xdir, 'a'), content);
    withFd(path.join(xdir, 'a'), 'r', (sfd) => {
      withFd(path.join(xdir, 'b'), 'w+', (dfd) => {
        cloneFile(sfd, dfd);
        const back = Buffer.alloc(MiB);
        expect(readSync(dfd, back, 0, MiB, 0)).toBe(MiB);
        expect(back.equals(content)).toBe(true);
      });
      withFd(path.join(xdir, 'c'), 'w+', (dfd) => {
        cloneRange(sfd, 64 * 1024, 128 * 1024, dfd, 4096);
        expect(statSync(path.join(xdir, 'c')).size).toBe(4096 + 128 * 1024);
        const back = Buffer.alloc(128 * 1024);
        readSync(dfd, back, 0, back.length, 4096);
        expect(back.equals(content.subarray(64 * 1024, 192 * 1024))).toBe(true);
        expect(thrown(() => cloneRange(sfd, 100, 4096, dfd, 0))).toMatchObject({ code: 'EINVAL', syscall: 'ioctl(FICLONERANGE)' });
      });
    });

    const ext = scratch.image('ext.img', 32 * MiB);
    run('mkfs.ext4', ['-q', '-F', ext]);
    const edir = scratch.mount(ext, ['-o', 'loop']);
    writeFileSync(path.join(edir, 'a'), content);
    withFd(path.join(edir, 'a'), 'r', (e1) =>
      withFd(path.join(edir, 'b'), 'w+', (e2) => {
        expect(thrown(() => cloneFile(e1, e2))).toMatchObject({ code: 'EOPNOTSUPP', syscall: 'ioctl(FICLONE)' });
      }),
    );
  });

  it('zeroes a sector-aligned range of a block device and refuses an unaligned one', () => {
    const img = scratch.path('zero.img');
    writeFileSync(img, Buffer.alloc(4 * MiB, 0xab));
    const dev = scratch.loop(img);
    withFd(dev, 'r+', (fd) => {
      zeroOut(fd, MiB, MiB);
      expect(thrown(() => zeroOut(fd, 100, 4096))).toMatchObject({ code: 'EINVAL', syscall: 'ioctl(BLKZEROOUT)' });
    });
    const back = readFileSync(img);
    expect(back[MiB - 1]).toBe(0xab);
    expect(back.subarray(MiB, 2 * MiB).every((b) => b === 0)).toBe(true);
    expect(back[2 * MiB]).toBe(0xab);
  });
});

describe('hashBlocks', () => {
  const hmac = (key: Uint8Array, block: Uint8Array): Buffer => createHmac('sha256', key).update(block).digest();
  const engines: HashEngine[] = hashEngine() === 'sha-ni-x2' ? ['sha-ni-x2', 'openssl-evp'] : ['openssl-evp'];

  function expectNodeHmac(engine: HashEngine, data: Uint8Array, blockSizeBytes: number, key: Uint8Array): void {
    const { digests, zeroMask } = hashBlocksWith(engine, data, blockSizeBytes, key);
    const blocks = Math.ceil(data.length / blockSizeBytes);
    expect(digests.length).toBe(blocks * 32);
    expect(zeroMask.length).toBe(blocks);
    for (let b = 0; b < blocks; b++) {
      const block = data.subarray(b * blockSizeBytes, Math.min(data.length, (b + 1) * blockSizeBytes));
      expect(digests.subarray(b * 32, b * 32 + 32).toString('hex'), `${engine}: block ${b} of ${blockSizeBytes} bytes`).toBe(hmac(key, block).toString('hex'));
      expect(zeroMask[b]).toBe(block.every((x) => x === 0) ? 1 : 0);
    }
  }

  it.each(engines)('%s equals Node HMAC-SHA256 per block, including a short last block, and flags zero blocks', (engine) => {
    const key = randomBytes(32);
    const data = Buffer.concat([randomBytes(8192), Buffer.alloc(4096), randomBytes(1000)]);
    const { zeroMask } = hashBlocksWith(engine, data, 4096, key);
    expect([...zeroMask]).toEqual([0, 0, 1, 0]);
    expectNodeHmac(engine, data, 4096, key);
  });

  it.each(engines)('%s equals Node at every SHA-256 padding boundary and key length', (engine) => {
    // 55/56 and 119/120 bytes are where the length field moves into an extra padding block.
    for (const blockSizeBytes of [1, 55, 56, 63, 64, 65, 119, 120, 512, 4096, 65536]) {
      for (const keyBytes of [1, 32, 64]) {
        const data = randomBytes(3 * blockSizeBytes + Math.ceil(blockSizeBytes / 2));
        expectNodeHmac(engine, data, blockSizeBytes, randomBytes(keyBytes));
      }
    }
  });

  it('gives every zero block, short or full, the digest Node computes for it', () => {
    const key = randomBytes(32);
    const data = Buffer.alloc(10 * 4096 + 100); // all zero, with a short zero tail
    data[3 * 4096 + 7] = 1;
    const { digests, zeroMask } = hashBlocks(data, 4096, key);
    expect([...zeroMask]).toEqual([1, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1]);
    expect(digests.subarray(0, 32).equals(hmac(key, Buffer.alloc(4096)))).toBe(true);
    expect(digests.subarray(9 * 32, 10 * 32).equals(hmac(key, Buffer.alloc(4096)))).toBe(true);
    expect(digests.subarray(10 * 32).equals(hmac(key, Buffer.alloc(100)))).toBe(true);
    expect(digests.subarray(3 * 32, 4 * 32).equals(hmac(key, data.subarray(3 * 4096, 4 * 4096)))).toBe(true);
  });

  it('hashes a view into shared memory and returns nothing for empty input', () => {
    const key = randomBytes(32);
    const shared = new SharedArrayBuffer(64 * 1024);
    const view = new Uint8Array(shared, 4096, 16 * 1024);
    view.set(randomBytes(view.length));
    expect(hashBlocks(view, 4096, key).digests.equals(hashBlocks(Buffer.from(view), 4096, key).digests)).toBe(true);
    const empty = hashBlocks(new Uint8Array(0), 4096, key);
    expect(empty.digests.length).toBe(0);
    expect(empty.zeroMask.length).toBe(0);
  });

  it('runs inside a worker thread, where the engine calls it', async () => {
    const addonPath = path.resolve(import.meta.dirname, '..', ADDON_RELATIVE_PATH);
    const key = randomBytes(32);
    const data = randomBytes(3 * 4096);
    const worker = new Worker(
      `const { parentPort, workerData } = require('node:worker_threads');
       const addon = require(workerData.addonPath);
       parentPort.postMessage(addon.hashBlocks(workerData.data, 4096, workerData.key).digests);`,
      { eval: true, workerData: { addonPath, data, key } },
    );
    const digests = await new Promise<Uint8Array>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    await worker.terminate();
    expect(Buffer.from(digests).equals(hashBlocks(data, 4096, key).digests)).toBe(true);
  });

  it('refuses a bad block size, key or data with a coded error', () => {
    expect(thrown(() => hashBlocks(Buffer.alloc(10), 0, randomBytes(32)))).toMatchObject({ code: 'EINVAL', message: expect.stringContaining('blockSizeBytes') });
    expect(thrown(() => hashBlocks(Buffer.alloc(10), 4096, Buffer.alloc(0)))).toMatchObject({ code: 'EINVAL', message: expect.stringContaining('key') });
    expect(thrown(() => hashBlocks(Buffer.alloc(10), 4096, Buffer.alloc(65)))).toMatchObject({ code: 'EINVAL' });
    const wrongType = thrown(() => hashBlocks(new Uint16Array(8) as unknown as Uint8Array, 4096, randomBytes(32)));
    expect(wrongType).toBeInstanceOf(TypeError);
    expect(wrongType).toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' });
    expect(thrown(() => hashBlocks(Buffer.alloc(10), 1.5, randomBytes(32)))).toMatchObject({ code: 'ERR_OUT_OF_RANGE' });
  });
});
