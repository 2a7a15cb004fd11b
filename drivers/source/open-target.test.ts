// Restore targets refuse what would destroy data — a mounted device (or one whose partition is
// mounted), a device in use, an existing file, a file behind a loop device, a device too small —
// each with one sentence; and both kinds of target pass the shared target contract.
import { closeSync, constants, openSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { run, Scratch } from '../../test-support/disk.js';
import { runBlockTargetContract } from './block-target-contract.js';
import { openSource } from './open-source.js';
import { openTarget } from './open-target.js';

const MiB = 1 << 20;
const scratch = new Scratch();
afterAll(() => scratch.cleanup());

let made = 0;

runBlockTargetContract(
  'image file',
  async (sizeBytes) => {
    const file = scratch.path(`target-${made++}.img`);
    return { target: await openTarget(file, { sizeBytes, force: false }), readBack: () => readFileSync(file) };
  },
  { sizeBytes: 4 * MiB + 300 },
);

for (const sectorSize of [512, 4096] as const) {
  runBlockTargetContract(
    `block device, ${sectorSize}-byte sectors`,
    async (sizeBytes) => {
      const img = scratch.image(`device-target-${made++}.img`, sizeBytes);
      const dev = scratch.loop(img, { sectorSize });
      return { target: await openTarget(dev, { sizeBytes, force: false }), readBack: () => readFileSync(img) };
    },
    { sizeBytes: 4 * MiB },
  );
}

describe('restore target on a block device', () => {
  it('refuses a mounted device, naming the mount point', async () => {
    const img = scratch.image('mounted.img', 32 * MiB);
    run('mkfs.ext4', ['-q', '-F', img]);
    const dev = scratch.loop(img);
    const dir = scratch.mount(dev);
    await expect(openTarget(dev, { sizeBytes: MiB, force: false })).rejects.toMatchObject({
      name: 'StrataError',
      code: 'DeviceBusy',
      message: `The target ${dev} is mounted at ${dir}; unmount it first.`,
    });
  });

  it('refuses a disk whose partition is mounted, naming the partition', async () => {
    const dev = scratch.loop(scratch.image('partitioned.img', 48 * MiB));
    const part = scratch.partition(dev, 1, MiB, 32 * MiB);
    run('mkfs.ext4', ['-q', '-F', part]);
    const dir = scratch.mount(part);
    await expect(openTarget(dev, { sizeBytes: MiB, force: false })).rejects.toMatchObject({
      code: 'DeviceBusy',
      message: `The target ${dev} (through ${part.slice('/dev/'.length)}) is mounted at ${dir}; unmount it first.`,
    });
  });

  it('refuses a mounted btrfs device, whose mount reports an anonymous device number', async () => {
    const img = scratch.image('btrfs.img', 128 * MiB);
    run('mkfs.btrfs', ['-q', '-f', img]);
    const dev = scratch.loop(img);
    const dir = scratch.mount(dev);
    await expect(openTarget(dev, { sizeBytes: MiB, force: false })).rejects.toMatchObject({ code: 'DeviceBusy', message: expect.stringContaining(`is mounted at ${dir}`) });
  });

  it('opens a mounted device when forced', async () => {
    const img = scratch.image('forced.img', 32 * MiB);
    run('mkfs.ext4', ['-q', '-F', img]);
    const dev = scratch.loop(img);
    scratch.mount(dev);
    const target = await openTarget(dev, { sizeBytes: MiB, force: true });
    expect(target.kind).toBe('block-device');
    await target.close();
  });

  it('refuses a device held open exclusively by another program', async () => {
    const dev = scratch.loop(scratch.image('held.img', 8 * MiB));
    const fd = openSync(dev, constants.O_RDONLY | constants.O_EXCL);
    try {
      await expect(openTarget(dev, { sizeBytes: MiB, force: false })).rejects.toMatchObject({
        code: 'DeviceBusy',
        message: expect.stringContaining('is in use by another program'),
      });
    } finally {
      closeSync(fd);
    }
  });

  it('refuses a device smaller than the snapshot, even when forced', async () => {
    const dev = scratch.loop(scratch.image('small.img', 4 * MiB));
    await expect(openTarget(dev, { sizeBytes: 8 * MiB, force: true })).rejects.toMatchObject({
      code: 'NoSpace',
      message: `The target ${dev} is ${4 * MiB} bytes but the snapshot needs ${8 * MiB} bytes; choose a larger device.`,
    });
  });

  it('reports the whole device as its size and zeroes a range larger than one BLKZEROOUT piece', async () => {
    const img = scratch.path('big-zero.img');
    writeFileSync(img, Buffer.alloc(72 * MiB, 0xee));
    const dev = scratch.loop(img);
    const target = await openTarget(dev, { sizeBytes: 8 * MiB, force: false });
    expect(target.sizeBytes).toBe(72 * MiB);
    await target.zero(MiB + 512, 70 * MiB);
    await target.sync();
    await target.close();
    const back = readFileSync(img);
    expect(back[MiB + 511]).toBe(0xee);
    expect(back.subarray(MiB + 512, 71 * MiB + 512).every((b) => b === 0)).toBe(true);
    expect(back[71 * MiB + 512]).toBe(0xee);
  });
});

describe('restore target as an image file', () => {
  it('refuses an existing file without force and leaves it untouched', async () => {
    const file = scratch.path('exists.img');
    writeFileSync(file, 'data');
    await expect(openTarget(file, { sizeBytes: MiB, force: false })).rejects.toMatchObject({
      code: 'InvalidInput',
      message: `The target file ${file} already exists; choose a new path or pass --force to overwrite it.`,
    });
    expect(readFileSync(file, 'utf8')).toBe('data');
  });

  it('overwrites an existing file when forced, leaving only holes at the snapshot size', async () => {
    const file = scratch.path('overwrite.img');
    writeFileSync(file, Buffer.alloc(2 * MiB, 9));
    const target = await openTarget(file, { sizeBytes: 8 * MiB, force: true });
    await target.close();
    expect(statSync(file).size).toBe(8 * MiB);
    expect(statSync(file).blocks).toBe(0);
  });

  it('accepts an existing empty file, as a tool that made the name would leave it', async () => {
    const file = scratch.image('empty.img', 0);
    const target = await openTarget(file, { sizeBytes: MiB, force: false });
    await target.close();
    expect(statSync(file).size).toBe(MiB);
  });

  it('refuses a file that backs a loop device unless forced', async () => {
    const backing = scratch.image('backing.img', 4 * MiB);
    const dev = scratch.loop(backing);
    await expect(openTarget(backing, { sizeBytes: MiB, force: false })).rejects.toMatchObject({
      code: 'DeviceBusy',
      message: expect.stringContaining(`is attached as ${dev}; detach it (losetup -d) first`),
    });
    const target = await openTarget(backing, { sizeBytes: 4 * MiB, force: true });
    await target.close();
  });

  it('creates a new file sparse at the snapshot size', async () => {
    const file = scratch.path('new.img');
    const target = await openTarget(file, { sizeBytes: 64 * MiB, force: false });
    expect(target.kind).toBe('file');
    await target.write(0, Buffer.alloc(4096, 1));
    await target.close();
    const source = await openSource(file);
    try {
      expect(source.sizeBytes).toBe(64 * MiB);
      expect(await source.allocatedExtents()).toEqual([{ startBytes: 0, lengthBytes: 4096 }]);
    } finally {
      await source.close();
    }
  });

  it('zeroes a file range by punching a hole, not by writing zeros', async () => {
    const file = scratch.path('punch.img');
    const target = await openTarget(file, { sizeBytes: 4 * MiB, force: false });
    await target.write(0, Buffer.alloc(4 * MiB, 3));
    await target.sync();
    await target.zero(MiB, 2 * MiB);
    await target.close();
    expect(statSync(file).blocks * 512).toBe(2 * MiB);
    const back = readFileSync(file);
    expect(back.subarray(MiB, 3 * MiB).every((b) => b === 0)).toBe(true);
    expect(back[3 * MiB]).toBe(3);
  });

  it('refuses a path in a missing folder with NotFound, and a directory with InvalidInput', async () => {
    await expect(openTarget(scratch.path('no-such-dir/x.img'), { sizeBytes: MiB, force: false })).rejects.toMatchObject({
      code: 'NotFound',
      message: expect.stringContaining('no-such-dir of the target does not exist'),
    });
    await expect(openTarget(scratch.dir, { sizeBytes: MiB, force: true })).rejects.toMatchObject({ code: 'InvalidInput' });
  });
});
