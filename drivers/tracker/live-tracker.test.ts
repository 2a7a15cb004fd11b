// The suite every live-tracker backend must pass (bpf, bpftrace, tracefs), run on each on real loop devices: exact blocks
// for direct writes, ext4 file writes, discards, partition offsets, crash and restart with a blind
// window, lost events, and the epoch keys' chain across takes. One file, so the backends run one
// after the other (tracefs is machine-wide state).
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Scratch, run } from '../../test-support/disk.js';
import { blockWriter, takeWhileWriting } from '../../test-support/tracker.js';
import { until } from '../../test-support/until.js';
import type { Extent } from '../../agent-core/extents.js';
import type { ChangeMap } from '../../agent-core/tracker/change-map.js';
import { bpfTrackerSupported, nativeAvailable } from '../../native/index.js';
import { BPFTRACE } from './bpftrace-probe.js';
import type { ProbeBackendName } from './probe.js';
import { TRACEFS, blkTracedDevices, ensureTracefs, readTracefs, writeTracefs } from './tracefs.js';
import { startLiveTracker, type LiveTrackerOptions, type SupervisedTracker } from './tracker-supervisor.js';

const KiB = 1024;
const MiB = 1024 * KiB;

/** Writes lengthBytes of noise at offsetBytes with O_DIRECT (512-byte units, so unaligned writes are possible). */
function directWrite(dev: string, offsetBytes: number, lengthBytes: number): void {
  const bs = offsetBytes % 4096 === 0 && lengthBytes % 4096 === 0 ? 4096 : 512;
  execFileSync('dd', ['if=/dev/urandom', `of=${dev}`, `bs=${bs}`, `seek=${offsetBytes / bs}`, `count=${lengthBytes / bs}`, 'oflag=direct', 'conv=notrunc', 'status=none']);
}

function runs(map: ChangeMap): Extent[] {
  return [...map.runs()];
}

/** 4 KiB blocks that differ between two equally long buffers. */
function differingBlocks(a: Buffer, b: Buffer): number[] {
  const out: number[] = [];
  for (let o = 0; o < a.length; o += 4096) if (a.compare(b, o, o + 4096, o, o + 4096) !== 0) out.push(o / 4096);
  return out;
}

/** Puts tracefs back the way a test found it, whatever the tracker did or failed to do. */
function resetTracing(diskNames: string[]): void {
  for (const name of diskNames) {
    try {
      if (blkTracedDevices().includes(name)) writeFileSync(`/sys/class/block/${name}/trace/enable`, '0');
    } catch {
      // the device may be gone already
    }
  }
  try {
    if (blkTracedDevices().length === 0 && readTracefs('current_tracer') === 'blk') writeTracefs('current_tracer', 'nop');
  } catch {
    // tracefs not mounted: nothing to reset
  }
}

