import { describe, expect, it } from 'vitest';
import { bitRuns, setBits, testBit } from './block-bitmap.js';

describe('block bitmaps', () => {
  it('setBits counts only newly set bits across unaligned heads, whole bytes and tails', () => {
    const bitmap = new Uint8Array(8);
    expect(setBits(bitmap, 3, 5)).toBe(2);
    expect(setBits(bitmap, 0, 61)).toBe(59);
    expect(setBits(bitmap, 2, 40)).toBe(0);
    expect(setBits(bitmap, 60, 64)).toBe(3);
    expect([...bitmap]).toEqual([255, 255, 255, 255, 255, 255, 255, 255]);
  });

  it('bitRuns yields maximal runs offset by the base and stops at bitCount', () => {
    const bitmap = new Uint8Array(4);
    setBits(bitmap, 1, 2);
    setBits(bitmap, 7, 17);
    setBits(bitmap, 24, 32);
    expect([...bitRuns(bitmap, 30, 1000)]).toEqual([
      [1001, 1002],
      [1007, 1017],
      [1024, 1030],
    ]);
    expect(testBit(bitmap, 16)).toBe(true);
    expect(testBit(bitmap, 17)).toBe(false);
  });

  it('agrees with a per-bit reference on random ranges', () => {
    let state = 99;
    const random = (n: number): number => {
      state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
      return Math.floor((state / 4294967296) * n);
    };
    const bits = 1000;
    const bitmap = new Uint8Array(bits / 8);
    const ref = new Array<boolean>(bits).fill(false);
    for (let i = 0; i < 300; i++) {
      const from = random(bits);
      const to = Math.min(bits, from + random(40));
      let fresh = 0;
      for (let b = from; b < to; b++) {
        if (!ref[b]) fresh++;
        ref[b] = true;
      }
      expect(setBits(bitmap, from, to)).toBe(fresh);
    }
    const runs: Array<[number, number]> = [];
    for (let b = 0; b < bits; b++) {
      if (!ref[b]) continue;
      const last = runs[runs.length - 1];
      if (last && last[1] === b) last[1] = b + 1;
      else runs.push([b, b + 1]);
    }
    expect([...bitRuns(bitmap, bits, 0)]).toEqual(runs);
  });
});
