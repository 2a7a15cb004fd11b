// The probes' line parsers and the sector-to-byte translation: every write-like op counts, reads
// and empty flushes never mark, partitions clip, and noise parses as nothing.
import { describe, expect, it } from 'vitest';
import { classifyRwbs, parseBlkTraceLine, parseBpftraceLine } from './block-event.js';
import { eventRange, type TrackedDevice } from './tracked-device.js';

describe('classifyRwbs', () => {
  it('counts writes, discards, secure erases and write-zeroes as changes, reads never', () => {
    expect(classifyRwbs('W', 8)).toBe('change');
    expect(classifyRwbs('WS', 8)).toBe('change');
    expect(classifyRwbs('FWFS', 8)).toBe('change'); // preflush + write + FUA
    expect(classifyRwbs('D', 2048)).toBe('change');
    expect(classifyRwbs('DE', 8)).toBe('change');
    expect(classifyRwbs('N', 64)).toBe('change'); // REQ_OP_WRITE_ZEROES has no letter of its own
    expect(classifyRwbs('R', 8)).toBe('read');
    expect(classifyRwbs('RA', 8)).toBe('read');
    expect(classifyRwbs('RSM', 8)).toBe('read');
    expect(classifyRwbs('FWS', 0)).toBe('flush');
    expect(classifyRwbs('F', 0)).toBe('flush');
  });
});

describe('parseBpftraceLine', () => {
  it('reads the script’s own lines and bpftrace’s lost-events notice', () => {
    expect(parseBpftraceLine('A')).toEqual({ kind: 'attached' });
    expect(parseBpftraceLine('C WS 2072 8')).toEqual({ kind: 'change', phase: 'C', rwbs: 'WS', sector: 2072, sectors: 8 });
    expect(parseBpftraceLine('Q D 0 2048')).toEqual({ kind: 'change', phase: 'Q', rwbs: 'D', sector: 0, sectors: 2048 });
    expect(parseBpftraceLine('C FWS 0 0')).toEqual({ kind: 'flush', rwbs: 'FWS' });
    expect(parseBpftraceLine('C RA 16 8')).toEqual({ kind: 'ignored' });
    expect(parseBpftraceLine('S 4242')).toEqual({ kind: 'sentinel', pid: 4242 });
    expect(parseBpftraceLine('Lost 1081582 events')).toEqual({ kind: 'lost', count: 1081582 });
    expect(parseBpftraceLine('Attaching 3 probes...')).toEqual({ kind: 'ignored' });
    expect(parseBpftraceLine('C WS 12x 8')).toEqual({ kind: 'ignored' });
  });
});

describe('parseBlkTraceLine', () => {
  const sentinels = new Set([20357]);

  it('reads queue and complete actions with the disk’s numbers and ignores the rest', () => {
    expect(parseBlkTraceLine('              dd-19414   [000] d..1. 11916.620464:   7,0    Q  WS 80 + 8 [dd]', sentinels)).toEqual({
      kind: 'change',
      phase: 'Q',
      rwbs: 'WS',
      sector: 80,
      sectors: 8,
      diskMajor: 7,
      diskMinor: 0,
    });
    expect(parseBlkTraceLine('     ksoftirqd/0-14      [000] d.s1. 11916.620536: 259,3    C  D 4096 + 2048 [0]', sentinels)).toMatchObject({
      kind: 'change',
      phase: 'C',
      sector: 4096,
      sectors: 2048,
      diskMajor: 259,
      diskMinor: 3,
    });
    // Get-request, dispatch and remap lines repeat what Q already said.
    expect(parseBlkTraceLine('              dd-19414   [000] d..1. 11916.620501:   7,0    D  WS 80 + 8 [dd]', sentinels)).toEqual({ kind: 'ignored' });
    expect(parseBlkTraceLine('              dd-19415   [000] d..1. 11916.623715:   7,0    A  WS 2072 + 8 <- (259,0) 24', sentinels)).toEqual({ kind: 'ignored' });
    expect(parseBlkTraceLine('              dd-19414   [000] d..1. 11916.620499:   7,0    P   N [dd]', sentinels)).toEqual({ kind: 'ignored' });
  });

  it('knows our sentinel reads by pid, flushes, and markers; a task name with dashes and spaces parses', () => {
    expect(parseBlkTraceLine('              dd-20357   [001] d..1. 12005.305614:   7,0    Q  RS 40 + 8 [dd]', sentinels)).toEqual({ kind: 'sentinel', pid: 20357 });
    expect(parseBlkTraceLine('              dd-20358   [001] d..1. 12005.305614:   7,0    Q  RS 40 + 8 [dd]', sentinels)).toEqual({ kind: 'ignored' });
    expect(parseBlkTraceLine('  kworker/u8:2-fl x-77   [001] d..1. 12005.3:   7,0    Q FWS [kworker/u8:2]', sentinels)).toEqual({ kind: 'flush', rwbs: 'FWS' });
    expect(parseBlkTraceLine('           <...>-20340   [001] ...1. 12005.305902: tracing_mark_write: strata-barrier-ab12', sentinels)).toEqual({
      kind: 'marker',
      text: 'strata-barrier-ab12',
    });
    expect(parseBlkTraceLine('', sentinels)).toEqual({ kind: 'ignored' });
  });
});

describe('eventRange', () => {
  const partition: TrackedDevice = {
    path: '/dev/loop9p2',
    name: 'loop9p2',
    diskName: 'loop9',
    diskMajor: 7,
    diskMinor: 9,
    diskDevT: 7 * 2 ** 20 + 9,
    isPartition: true,
    startSector: 2048,
    sizeSectors: 1000,
    sizeBytes: 1000 * 512,
  };

  it('translates absolute sectors to partition bytes and clips at both ends', () => {
    expect(eventRange(partition, 2048, 8)).toEqual({ offsetBytes: 0, lengthBytes: 4096 });
    expect(eventRange(partition, 2040, 16)).toEqual({ offsetBytes: 0, lengthBytes: 4096 });
    expect(eventRange(partition, 3040, 16)).toEqual({ offsetBytes: 992 * 512, lengthBytes: 8 * 512 });
    expect(eventRange(partition, 0, 2048)).toBeUndefined();
    expect(eventRange(partition, 3048, 8)).toBeUndefined();
  });
});
