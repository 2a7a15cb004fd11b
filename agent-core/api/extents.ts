// Byte ranges as the API carries them: run-length extents, never per-block arrays, so a 2 TiB disk's
// maps cross a transport at once. Every list is sorted by start, with no overlaps and no empty runs.
import * as z from 'zod';
import { DiskLayoutSchema } from './disk-layout.js';

/** [startBytes, lengthBytes]. */
export const ExtentSchema = z.tuple([z.number().int().nonnegative(), z.number().int().positive()]);
export type Extent = readonly [startBytes: number, lengthBytes: number];

export const ExtentListSchema = z.array(ExtentSchema).superRefine((list, ctx) => {
  for (let i = 1; i < list.length; i++) {
    const [prevStart, prevLength] = list[i - 1]!;
    if (list[i]![0] < prevStart + prevLength) {
      ctx.addIssue({ code: 'custom', path: [i], message: 'extents must be sorted by start and must not overlap' });
      return;
    }
  }
});

/** What the console draws for one disk: its layout and where valid data lies. */
export const DiskMapSchema = z.object({
  path: z.string(),
  layout: DiskLayoutSchema,
  /** The granularity the maps are kept at; every extent is a multiple of it (the disk's tail aside). */
  blockSize: z.number().int().positive(),
  /** Bytes the backup would read: the union of each volume's valid map and the space outside volumes that Strata keeps. */
  used: ExtentListSchema,
});
export type DiskMap = z.infer<typeof DiskMapSchema>;

/** Total bytes in a list of extents. */
export function extentBytes(list: readonly Extent[]): number {
  let total = 0;
  for (const [, length] of list) total += length;
  return total;
}
