// openSource picks the driver from what the path is and refuses the rest with one sentence each.
import { writeFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { Scratch } from '../../test-support/disk.js';
import { openSource } from './open-source.js';

const MiB = 1 << 20;

describe('openSource', () => {
  const scratch = new Scratch();
  afterAll(() => scratch.cleanup());

  it('opens an image file as a file source and a block device as a device source', async () => {
    const img = scratch.path('disk.img');
    writeFileSync(img, Buffer.alloc(2 * MiB, 1));
    const file = await openSource(img);
    expect(file.kind).toBe('file');
    expect(file.sizeBytes).toBe(2 * MiB);
    await file.close();
    const device = await openSource(scratch.loop(img));
    expect(device.kind).toBe('block-device');
    expect(device.sizeBytes).toBe(2 * MiB);
    await device.close();
  });

  it('refuses a missing path with NotFound and says what to give', async () => {
    await expect(openSource(scratch.path('missing.img'))).rejects.toMatchObject({
      name: 'StrataError',
      code: 'NotFound',
      message: expect.stringMatching(/missing\.img does not exist; give a disk image file or a block device/),
    });
  });

  it('refuses a directory and a character device with InvalidInput naming what they are', async () => {
    await expect(openSource(scratch.dir)).rejects.toMatchObject({ code: 'InvalidInput', message: expect.stringContaining('is a directory; give a disk image') });
    await expect(openSource('/dev/null')).rejects.toMatchObject({ code: 'InvalidInput', message: expect.stringContaining('is a character device') });
  });
});