function runLiveTrackerContract(backend: ProbeBackendName, skipReason: string | undefined, variant: LiveTrackerOptions = {}): void {
  const suite = skipReason ? describe.skip : describe;
  const label = `${backend}${variant.bpfAttach ? `, ${variant.bpfAttach} attachment` : ''}`;
  if (skipReason) console.log(`skipping the ${label} live-tracker suite: ${skipReason}`);

  suite(`live tracker (${label})`, () => {
    let scratch: Scratch;
    let trackers: SupervisedTracker[];
    let disks: string[];

    beforeEach(() => {
      scratch = new Scratch('strata-tracker-');
      trackers = [];
      disks = [];
    });

    afterEach(async () => {
      for (const t of trackers) await t.close().catch(() => {});
      resetTracing(disks);
      scratch.cleanup();
      if (backend === 'tracefs') {
        // Teardown really did undo the tracer: a leak here would break every later tracefs user.
        expect(readTracefs('current_tracer')).toBe('nop');
      }
    });

    function loopDevice(sizeBytes: number): string {
      const dev = scratch.loop(scratch.image(`disk-${disks.length}.img`, sizeBytes));
      disks.push(path.basename(dev));
      return dev;
    }

    async function track(dev: string, options: LiveTrackerOptions = {}): Promise<SupervisedTracker> {
      const t = await startLiveTracker(dev, { backend, restartInitialMs: 50, ...variant, ...options });
      trackers.push(t);
      expect(t.backend).toBe(backend);
      expect(t.status().state).toBe('tracking');
      return t;
    }

    it('sees every direct write from the moment start() resolves, as exact 4 KiB blocks rounded outward', async () => {
      const dev = loopDevice(16 * MiB);
      const t = await track(dev);
      directWrite(dev, 40 * KiB, 8 * KiB); // blocks 10-11
      directWrite(dev, 1 * MiB + 512, 512); // inside block 256
      directWrite(dev, 2 * MiB - 512, 1024); // straddles blocks 511 and 512
      directWrite(dev, 16 * MiB - 4096, 4096); // the last block
      const take = await t.takeAndReset();
      expect(take.gapReason).toBeNull();
      expect(runs(take.changes)).toEqual([
        { startBytes: 40 * KiB, lengthBytes: 8 * KiB },
        { startBytes: 1 * MiB, lengthBytes: 4 * KiB },
        { startBytes: 2 * MiB - 4 * KiB, lengthBytes: 8 * KiB },
        { startBytes: 16 * MiB - 4 * KiB, lengthBytes: 4 * KiB },
      ]);
      // The next epoch starts empty and chains to this one's key.
      directWrite(dev, 0, 4096);
      const next = await t.takeAndReset();
      expect(next.previousEpochKey).toBe(take.epochKey);
      expect(next.epochKey).not.toBe(take.epochKey);
      expect(runs(next.changes)).toEqual([{ startBytes: 0, lengthBytes: 4096 }]);
    });

    it('marks every block a mounted ext4 changed when files are written and synced', async () => {
      const dev = loopDevice(32 * MiB);
      const image = scratch.path('disk-0.img');
      run('mkfs.ext4', ['-q', '-F', '-E', 'lazy_itable_init=0,lazy_journal_init=0', dev]);
      const dir = scratch.mount(dev);
      run('sync', []);
      const t = await track(dev);
      const before = readFileSync(image);
      for (let i = 0; i < 20; i++) writeFileSync(path.join(dir, `f${i}.bin`), Buffer.alloc(3000 + i * 7000, i + 1));
      run('sync', []);
      const take = await t.takeAndReset();
      const after = readFileSync(image);
      const changed = differingBlocks(before, after);
      expect(changed.length).toBeGreaterThan(20);
      const missed = changed.filter((b) => !take.changes.isMarked(b));
      expect(missed).toEqual([]);
      expect(take.gapReason).toBeNull();
    });

    it('marks discarded ranges (blkdiscard)', async () => {
      const dev = loopDevice(16 * MiB);
      const t = await track(dev);
      run('blkdiscard', ['-o', String(4 * MiB), '-l', String(1 * MiB), dev]);
      const take = await t.takeAndReset();
      expect(runs(take.changes)).toEqual([{ startBytes: 4 * MiB, lengthBytes: 1 * MiB }]);
    });

    it('maps a partition’s writes to partition offsets and ignores its neighbour; a whole-disk tracker sees both', async () => {
      const dev = loopDevice(64 * MiB);
      run('sfdisk', ['-q', dev], 'label: dos\nstart=2048, size=30720, type=83\nstart=34816, size=40960, type=83\n');
      run('partx', ['-a', dev]);
      scratch.defer(() => execFileSync('partx', ['-d', dev], { stdio: 'ignore' }));
      const p1 = `${dev}p1`;
      const p2 = `${dev}p2`;
      await until('partition nodes', () => {
        try {
          return execFileSync('blockdev', ['--getsz', p2], { encoding: 'utf8' }).trim() === '40960';
        } catch {
          return false;
        }
      });
      const p2Start = 34816 * 512;
      const part = await track(p2);
      expect(part.device.isPartition).toBe(true);
      expect(part.device.startSector).toBe(34816);
      expect(part.device.sizeBytes).toBe(40960 * 512);
      directWrite(p2, 12 * KiB, 4 * KiB);
      directWrite(p2, 20 * MiB - 4096, 4096); // the partition's last block
      directWrite(p1, 12 * KiB, 4 * KiB); // another partition: not ours
      directWrite(dev, p2Start + 1 * MiB, 4096); // through the whole disk, inside p2
      const take = await part.takeAndReset();
      expect(runs(take.changes)).toEqual([
        { startBytes: 12 * KiB, lengthBytes: 4 * KiB },
        { startBytes: 1 * MiB, lengthBytes: 4 * KiB },
        { startBytes: 20 * MiB - 4 * KiB, lengthBytes: 4 * KiB },
      ]);
      // tracefs serves one tracker per process: the whole-disk tracker comes after.
      await part.close();
      const whole = await track(dev);
      expect(whole.device.isPartition).toBe(false);
      directWrite(p1, 8 * KiB, 4 * KiB);
      directWrite(p2, 8 * KiB, 4 * KiB);
      const wholeTake = await whole.takeAndReset();
      expect(runs(wholeTake.changes)).toEqual([
        { startBytes: 2048 * 512 + 8 * KiB, lengthBytes: 4 * KiB },
        { startBytes: p2Start + 8 * KiB, lengthBytes: 4 * KiB },
      ]);
    });

    // The bpf backend runs in this process: there is no probe child to kill.
    // The bpf backend runs in this process: with no probe child to kill, these two are not part of its contract.
    const itKillsProbe = (name: string, fn: () => Promise<void>): void => {
      if (backend !== 'bpf') it(name, fn);
    };

    itKillsProbe('restarts a killed probe, records the blind window and makes the next take a gap covering writes made while blind', async () => {
      const dev = loopDevice(16 * MiB);
      const t = await track(dev);
      const first = await t.takeAndReset();
      expect(first.gapReason).toBeNull();
      const keyBefore = t.epochKey();
      const pid = t.status().probePid!;
      process.kill(pid, 'SIGKILL');
      await until('the supervisor to notice the crash', () => t.status().state === 'blind');
      expect(t.epochKey()).not.toBe(keyBefore);
      const blindWriteMs = Date.now();
      directWrite(dev, 64 * KiB, 4096); // made while no probe runs
      await t.waitUntilTracking(30_000);
      expect(t.status().restarts).toBe(1);
      expect(t.status().probePid).not.toBe(pid);
      directWrite(dev, 128 * KiB, 4096); // after the re-attach: seen
      const take = await t.takeAndReset();
      expect(take.gapReason).toMatch(/probe exited \(signal SIGKILL\)/);
      expect(take.previousEpochKey).not.toBe(first.epochKey);
      expect(take.blindWindows).toHaveLength(1);
      const w = take.blindWindows[0]!;
      expect(w.toMs).toBeDefined();
      expect(w.fromMs).toBeLessThanOrEqual(blindWriteMs);
      expect(w.toMs!).toBeGreaterThanOrEqual(blindWriteMs);
      expect(take.changes.isMarked(32)).toBe(true);
      // Tracking again with no new gap: the next epoch chains cleanly.
      directWrite(dev, 256 * KiB, 4096);
      const after = await t.takeAndReset();
      expect(after.gapReason).toBeNull();
      expect(after.previousEpochKey).toBe(take.epochKey);
      expect(runs(after.changes)).toEqual([{ startBytes: 256 * KiB, lengthBytes: 4096 }]);
    });

    itKillsProbe('a take while the probe is down reports the gap and starts the next epoch with one', async () => {
      const dev = loopDevice(16 * MiB);
      const t = await track(dev, { restartInitialMs: 1500 });
      process.kill(t.status().probePid!, 'SIGKILL');
      await until('the crash', () => t.status().state === 'blind');
      const during = await t.takeAndReset();
      expect(during.gapReason).toMatch(/probe exited/);
      expect(during.blindWindows.at(-1)!.toMs).toBeUndefined();
      await t.waitUntilTracking(30_000);
      const after = await t.takeAndReset();
      expect(after.gapReason).toMatch(/has been down since/);
      expect(after.blindWindows).toHaveLength(1);
      expect(after.blindWindows[0]!.toMs).toBeGreaterThan(after.blindWindows[0]!.fromMs);
    });

    it('loses no write across takes made while a writer runs', async () => {
      const dev = loopDevice(16 * MiB);
      const t = await track(dev);
      // A writer writes blocks 0..N-1 in order.
      const n = 120;
      const completed: number[] = [];
      const writer = blockWriter(
        dev,
        Array.from({ length: n }, (_, k) => k),
        completed,
      );
      const { takes } = await takeWhileWriting(t, completed, writer, 20);
      expect(completed).toHaveLength(n);
      expect(takes).toBeGreaterThan(3);
    });

    it('turns dropped events into a gap', async () => {
      const dev = loopDevice(64 * MiB);
      const small: LiveTrackerOptions = backend === 'bpf' ? { bpfMaxEntries: 4 } : backend === 'bpftrace' ? { bpftracePerfPages: 1 } : { tracefsBufferKb: 16 };
      const t = await track(dev, small);
      const pid = t.status().probePid!;
      // Stop the reader so the kernel's buffer fills, then flood it with writes. The bpf backend's
      // reader is this thread, which execFileSync blocks anyway (and SIGSTOP would stop the test).
      const childReader = backend !== 'bpf';
      if (childReader) process.kill(pid, 'SIGSTOP');
      try {
        // The bpf backend's bitmap cannot fill up; its hash map of wide writes (64 blocks or more) can.
        const flood = backend === 'bpf' ? ['bs=1M', 'count=64'] : ['bs=4096', 'count=4000'];
        execFileSync('dd', ['if=/dev/zero', `of=${dev}`, ...flood, 'oflag=direct', 'status=none']);
      } finally {
        if (childReader) process.kill(pid, 'SIGCONT');
      }
      const take = await t.takeAndReset();
      expect(take.gapReason).toMatch(/dropped|overran|full/);
      expect(take.previousEpochKey).not.toBe(undefined);
      expect(t.status().state).toBe('tracking');
    });
  });
}

