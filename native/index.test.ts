// The addon against the real kernel: loop devices for geometry and O_DIRECT, a sparse file for
// SEEK_DATA/SEEK_HOLE, a mounted ext4 for freeze/thaw, XFS for reflinks, Node's HMAC for hashing.
import { createHmac, randomBytes } from 'node:crypto';
import { closeSync, constants, openSync, readSync, statSync, writeSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { makeContent, run, Scratch } from '../test-support/disk.js';
import {
  addonVersion,
  cloneFile,
  deviceSizeBytes,
  freeze,
  hashBlocks,
  logicalSectorSize,
  missingAddonMessage,
  nativeAvailable,
  physicalSectorSize,
  punchHole,
  readDirect,
  seekData,
  seekHole,
  thaw,
} from './index.js';

const MiB = 1 << 20;

describe('the native addon', () => {
  const scratch = new Scratch();
  afterAll(() => scratch.cleanup());

  it('loads and names itself', () => {
    expect(nativeAvailable()).toBe(true);
    expect(addonVersion()).toMatch(/^strata-native /);
  });

  it('names the missing piece when the addon cannot load', () => {
    const msg = missingAddonMessage('the file does not exist');
    expect(msg).toContain('native/build/Release/strata_native.node');
    expect(msg).toContain('npm run build:native');
  });

  it('reads the size and sector sizes of loop devices with 512- and 4096-byte sectors', () => {
    const img = scratch.image('geo.img', 8 * MiB);
    for (const sector of [512, 4096]) {
      const dev = scratch.loop(img, { sectorSize: sector });
      const fd = openSync(dev, 'r');
      try {
        expect(deviceSizeBytes(fd)).toBe(8 * MiB);
        expect(logicalSectorSize(fd)).toBe(sector);
        expect(physicalSectorSize(fd)).toBeGreaterThanOrEqual(sector);
      } finally {
        closeSync(fd);
      }
    }
  });

  it('reads with O_DIRECT what a buffered read sees, and refuses unaligned ranges', async () => {
    const img = scratch.path('direct.img');
    const content = makeContent(4 * MiB, 'random', 11);
    const wfd = openSync(img, 'w');
    writeSync(wfd, content);
    closeSync(wfd);
    const dev = scratch.loop(img);
    const fd = openSync(dev, constants.O_RDONLY | constants.O_DIRECT);
    try {
      const buf = await readDirect(fd, MiB, 64 * 1024);
      expect(buf.equals(content.subarray(MiB, MiB + 64 * 1024))).toBe(true);
      const tail = await readDirect(fd, 4 * MiB - 4096, 8192); // short at the end of the device
      expect(tail.length).toBe(4096);
      await expect(readDirect(fd, 100, 4096)).rejects.toMatchObject({ code: 'EINVAL' });
    } finally {
      closeSync(fd);
    }
  });

  it('finds data and holes in a sparse file, and punches a hole', () => {
    const file = scratch.image('sparse.img', 16 * MiB);
    const fd = openSync(file, 'r+');
    try {
      writeSync(fd, makeContent(MiB, 'random', 2), 0, MiB, 4 * MiB);
      expect(seekData(fd, 0)).toBe(4 * MiB);
      expect(seekHole(fd, 4 * MiB)).toBe(5 * MiB);
      expect(seekData(fd, 6 * MiB)).toBe(-1);
      punchHole(fd, 4 * MiB, MiB);
      expect(seekData(fd, 0)).toBe(-1);
      expect(statSync(file).size).toBe(16 * MiB);
    } finally {
      closeSync(fd);
    }
  });

  it('freezes and thaws a mounted ext4; a second freeze reports EBUSY', () => {
    const img = scratch.image('freeze.img', 32 * MiB);
    run('mkfs.ext4', ['-q', '-F', img]);
    const dir = scratch.mount(img, ['-o', 'loop']);
    const fd = openSync(dir, 'r');
    try {
      freeze(fd);
      let second: unknown = null;
      try {
        freeze(fd);
      } catch (err) {
        second = err;
      }
      thaw(fd);
      expect(second).toMatchObject({ code: 'EBUSY', syscall: 'ioctl(FIFREEZE)' });
      expect(() => thaw(fd)).toThrow(); // not frozen any more
    } finally {
      closeSync(fd);
    }
  });

  it('clones a file on XFS and reports EOPNOTSUPP on ext4', () => {
    const xfs = scratch.image('xfs.img', 320 * MiB);
    run('mkfs.xfs', ['-q', '-f', xfs]);
    const xdir = scratch.mount(xfs, ['-o', 'loop']);
    const src = path.join(xdir, 'a');
    const content = makeContent(MiB, 'random', 5);
    const sfd = openSync(src, 'w+');
    writeSync(sfd, content);
    const dfd = openSync(path.join(xdir, 'b'), 'w+');
    try {
      cloneFile(sfd, dfd);
      const back = Buffer.alloc(MiB);
      readSync(dfd, back, 0, MiB, 0);
      expect(back.equals(content)).toBe(true);
    } finally {
      closeSync(sfd);
      closeSync(dfd);
    }
    const ext = scratch.image('ext.img', 32 * MiB);
    run('mkfs.ext4', ['-q', '-F', ext]);
    const edir = scratch.mount(ext, ['-o', 'loop']);
    const e1 = openSync(path.join(edir, 'a'), 'w+');
    const e2 = openSync(path.join(edir, 'b'), 'w+');
    try {
      writeSync(e1, content);
      expect(() => cloneFile(e1, e2)).toThrow(expect.objectContaining({ code: 'EOPNOTSUPP' }));
    } finally {
      closeSync(e1);
      closeSync(e2);
    }
  });

  it('hashes every block like Node\'s HMAC-SHA256, including a short last block, and flags zero blocks', () => {
    const key = randomBytes(32);
    const data = Buffer.concat([randomBytes(8192), Buffer.alloc(4096), randomBytes(1000)]);
    const { digests, zeroMask } = hashBlocks(data, 4096, key);
    expect(digests.length).toBe(4 * 32);
    expect([...zeroMask]).toEqual([0, 0, 1, 0]);
    for (let b = 0; b < 4; b++) {
      const want = createHmac('sha256', key).update(data.subarray(b * 4096, Math.min(data.length, (b + 1) * 4096))).digest();
      expect(digests.subarray(b * 32, b * 32 + 32).equals(want)).toBe(true);
    }
  });

  it('rejects a bad block size or key', () => {
    expect(() => hashBlocks(Buffer.alloc(10), 0, randomBytes(32))).toThrow(/blockSizeBytes/);
    expect(() => hashBlocks(Buffer.alloc(10), 4096, Buffer.alloc(0))).toThrow(/key/);
  });
});
