// The bpf backend on real loop devices (root): our own eBPF programs, their kernel map and its
// drain. live-tracker.test.ts runs the backend-independent contract on it too; this file covers
// what is particular to it: the record layout parser, attachment on every CPU through one perf
// event, partitions, discards, map overflow turning into a gap, and takes racing parallel writers.
import { execFileSync } from 'node:child_process';
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Scratch, run } from '../../test-support/disk.js';
import { blockWriter, takeWhileWriting } from '../../test-support/tracker.js';
import { until } from '../../test-support/until.js';
import type { Extent } from '../../agent-core/extents.js';
import type { ChangeMap } from '../../agent-core/tracker/change-map.js';
import { bpfProgramInfo, bpfTrackerClose, bpfTrackerDrain, bpfTrackerOpen, bpfTrackerSupported, nativeAvailable } from '../../native/index.js';
import { bpfProgramsOf } from './bpftrace-probe.js';
import { BpfBackend, bitmapBlockShift, kernelOffsets, parseTracepointFormat, tracepointLayout } from './bpf-probe.js';
import { VMLINUX_BTF } from './btf.js';
import { ensureTracefs } from './tracefs.js';
import { resolveTrackedDevice } from './tracked-device.js';
import { startLiveTracker, type LiveTrackerOptions, type SupervisedTracker } from './tracker-supervisor.js';

const KiB = 1024;
const MiB = 1024 * KiB;

function directWrite(dev: string, offsetBytes: number, lengthBytes: number, cpu?: number): void {
  const bs = offsetBytes % 4096 === 0 && lengthBytes % 4096 === 0 ? 4096 : 512;
  const dd = ['dd', 'if=/dev/urandom', `of=${dev}`, `bs=${bs}`, `seek=${offsetBytes / bs}`, `count=${lengthBytes / bs}`, 'oflag=direct', 'conv=notrunc', 'status=none'];
  if (cpu === undefined) execFileSync(dd[0]!, dd.slice(1));
  else execFileSync('taskset', ['-c', String(cpu), ...dd]);
}

function runs(map: ChangeMap): Extent[] {
  return [...map.runs()];
}

const QUEUE_FORMAT = `name: block_bio_queue
ID: 2097
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:dev_t dev;\toffset:8;\tsize:4;\tsigned:0;
\tfield:sector_t sector;\toffset:16;\tsize:8;\tsigned:0;
\tfield:unsigned int nr_sector;\toffset:24;\tsize:4;\tsigned:0;
\tfield:char rwbs[10];\toffset:28;\tsize:10;\tsigned:0;
\tfield:char comm[16];\toffset:38;\tsize:16;\tsigned:0;

print fmt: "%d,%d %s %llu + %u [%s]", REC->rwbs
`;

describe('parseTracepointFormat', () => {
  it('finds the event id and the offsets of dev, sector, nr_sector and rwbs', () => {
    expect(parseTracepointFormat('block_bio_queue', QUEUE_FORMAT)).toEqual({ id: 2097, devOffset: 8, sectorOffset: 16, nrSectorOffset: 24, rwbsOffset: 28 });
  });

  it('refuses a layout the programs cannot load (a missing field, an unexpected size)', () => {
    expect(() => parseTracepointFormat('block_bio_queue', QUEUE_FORMAT.replace('sector_t sector;\toffset:16;\tsize:8', 'u32 sector;\toffset:16;\tsize:4'))).toThrow(/sector field/);
    expect(() => parseTracepointFormat('block_bio_queue', QUEUE_FORMAT.replace(/^.*rwbs.*$/m, ''))).toThrow(/no rwbs/);
    expect(() => parseTracepointFormat('block_bio_queue', QUEUE_FORMAT.replace(/^ID.*$/m, ''))).toThrow(/no ID/);
  });
});