function bpfUnavailable(): string | undefined {
  if (!nativeAvailable()) return 'the native addon is not built';
  return bpfTrackerSupported() ?? undefined;
}

function bpftraceUnavailable(): string | undefined {
  return existsSync(BPFTRACE) ? undefined : `${BPFTRACE} is missing (Debian package bpftrace)`;
}

function tracefsUnavailable(): string | undefined {
  try {
    ensureTracefs();
  } catch (err) {
    return (err as Error).message;
  }
  return readTracefs('available_tracers').split(/\s+/).includes('blk') ? undefined : `the kernel offers no blk tracer in ${TRACEFS}/available_tracers`;
}

describe('startLiveTracker refusals', () => {
  it('refuses a missing path, a regular file, and a take after close, each with its code', async () => {
    await expect(startLiveTracker('/dev/strata-no-such-device')).rejects.toMatchObject({ code: 'NotFound' });
    await expect(startLiveTracker('/etc/hostname')).rejects.toMatchObject({ code: 'InvalidInput' });
  });

  it.skipIf(bpfUnavailable() !== undefined && bpftraceUnavailable() !== undefined)('picks bpf (else bpftrace) by default and refuses to take once closed', async () => {
    const scratch = new Scratch('strata-tracker-');
    try {
      const dev = scratch.loop(scratch.image('disk.img', 4 * MiB));
      const t = await startLiveTracker(dev);
      expect(t.backend).toBe(bpfUnavailable() === undefined ? 'bpf' : 'bpftrace');
      await t.close();
      expect(t.status().state).toBe('closed');
      await expect(t.takeAndReset()).rejects.toMatchObject({ code: 'InvalidInput' });
    } finally {
      scratch.cleanup();
    }
  });
});

runLiveTrackerContract('bpf', bpfUnavailable());
// Kernels without BTF: the same programs on perf events, reading the tracepoints' records.
runLiveTrackerContract('bpf', bpfUnavailable(), { bpfAttach: 'tracefs' });
runLiveTrackerContract('bpftrace', bpftraceUnavailable());
runLiveTrackerContract('tracefs', tracefsUnavailable());
