// Restore targets refuse what would destroy data: a mounted device, a device in use, an existing
// file, a file backing a loop device, and a device too small — each with one sentence.
import { openSync, closeSync, constants, readFileSync, writeFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { run, Scratch } from '../../test-support/disk.js';
import { openSource } from './open-source.js';
import { openTarget } from './open-target.js';

const MiB = 1 << 20;

describe('restore targets', () => {
  const scratch = new Scratch();
  afterAll(() => scratch.cleanup());

  it('refuse a mounted device, naming the mount point', async () => {
    const img = scratch.image('mounted.img', 32 * MiB);
    run('mkfs.ext4', ['-q', '-F', img]);
    const dev = scratch.loop(img);
    const dir = scratch.mount(dev);
    await expect(openTarget(dev, { sizeBytes: MiB, force: false })).rejects.toMatchObject({ code: 'DeviceBusy', message: expect.stringContaining(dir) });
  });

  it('refuse a device held open exclusively by another program', async () => {
    const dev = scratch.loop(scratch.image('held.img', 8 * MiB));
    const fd = openSync(dev, constants.O_RDONLY | constants.O_EXCL);
    try {
      await expect(openTarget(dev, { sizeBytes: MiB, force: false })).rejects.toMatchObject({ code: 'DeviceBusy' });
    } finally {
      closeSync(fd);
    }
  });

  it('refuse a device smaller than the snapshot, even when forced', async () => {
    const dev = scratch.loop(scratch.image('small.img', 4 * MiB));
    await expect(openTarget(dev, { sizeBytes: 8 * MiB, force: true })).rejects.toMatchObject({ code: 'NoSpace', message: expect.stringContaining('larger device') });
  });

  it('write and zero a free device', async () => {
    const img = scratch.image('free.img', 8 * MiB);
    writeFileSync(img, Buffer.alloc(8 * MiB, 0xee));
    const dev = scratch.loop(img);
    const t = await openTarget(dev, { sizeBytes: 8 * MiB, force: false });
    await t.write(MiB, Buffer.alloc(4096, 0x11));
    await t.zero(2 * MiB, MiB);
    await t.sync();
    await t.close();
    const back = readFileSync(img);
    expect(back[MiB]).toBe(0x11);
    expect(back.subarray(2 * MiB, 3 * MiB).every((b) => b === 0)).toBe(true);
    expect(back[3 * MiB]).toBe(0xee);
  });

  it('refuse an existing file without force, and a file that backs a loop device', async () => {
    const file = scratch.path('exists.img');
    writeFileSync(file, 'data');
    await expect(openTarget(file, { sizeBytes: MiB, force: false })).rejects.toMatchObject({ code: 'InvalidInput', message: expect.stringContaining('--force') });
    expect(readFileSync(file, 'utf8')).toBe('data');
    const backing = scratch.image('backing.img', 4 * MiB);
    scratch.loop(backing);
    await expect(openTarget(backing, { sizeBytes: MiB, force: false })).rejects.toMatchObject({ code: 'DeviceBusy' });
  });

  it('create a new file sparse at the snapshot size', async () => {
    const file = scratch.path('new.img');
    const t = await openTarget(file, { sizeBytes: 64 * MiB, force: false });
    await t.write(0, Buffer.alloc(4096, 1));
    await t.close();
    const src = await openSource(file);
    expect(src.sizeBytes).toBe(64 * MiB);
    expect(await src.allocatedExtents()).toEqual([{ startBytes: 0, lengthBytes: 4096 }]);
    await src.close();
  });
});

describe('sources', () => {
  const scratch = new Scratch();
  afterAll(() => scratch.cleanup());

  it('open a block device with its size and read it like the file behind it', async () => {
    const img = scratch.image('dev.img', 8 * MiB);
    const content = Buffer.alloc(8 * MiB);
    for (let i = 0; i < content.length; i += 512) content.writeUInt32LE(i, i);
    writeFileSync(img, content);
    const dev = scratch.loop(img, { sectorSize: 4096 });
    const src = await openSource(dev);
    expect(src.kind).toBe('block-device');
    expect(src.sizeBytes).toBe(8 * MiB);
    expect(src.logicalSectorSize).toBe(4096);
    // An unaligned range is served from the aligned superset.
    expect((await src.read(1000, 5000)).equals(content.subarray(1000, 6000))).toBe(true);
    await src.close();
  });

  it('refuse a directory and a missing path with one sentence', async () => {
    await expect(openSource(scratch.dir)).rejects.toMatchObject({ code: 'InvalidInput' });
    await expect(openSource(scratch.path('missing'))).rejects.toMatchObject({ code: 'NotFound' });
  });
});
