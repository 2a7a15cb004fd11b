// The BTF reader on a small type section built here (every case it must handle, byte by byte) and
// on this kernel's own /sys/kernel/btf/vmlinux (what the bpf tracker really reads).
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Btf, BtfKind, VMLINUX_BTF } from './btf.js';

/** Builds a little-endian BTF blob from type records (each: name, kind, vlen, kindFlag, sizeOrType, tail words). */
function buildBtf(types: Array<{ name?: string; kind: number; vlen?: number; kindFlag?: boolean; sizeOrType: number; tail?: Array<number | string> }>): Buffer {
  const strings: string[] = [''];
  const stringAt = new Map<string, number>([['', 0]]);
  let strLen = 1;
  const str = (s: string): number => {
    if (!stringAt.has(s)) {
      stringAt.set(s, strLen);
      strings.push(s);
      strLen += Buffer.byteLength(s) + 1;
    }
    return stringAt.get(s)!;
  };
  const words: number[] = [];
  for (const t of types) {
    words.push(str(t.name ?? ''), ((t.kindFlag ? 1 : 0) << 31) | (t.kind << 24) | (t.vlen ?? 0), t.sizeOrType);
    for (const w of t.tail ?? []) words.push(typeof w === 'string' ? str(w) : w);
  }
  const typeSection = Buffer.alloc(words.length * 4);
  words.forEach((w, i) => typeSection.writeUInt32LE(w >>> 0, i * 4));
  const strSection = Buffer.from(strings.join('\0') + '\0', 'latin1');
  const header = Buffer.alloc(24);
  header.writeUInt16LE(0xeb9f, 0);
  header.writeUInt8(1, 2);
  header.writeUInt32LE(24, 4);
  header.writeUInt32LE(0, 8);
  header.writeUInt32LE(typeSection.length, 12);
  header.writeUInt32LE(typeSection.length, 16);
  header.writeUInt32LE(strSection.length, 20);
  return Buffer.concat([header, typeSection, strSection]);
}

// 1 int (4), 2 u64 (8), 3 typedef sector_t -> 2, 4 const sector_t, 5 struct iter {sector_t lo; u32 size},
// 6 union {int a; u64 b}, 7 struct thing {int first; union (anonymous) at 8; struct iter it at 16; const sector_t * p at 32; int bits:3 at 40*8},
// 8 ptr -> 4, 9 enum flags {FIRST=0, AFTER_OPS=8}
const SAMPLE = buildBtf([
  { name: 'int', kind: BtfKind.Int, sizeOrType: 4, tail: [32] },
  { name: 'u64', kind: BtfKind.Int, sizeOrType: 8, tail: [64] },
  { name: 'sector_t', kind: BtfKind.Typedef, sizeOrType: 2 },
  { kind: BtfKind.Const, sizeOrType: 3 },
  { name: 'iter', kind: BtfKind.Struct, vlen: 2, sizeOrType: 16, tail: ['lo', 3, 0, 'size', 1, 64] },
  { kind: BtfKind.Union, vlen: 2, sizeOrType: 8, tail: ['a', 1, 0, 'b', 2, 0] },
  { name: 'thing', kind: BtfKind.Struct, vlen: 5, kindFlag: true, sizeOrType: 48, tail: ['first', 1, 0, '', 6, 64, 'it', 5, 128, 'p', 8, 256, 'bits', 1, (3 << 24) | 320] },
  { kind: BtfKind.Ptr, sizeOrType: 4 },
  { name: 'flags', kind: BtfKind.Enum, vlen: 2, sizeOrType: 4, tail: ['FIRST', 0, 'AFTER_OPS', 8] },
]);

const noVmlinux = existsSync(VMLINUX_BTF) ? undefined : `${VMLINUX_BTF} is missing (a kernel built without CONFIG_DEBUG_INFO_BTF)`;
if (noVmlinux) console.log(`skipping the vmlinux BTF test: ${noVmlinux}`);

describe('Btf', () => {
  it('finds members by path, through anonymous unions, typedefs and qualifiers', () => {
    const b = new Btf(SAMPLE);
    expect(b.typeCount).toBe(9);
    expect(b.member('thing', 'first')).toEqual({ offsetBytes: 0, sizeBytes: 4, typeId: 1 });
    expect(b.member('thing', 'b')).toEqual({ offsetBytes: 8, sizeBytes: 8, typeId: 2 });
    expect(b.member('thing', 'it.lo')).toEqual({ offsetBytes: 16, sizeBytes: 8, typeId: 2 });
    expect(b.member('thing', 'it.size')).toEqual({ offsetBytes: 24, sizeBytes: 4, typeId: 1 });
    expect(b.member('thing', 'p')).toMatchObject({ offsetBytes: 32, sizeBytes: 8 });
    expect(b.kindOf(b.member('thing', 'p').typeId)).toBe(BtfKind.Ptr);
    expect(b.find(BtfKind.Typedef, 'sector_t')).toBe(3);
    expect(b.enumValue('AFTER_OPS')).toBe(8);
    expect(b.enumValue('NOPE')).toBeUndefined();
  });

  it('refuses what the tracker cannot use, each with Unsupported and a sentence', () => {
    const b = new Btf(SAMPLE);
    expect(() => b.member('thing', 'bits')).toThrow(expect.objectContaining({ code: 'Unsupported', message: expect.stringMatching(/bit field/) }));
    expect(() => b.member('thing', 'missing')).toThrow(expect.objectContaining({ code: 'Unsupported', message: 'This kernel\'s struct thing has no member missing.' }));
    expect(() => b.find(BtfKind.Struct, 'sector_t')).toThrow(expect.objectContaining({ code: 'Unsupported', message: expect.stringMatching(/no struct sector_t/) }));
  });

  it('refuses a damaged blob: wrong magic, a section past the end, a record cut short, an unknown kind', () => {
    const bad = (mutate: (b: Buffer) => Buffer): (() => Btf) => () => new Btf(mutate(Buffer.from(SAMPLE)));
    expect(bad((b) => (b.writeUInt16LE(0x1234, 0), b))).toThrow(/no BTF magic/);
    expect(bad((b) => (b.writeUInt32LE(b.readUInt32LE(12) + 400, 12), b))).toThrow(/past the end/);
    expect(bad((b) => (b.writeUInt32LE(b.readUInt32LE(12) - 2, 12), b))).toThrow(/cut short|does not end on a record/);
    expect(bad((b) => (b.writeUInt32LE(0x1f << 24, 24 + 4), b))).toThrow(/unknown type kind 31/);
    expect(() => new Btf(Buffer.alloc(10))).toThrow(/shorter than its header/);
  });

  it.skipIf(noVmlinux !== undefined)("reads this kernel's vmlinux BTF: the block layer's structures and tracepoints", () => {
    const b = Btf.readVmlinux();
    expect(b.typeCount).toBeGreaterThan(10_000);
    const iter = b.member('bio', 'bi_iter');
    const inner = b.member('bvec_iter', 'bi_sector');
    // A dotted path is the sum of its steps.
    expect(b.member('bio', 'bi_iter.bi_sector').offsetBytes).toBe(iter.offsetBytes + inner.offsetBytes);
    expect(b.member('bio', 'bi_iter.bi_sector').sizeBytes).toBe(8);
    expect(b.kindOf(b.member('bio', 'bi_bdev').typeId)).toBe(BtfKind.Ptr);
    expect(b.find(BtfKind.Typedef, 'btf_trace_block_bio_queue')).toBeGreaterThan(0);
    expect(b.enumValue('REQ_OP_WRITE')).toBe(1);
  });
});
