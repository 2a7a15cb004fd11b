// The shared suite every BlockTarget runs (image file, block device): writes land where asked, zero
// clears aligned and ragged ranges without touching their neighbours, and all of it survives
// sync and close. A new target is a new file plus one call.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { BlockTarget } from '../../agent-core/block-source.js';

export interface TargetFixture {
  readonly target: BlockTarget;
  /** The target's bytes as stored (the image, or the file behind a loop device), read after close. */
  readBack(): Buffer;
}

export interface TargetContractOptions {
  /** The size the suite asks for; the fixture's storage must hold at least this. */
  readonly sizeBytes: number;
}

/** Runs the contract on targets from openFixture(sizeBytes); the suite closes every target it opens. */
export function runBlockTargetContract(name: string, openFixture: (sizeBytes: number) => Promise<TargetFixture>, options: TargetContractOptions): void {
  const size = options.sizeBytes;

  /** Writes model through the target in uneven pieces, so both share the same starting bytes. */
  async function fill(target: BlockTarget, model: Buffer): Promise<void> {
    for (let at = 0; at < model.length; at += 1 << 20) await target.write(at, model.subarray(at, Math.min(model.length, at + (1 << 20))));
  }

  describe(`block target contract: ${name}`, () => {
    it('holds at least the size asked for', async () => {
      const { target } = await openFixture(size);
      try {
        expect(target.sizeBytes).toBeGreaterThanOrEqual(size);
      } finally {
        await target.close();
      }
    });

    it('stores writes at aligned and unaligned offsets, through sync and close', async () => {
      const fixture = await openFixture(size);
      const model = randomBytes(size);
      await fill(fixture.target, model);
      const writes: Array<[number, number]> = [
        [0, 4096],
        [8192, 65536],
        [1001, 3333],
        [size - 700, 700],
      ];
      for (const [offset, length] of writes) {
        const data = randomBytes(length);
        await fixture.target.write(offset, data);
        data.copy(model, offset);
      }
      await fixture.target.sync();
      await fixture.target.close();
      const back = fixture.readBack();
      expect(back.length).toBeGreaterThanOrEqual(size);
      expect(back.subarray(0, size).equals(model)).toBe(true);
    });

    it('zeroes aligned and ragged ranges and leaves their neighbours alone', async () => {
      const fixture = await openFixture(size);
      const model = randomBytes(size);
      await fill(fixture.target, model);
      const ranges: Array<[number, number]> = [
        [1 << 20, 1 << 20], // whole sectors and pages
        [5000, 20000], // ragged head and tail
        [100, 7], // inside one sector
        [3 << 20, 0], // nothing
        [size - 1000, 1000], // up to the end
      ];
      for (const [offset, length] of ranges) {
        await fixture.target.zero(offset, length);
        model.fill(0, offset, offset + length);
      }
      await fixture.target.sync();
      await fixture.target.close();
      const back = fixture.readBack().subarray(0, size);
      const firstDifference = back.findIndex((b, i) => b !== model[i]);
      expect(firstDifference, 'first byte that differs from the model').toBe(-1);
    });

    it('stores a write that follows a zero of the same range', async () => {
      const fixture = await openFixture(size);
      const data = randomBytes(8192);
      await fixture.target.zero(0, 1 << 20);
      await fixture.target.write(4096, data);
      await fixture.target.sync();
      await fixture.target.close();
      const back = fixture.readBack();
      expect(back.subarray(4096, 4096 + 8192).equals(data)).toBe(true);
      expect(back.subarray(0, 4096).every((b) => b === 0)).toBe(true);
      expect(back.subarray(4096 + 8192, 1 << 20).every((b) => b === 0)).toBe(true);
    });
  });
}
