import { describe, expect, it } from 'vitest';
import { formatByteRange, formatBytes, formatDuration, formatOffset, formatPercent } from './format.js';

describe('format', () => {
  it('writes sizes in binary units with three significant digits', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(1023)).toBe('1023 B');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(4096)).toBe('4 KiB');
    expect(formatBytes(2 * 1024 ** 4)).toBe('2 TiB');
    expect(formatBytes(123.4 * 1024 ** 3)).toBe('123 GiB');
    expect(formatBytes(12.34 * 1024 ** 2)).toBe('12.3 MiB');
  });

  it('never rounds a sliver to 0 % nor a near-whole to 100 %', () => {
    expect(formatPercent(0)).toBe('0 %');
    expect(formatPercent(0.0000001)).toBe('< 0.1 %');
    expect(formatPercent(0.05)).toBe('5 %');
    expect(formatPercent(0.999999)).toBe('> 99.9 %');
    expect(formatPercent(1)).toBe('100 %');
  });

  it('writes ranges end-exclusive with their size', () => {
    expect(formatByteRange(0, 1048576)).toBe('0 – 1,048,576 (1 MiB)');
  });

  it('groups offsets as en-US does, without asking ICU', () => {
    for (const n of [0, 7, 999, 1000, 4096, 65_536, 999_999, 1_000_000, 1_048_576, 2 * 1024 ** 4, 2 ** 53 - 1, -1234567, 12.6]) {
      expect(formatOffset(n)).toBe(Math.round(n).toLocaleString('en-US'));
    }
  });

  it('writes durations at a sensible unit', () => {
    expect(formatDuration(850)).toBe('850 ms');
    expect(formatDuration(12_400)).toBe('12.4 s');
    expect(formatDuration(185_000)).toBe('3 min 5 s');
    expect(formatDuration(7_440_000)).toBe('2 h 4 min');
  });
});
