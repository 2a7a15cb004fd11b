// BlockDeviceSource on loop devices: the shared source contract at 512- and 4096-byte sectors
// (one device ending on a sector that is not a whole 4 KiB page), O_DIRECT, and geometry.
import { writeFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { Scratch } from '../../test-support/disk.js';
import { runBlockSourceContract } from './block-source-contract.js';
import { BlockDeviceSource } from './block-device-source.js';

const MiB = 1 << 20;
const scratch = new Scratch();
afterAll(() => scratch.cleanup());

let made = 0;

function loopWith(content: Buffer, sectorSize: 512 | 4096): string {
  const file = scratch.path(`device-${made++}.img`);
  writeFileSync(file, content);
  return scratch.loop(file, { sectorSize });
}

runBlockSourceContract('BlockDeviceSource, 512-byte sectors, ragged end', async (content) => BlockDeviceSource.open(loopWith(content, 512)), {
  sizeBytes: 4 * MiB + 512,
  batchedReads: true,
});

runBlockSourceContract('BlockDeviceSource, 4096-byte sectors', async (content) => BlockDeviceSource.open(loopWith(content, 4096)), {
  sizeBytes: 4 * MiB,
  batchedReads: true,
});

describe('BlockDeviceSource', () => {
  it('reads with O_DIRECT and reports the geometry of a 4096-byte-sector device', async () => {
    const source = await BlockDeviceSource.open(loopWith(Buffer.alloc(2 * MiB, 7), 4096));
    try {
      expect(source.ioMode).toBe('direct');
      expect(source.kind).toBe('block-device');
      expect(source.sizeBytes).toBe(2 * MiB);
      expect(source.logicalSectorSize).toBe(4096);
      expect(source.physicalSectorSize).toBe(4096);
      expect(await source.allocatedExtents()).toEqual([{ startBytes: 0, lengthBytes: 2 * MiB }]);
      // A range inside one sector comes from the whole sector, sliced.
      expect([...(await source.read(4097, 3))]).toEqual([7, 7, 7]);
    } finally {
      await source.close();
    }
  });
});
