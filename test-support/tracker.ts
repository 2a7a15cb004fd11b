// What the tracker tests share: a writer that reports each completed 4 KiB write, and the check that
// takes made back to back while it runs lose none of them.
import { spawn } from 'node:child_process';
import { expect } from 'vitest';
import type { LiveTracker } from '../drivers/tracker/live-tracker.js';

/**
 * Starts `bash` writing the given 4 KiB blocks of dev one by one with O_DIRECT (pinned to a CPU if
 * given); each block number is pushed to `completed` once its write has returned. Resolves at exit.
 */
export function blockWriter(dev: string, blocks: readonly number[], completed: number[], cpu?: number): Promise<unknown> {
  const script = `for k in ${blocks.join(' ')}; do dd if=/dev/urandom of=${dev} bs=4096 seek=$k count=1 oflag=direct status=none && echo "done $k"; done`;
  const [cmd, args] = cpu === undefined ? ['bash', ['-c', script]] : ['taskset', ['-c', String(cpu), 'bash', '-c', script]];
  const w = spawn(cmd as string, args as string[], { stdio: ['ignore', 'pipe', 'inherit'] });
  let partial = '';
  w.stdout.setEncoding('utf8');
  w.stdout.on('data', (s: string) => {
    const lines = (partial + s).split('\n');
    partial = lines.pop()!;
    for (const l of lines) if (l.startsWith('done ')) completed.push(Number(l.slice(5)));
  });
  return new Promise((resolve) => w.on('exit', resolve));
}

/**
 * Takes epochs back to back until `writersDone` settles (and at least three), each checked: no gap,
 * chained keys, and every block `completed` listed before the take began is in it or an earlier one.
 * Returns the number of takes and the union of the blocks they reported.
 */
export async function takeWhileWriting(t: LiveTracker, completed: readonly number[], writersDone: Promise<unknown>, pauseMs: number): Promise<{ takes: number; union: Set<number> }> {
  let finished = false;
  void writersDone.then(() => (finished = true));
  const union = new Set<number>();
  let lastKey = t.epochKey();
  let takes = 0;
  while (!finished || takes < 3) {
    const completedBefore = completed.length;
    const take = await t.takeAndReset();
    takes++;
    expect(take.gapReason).toBeNull();
    expect(take.previousEpochKey).toBe(lastKey);
    lastKey = take.epochKey;
    for (const e of take.changes.runs()) for (let b = e.startBytes / 4096; b < (e.startBytes + e.lengthBytes) / 4096; b++) union.add(b);
    // Every write that had completed before this take began is in this take or an earlier one.
    const missing = completed.slice(0, completedBefore).filter((b) => !union.has(b));
    expect(missing, `take ${takes}: blocks completed before it`).toEqual([]);
    await new Promise((r) => setTimeout(r, pauseMs));
  }
  return { takes, union };
}
