import { describe, expect, it } from 'vitest';
import { CarryOver } from './carry-over.js';

describe('CarryOver', () => {
  it('hands out the batches of the last ms before the take once, for a skip within ms after it', () => {
    const c = new CarryOver<string>(30, 0);
    c.note('a', 0);
    c.note('b', 20);
    c.note('c', 45); // 'a' is now older than 30 ms
    c.afterTake(50);
    c.note('d', 60); // after the take: not part of what is carried
    expect(c.skipped(70)).toEqual(['b', 'c']);
    expect(c.skipped(71)).toEqual([]); // once per epoch
  });

  it('carries nothing for a skip that can only have happened more than ms after the take', () => {
    const c = new CarryOver<string>(30, 0);
    c.note('a', 10);
    c.afterTake(20);
    expect(c.skipped(51)).toEqual([]);
    c.afterTake(60);
    expect(c.skipped(90)).toEqual([]); // 'a' (10) is older than 30 ms before the take at 60
  });

  it('covers the ms window exactly at its edges', () => {
    const c = new CarryOver<string>(30, 0);
    c.note('edge', 20);
    c.afterTake(50); // 'edge' is exactly 30 ms before the take
    expect(c.skipped(80)).toEqual(['edge']); // and the skip may have happened exactly 30 ms after it
  });

  it('lets per-range callers append to the newest batch within a span', () => {
    const c = new CarryOver<number[]>(1000, 0);
    expect(c.newest(0, 100)).toBeUndefined();
    const b: number[] = [];
    c.note(b, 0);
    c.newest(50, 100)!.push(1, 2);
    expect(c.newest(101, 100)).toBeUndefined();
    c.afterTake(200);
    expect(c.skipped(200)).toEqual([[1, 2]]);
  });

  it('remembers nothing in the strict mode (ms 0), where each skip is the caller’s gap', () => {
    const c = new CarryOver<string>(0, 0);
    expect(c.enabled).toBe(false);
    c.note('a', 0);
    c.afterTake(0);
    expect(c.skipped(0)).toEqual([]);
  });
});
