// The CLI's progress lines: throttled, and the 100 % line once per phase however often it is reported.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ProgressPrinter } from './output.js';

describe('JSON progress lines', () => {
  afterEach(() => vi.restoreAllMocks());

  it('prints the complete line once per phase, and each phase of a job', () => {
    const lines: string[] = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      lines.push(String(chunk));
      return true;
    });
    const p = new ProgressPrinter(true);
    p.update({ phase: 'restore', bytesDone: 10, bytesTotal: 100, elapsedMs: 5 });
    p.update({ phase: 'restore', bytesDone: 20, bytesTotal: 100, elapsedMs: 6 }); // within 250 ms: dropped
    for (let i = 0; i < 5; i++) p.update({ phase: 'restore', bytesDone: 100, bytesTotal: 100, elapsedMs: 10 + i });
    p.update({ phase: 'verify', bytesDone: 100, bytesTotal: 100, elapsedMs: 20 });
    p.update({ phase: 'verify', bytesDone: 100, bytesTotal: 100, elapsedMs: 21 });
    const parsed = lines.map((l) => JSON.parse(l) as { phase: string; bytesDone: number });
    expect(parsed.map((l) => [l.phase, l.bytesDone])).toEqual([
      ['restore', 10],
      ['restore', 100],
      ['verify', 100],
    ]);
  });
});
