import { describe, expect, it } from 'vitest';
import type { VolumeInfo } from '../../../../agent-core/api/disk-layout.js';
import { describeCell, stripSegments, volumesIn } from './volumes.js';

const MiB = 1024 ** 2;
const vol = (index: number, startBytes: number, sizeBytes: number, filesystem: VolumeInfo['filesystem'], label: string | null): VolumeInfo => ({
  index,
  startBytes,
  sizeBytes,
  partitionType: null,
  filesystem,
  label,
  uuid: null,
  usedBytes: 0,
});
const volumes = [vol(2, 60 * MiB, 40 * MiB, 'xfs', null), vol(1, 1 * MiB, 50 * MiB, 'ext4', 'root')];

describe('disk map volumes', () => {
  it('splits the strip into volumes and the gaps around them', () => {
    const segments = stripSegments(100 * MiB, volumes);
    expect(segments.map((s) => [s.startBytes / MiB, s.sizeBytes / MiB, s.volume?.index ?? null])).toEqual([
      [0, 1, null],
      [1, 50, 1],
      [51, 9, null],
      [60, 40, 2],
    ]);
    expect(segments[1]!.widthPct).toBe(50);
  });

  it('finds the volumes a range touches', () => {
    expect(volumesIn(volumes, 50 * MiB, 61 * MiB).map((v) => v.index)).toEqual([1, 2]);
    expect(volumesIn(volumes, 52 * MiB, 59 * MiB)).toEqual([]);
  });

  it('says where a cell is and how much of it is used and changed', () => {
    expect(describeCell({ startBytes: 2 * MiB, endBytes: 3 * MiB, used: 0.5, changed: 0, snapshot: null }, volumes)).toBe(
      'Bytes 2,097,152 – 3,145,728 (1 MiB) · volume 1 (ext4, “root”) · used 50 % · changed 0 %',
    );
    expect(describeCell({ startBytes: 0, endBytes: 4096, used: 0, changed: null, snapshot: 1 }, volumes)).toContain('outside any volume');
  });
});
