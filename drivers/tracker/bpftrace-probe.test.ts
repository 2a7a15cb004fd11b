// The bpftrace program the eBPF backend generates (live-tracker.test.ts runs it on loop devices).
import { describe, expect, it } from 'vitest';
import { bpftraceScript } from './bpftrace-probe.js';
import type { TrackedDevice } from './tracked-device.js';

describe('bpftraceScript', () => {
  const device: TrackedDevice = {
    path: '/dev/sdz2',
    name: 'sdz2',
    diskName: 'sdz',
    diskMajor: 8,
    diskMinor: 400,
    diskDevT: 8 * 2 ** 20 + 400,
    isPartition: true,
    startSector: 2048,
    sizeSectors: 4096,
    sizeBytes: 4096 * 512,
  };

  it('marks every queued bio that is not a read and every completion, both filtered to the partition', () => {
    const script = bpftraceScript(device);
    const inRange = '(args->nr_sector == 0 || (args->sector < 6144 && args->sector + args->nr_sector > 2048))';
    expect(script).toContain(`block_rq_complete /args->dev == ${8 * 2 ** 20 + 400} && ${inRange}`);
    expect(script).toContain(`block_bio_queue /args->dev == ${8 * 2 ** 20 + 400} && ${inRange}/`);
    expect(script).toContain('if (strncmp(args->rwbs, "R", 1) != 0) { printf("Q %s %llu %u\\n"');
  });
});