describe('bitmapBlockShift', () => {
  it('keeps 4 KiB bits up to the size limit, then doubles the bit until the bitmap fits', () => {
    const GiB = 1024 * MiB;
    expect(bitmapBlockShift((512 * GiB) / 512)).toBe(3);
    expect(bitmapBlockShift((512 * GiB) / 512 + 8)).toBe(4);
    expect(bitmapBlockShift((2048 * GiB) / 512)).toBe(5);
    expect(bitmapBlockShift(8, 8)).toBe(3);
    // 16 MiB in 512 bytes of bitmap: 4096 bits of 4 KiB each.
    expect(bitmapBlockShift((16 * MiB) / 512, 512)).toBe(3);
    expect(bitmapBlockShift((16 * MiB) / 512, 64)).toBe(6);
  });
});

function bpfUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root';
  if (!nativeAvailable()) return 'the native addon is not built';
  return bpfTrackerSupported() ?? undefined;
}

const skipReason = bpfUnavailable();
if (skipReason) console.log(`skipping the bpf backend suites: ${skipReason}`);

describe.skipIf(skipReason !== undefined)('bpf backend', () => {
  let scratch: Scratch;
  let trackers: SupervisedTracker[];

  beforeEach(() => {
    scratch = new Scratch('strata-bpf-');
    trackers = [];
  });

  afterEach(async () => {
    for (const t of trackers) await t.close().catch(() => {});
    scratch.cleanup();
  });

  async function track(dev: string, options: LiveTrackerOptions = {}): Promise<SupervisedTracker> {
    const t = await startLiveTracker(dev, { backend: 'bpf', ...options });
    trackers.push(t);
    expect(t.backend).toBe('bpf');
    expect(t.status().state).toBe('tracking');
    return t;
  }

  it.each(['btf', 'tracefs'] as const)('the native tracker (%s attachment) sees writes from every CPU, skips reads, counts the sentinel read and closes twice', async (attach) => {
    const dev = scratch.loop(scratch.image('disk.img', 8 * MiB));
    const d = resolveTrackedDevice(dev);
    const common = { diskMajor: d.diskMajor, diskMinor: d.diskMinor, startSector: 0, endSector: d.sizeSectors, blockShift: 3, maxEntries: 1024 };
    let h;
    let programs: Map<string, number> | undefined;
    if (attach === 'btf') {
      h = bpfTrackerOpen({ ...common, btf: kernelOffsets() });
    } else {
      ensureTracefs();
      h = bpfTrackerOpen({ ...common, devT: d.diskDevT, queue: tracepointLayout('block_bio_queue'), complete: tracepointLayout('block_rq_complete') });
    }
    try {
      execFileSync('dd', [`if=${dev}`, 'of=/dev/null', 'bs=4096', 'count=1', 'iflag=direct', 'status=none']);
      execFileSync('dd', [`if=${dev}`, 'of=/dev/null', 'bs=4096', 'skip=100', 'count=1', 'iflag=direct', 'status=none']);
      const cpus = os.cpus().length;
      for (let cpu = 0; cpu < cpus; cpu++) directWrite(dev, (8 + cpu) * 4096, 4096, cpu);
      // Two separate writes, one narrow (the bitmap) and one wide (the hash map, as one range).
      directWrite(dev, 4 * MiB + 3 * 4096, 4096);
      directWrite(dev, 5 * MiB, 1 * MiB);
      const first = bpfTrackerDrain(h);
      const pairs: Array<[number, number]> = [];
      for (let i = 0; i < first.sectors.length; i += 2) pairs.push([first.sectors[i]!, first.sectors[i + 1]!]);
      pairs.sort((a, b) => a[0] - b[0]);
      // The blocks each CPU wrote are neighbours: one run of the bitmap, although each write was seen at queue and at completion.
      // The wide write may reach the block layer in pieces (the device's request size limit), each a range of its own.
      const wide = pairs.filter(([s]) => s >= (5 * MiB) / 512);
      expect(pairs.slice(0, pairs.length - wide.length)).toEqual([
        [64, cpus * 8],
        [(4 * MiB + 3 * 4096) / 512, 8],
      ]);
      expect(wide.length).toBeGreaterThanOrEqual(1);
      expect(wide.reduce((end, [s, n]) => (s <= end ? Math.max(end, s + n) : end), (5 * MiB) / 512)).toBe((6 * MiB) / 512);
      expect(first.sentinels).toBeGreaterThanOrEqual(1);
      expect(first.overflows).toBe(0);
      // Drained means gone: a second drain returns nothing new.
      expect(bpfTrackerDrain(h).sectors.length).toBe(0);
      // The programs are found by name among this process's descriptors, as bpftrace's are among its.
      programs = bpfProgramsOf(process.pid);
      expect(bpfProgramInfo(programs.get('strata_bio_q')!)).toMatchObject({ name: 'strata_bio_q', type: attach === 'btf' ? 26 : 5 });
      expect(bpfProgramInfo(programs.get('strata_rq_done')!)?.misses).toBe(first.completeMisses);
    } finally {
      bpfTrackerClose(h);
      bpfTrackerClose(h);
    }
    expect(() => bpfTrackerDrain(h)).toThrow(/closed/);
    // Unloaded with the tracker (a tp_btf link is freed after an RCU grace period): the id no longer names a program.
    const id = programs!.get('strata_rq_done')!;
    for (let i = 0; i < 100 && bpfProgramInfo(id) !== null; i++) await new Promise((r) => setTimeout(r, 50));
    expect(bpfProgramInfo(id)).toBeNull();
  });

  it('marks direct writes at known offsets, exactly, from the moment start() resolves', async () => {
    const dev = scratch.loop(scratch.image('disk.img', 16 * MiB));
    const t = await track(dev);
    directWrite(dev, 40 * KiB, 8 * KiB);
    directWrite(dev, 1 * MiB + 512, 512);
    directWrite(dev, 16 * MiB - 4096, 4096);
    const take = await t.takeAndReset();
    expect(take.gapReason).toBeNull();
    expect(runs(take.changes)).toEqual([
      { startBytes: 40 * KiB, lengthBytes: 8 * KiB },
      { startBytes: 1 * MiB, lengthBytes: 4 * KiB },
      { startBytes: 16 * MiB - 4 * KiB, lengthBytes: 4 * KiB },
    ]);
    const next = await t.takeAndReset();
    expect(next.previousEpochKey).toBe(take.epochKey);
    expect(runs(next.changes)).toEqual([]);
  });

  it('attaches through BTF when the kernel has it, and coarse bits mark whole blocks around a write, never less', async () => {
    const dev = scratch.loop(scratch.image('disk.img', 16 * MiB));
    const backend = new BpfBackend(resolveTrackedDevice(dev));
    backend.prepare();
    expect(backend.attachedBy).toBe(existsSync(VMLINUX_BTF) ? 'btf' : 'tracefs');
    // 64 bytes of bitmap for 16 MiB: 32 KiB a bit.
    const t = await track(dev, { bpfBitmapMaxBytes: 64 });
    directWrite(dev, 40 * KiB, 4 * KiB);
    directWrite(dev, 16 * MiB - 4096, 4096);
    const take = await t.takeAndReset();
    expect(take.gapReason).toBeNull();
    expect(runs(take.changes)).toEqual([
      { startBytes: 32 * KiB, lengthBytes: 32 * KiB },
      { startBytes: 16 * MiB - 32 * KiB, lengthBytes: 32 * KiB },
    ]);
  });

  it.each(['btf', 'tracefs'] as const)('attaches the completion program (%s attachment) only from a take’s barrier until armedMs after it', async (attach) => {
    const dev = scratch.loop(scratch.image('disk.img', 16 * MiB));
    // Runs are counted only while the kernel's BPF statistics are on.
    const statsFile = '/proc/sys/kernel/bpf_stats_enabled';
    const statsBefore = readFileSync(statsFile, 'utf8').trim();
    writeFileSync(statsFile, '1');
    try {
      const t = await track(dev, { bpfAttach: attach, bpfCompletionArmedMs: 1000 });
      const id = bpfProgramsOf(process.pid).get('strata_rq_done')!;
      const completions = (): number => bpfProgramInfo(id)!.runs;
      const atStart = completions();
      directWrite(dev, 8 * KiB, 4 * KiB);
      expect(completions(), 'no completion program before the first take').toBe(atStart);
      await t.takeAndReset();
      const atTake = completions();
      directWrite(dev, 16 * KiB, 4 * KiB);
      expect(completions(), 'the completion program runs after the take').toBeGreaterThan(atTake);
      await until('the completion program is detached again', () => {
        const before = completions();
        directWrite(dev, 24 * KiB, 4 * KiB);
        return completions() === before;
      });
      // Detached or not, the queue program marked every write.
      const take = await t.takeAndReset();
      expect(take.gapReason).toBeNull();
      expect(take.changes.isMarked(4)).toBe(true);
      expect(take.changes.isMarked(6)).toBe(true);
    } finally {
      writeFileSync(statsFile, statsBefore);
    }
  });

  it('a peek shows a write at once, although the kernel maps are drained only every 5 s, and does not end the epoch', async () => {
    const dev = scratch.loop(scratch.image('disk.img', 16 * MiB));
    const t = await track(dev);
    directWrite(dev, 12 * KiB, 4 * KiB);
    expect(t.peekChanges()).toEqual([{ startBytes: 12 * KiB, lengthBytes: 4 * KiB }]);
    const take = await t.takeAndReset();
    expect(runs(take.changes)).toEqual([{ startBytes: 12 * KiB, lengthBytes: 4 * KiB }]);
  });

  it('marks discards (blkdiscard)', async () => {
    const dev = scratch.loop(scratch.image('disk.img', 16 * MiB));
    const t = await track(dev);
    run('blkdiscard', ['-o', String(4 * MiB), '-l', String(1 * MiB), dev]);
    const take = await t.takeAndReset();
    expect(take.gapReason).toBeNull();
    expect(runs(take.changes)).toEqual([{ startBytes: 4 * MiB, lengthBytes: 1 * MiB }]);
  });

  it('counts cache flushes (an fsync of the device) and marks the written-back block', async () => {
    const dev = scratch.loop(scratch.image('disk.img', 16 * MiB));
    const t = await track(dev);
    const fd = openSync(dev, 'r+');
    try {
      writeSync(fd, Buffer.alloc(4096, 7), 0, 4096, 8192);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    const take = await t.takeAndReset();
    expect(take.gapReason).toBeNull();
    expect(take.flushes).toBeGreaterThanOrEqual(1);
    expect(runs(take.changes)).toEqual([{ startBytes: 8192, lengthBytes: 4096 }]);
  });

  it('a partition’s tracker gets only its own range, in partition offsets, including writes made through the whole disk', async () => {
    const dev = scratch.loop(scratch.image('disk.img', 32 * MiB));
    const p1 = scratch.partition(dev, 1, 1 * MiB, 8 * MiB);
    const p2 = scratch.partition(dev, 2, 9 * MiB, 16 * MiB);
    const t = await track(p2);
    expect(t.device.startSector).toBe((9 * MiB) / 512);
    directWrite(p2, 0, 4096);
    directWrite(p2, 16 * MiB - 4096, 4096);
    directWrite(p1, 8 * MiB - 4096, 4096); // the neighbour, ending right where p2 starts
    directWrite(dev, 25 * MiB, 4096); // the disk right after p2
    directWrite(dev, 9 * MiB + 64 * KiB, 4096); // through the whole disk, inside p2
    directWrite(dev, 9 * MiB - 4096, 8192); // straddles p2's start: only its p2 half
    const take = await t.takeAndReset();
    expect(take.gapReason).toBeNull();
    expect(runs(take.changes)).toEqual([
      { startBytes: 0, lengthBytes: 4096 },
      { startBytes: 64 * KiB, lengthBytes: 4096 },
      { startBytes: 16 * MiB - 4096, lengthBytes: 4096 },
    ]);
  });

  it('turns a full hash map of wide writes into a gap, and the next epoch is clean again', async () => {
    const dev = scratch.loop(scratch.image('disk.img', 16 * MiB));
    const t = await track(dev, { bpfMaxEntries: 4 });
    // execFileSync blocks this thread, so no timer drains while 16 distinct 1 MiB writes (each at least 64 blocks, even if split) arrive.
    execFileSync('dd', ['if=/dev/zero', `of=${dev}`, 'bs=1M', 'count=16', 'oflag=direct', 'status=none']);
    const take = await t.takeAndReset();
    expect(take.gapReason).toMatch(/map of marks was full/);
    expect(take.previousEpochKey).not.toBe(take.epochKey);
    expect(t.status().state).toBe('tracking');
    directWrite(dev, 64 * KiB, 4096);
    const next = await t.takeAndReset();
    expect(next.gapReason).toBeNull();
    expect(next.previousEpochKey).toBe(take.epochKey);
    expect(runs(next.changes)).toEqual([{ startBytes: 64 * KiB, lengthBytes: 4096 }]);
  });

  it('loses no write across back-to-back takes while one writer per CPU runs', async () => {
    const dev = scratch.loop(scratch.image('disk.img', 16 * MiB));
    const t = await track(dev);
    const cpus = os.cpus().length;
    const n = 150;
    const completed: number[] = [];
    // Writer `cpu` writes blocks cpu, cpu + cpus, ... on its own CPU.
    const writers = Array.from({ length: cpus }, (_, cpu) =>
      blockWriter(
        dev,
        Array.from({ length: n }, (_, i) => cpu + i * cpus),
        completed,
        cpu,
      ),
    );
    const { takes, union } = await takeWhileWriting(t, completed, Promise.all(writers), 2);
    expect(completed).toHaveLength(n * cpus);
    expect(takes).toBeGreaterThan(10);
    // And nothing outside what was written.
    expect([...union].every((b) => b < n * cpus)).toBe(true);
  });

  it('loads its programs in a process whose CPU profiler sends SIGPROF every millisecond', () => {
    // The verifier gives up with EAGAIN whenever a signal is pending; the addon blocks signals for
    // the load. Without that an agent run under `node --cpu-prof` was seen to fall back to bpftrace
    // on every start (not reproducible at will: it depends on how long the verifier's setup takes).
    const dev = scratch.loop(scratch.image('disk.img', 8 * MiB));
    const supervisor = path.join(import.meta.dirname, 'tracker-supervisor.ts');
    const script = `import { startLiveTracker } from ${JSON.stringify(supervisor)};
const t = await startLiveTracker(${JSON.stringify(dev)}, { backend: 'bpf', bpfAttach: 'btf' });
console.log('attached', t.backend);
await t.close();`;
    const out = execFileSync(process.execPath, ['--cpu-prof', `--cpu-prof-dir=${scratch.path('prof')}`, '--import', 'tsx', '--input-type=module', '-e', script], {
      encoding: 'utf8',
      cwd: path.resolve(import.meta.dirname, '..', '..'),
    });
    expect(out.trim()).toBe('attached bpf');
  });

  it('a program the verifier refuses throws ERR_STRATA_BPF_VERIFIER with the log', () => {
    ensureTracefs();
    const queue = tracepointLayout('block_bio_queue');
    const attempt = (): unknown =>
      // A 4-byte load at an odd offset of the record: the verifier refuses it.
      bpfTrackerOpen({
        diskMajor: 7,
        diskMinor: 0,
        devT: 1,
        startSector: 0,
        endSector: 8,
        blockShift: 3,
        maxEntries: 8,
        queue: { ...queue, devOffset: 9 },
        complete: tracepointLayout('block_rq_complete'),
      });
    expect(attempt).toThrow(expect.objectContaining({ code: 'ERR_STRATA_BPF_VERIFIER', message: expect.stringMatching(/block_bio_queue.*verifier log: .*bpf_context/s) }));
  });
});
