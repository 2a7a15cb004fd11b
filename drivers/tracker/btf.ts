// A reader for the kernel's own type information (BTF, /sys/kernel/btf/vmlinux): just enough of it
// for the bpf tracker to attach its programs to the block tracepoints directly (tp_btf) instead of
// through perf events. A tp_btf program receives the tracepoint's arguments — a `struct bio *`, a
// `struct request *` — and reads their fields itself, so it must know where each field sits in
// this very kernel's build; BTF says so, and the verifier checks every access against the same
// BTF, so a wrong offset is refused at load time rather than read.
//
// Layout (the kernel's Documentation/bpf/btf.rst): a header {magic 0xeb9f, version 1, flags,
// hdr_len, type_off, type_len, str_off, str_len} in the file's byte order, then the type section (a
// sequence of btf_type records, numbered from 1, each followed by a kind-specific tail) and the
// string section (NUL-terminated names, addressed by offset).
import { readFileSync } from 'node:fs';
import { StrataError } from '../../agent-core/api/errors.js';

export const VMLINUX_BTF = '/sys/kernel/btf/vmlinux';

const MAGIC = 0xeb9f;

/** BTF kinds (info bits 24-28). */
export const BtfKind = {
  Int: 1,
  Ptr: 2,
  Array: 3,
  Struct: 4,
  Union: 5,
  Enum: 6,
  Fwd: 7,
  Typedef: 8,
  Volatile: 9,
  Const: 10,
  Restrict: 11,
  Func: 12,
  FuncProto: 13,
  Var: 14,
  Datasec: 15,
  Float: 16,
  DeclTag: 17,
  TypeTag: 18,
  Enum64: 19,
} as const;
export type BtfKind = (typeof BtfKind)[keyof typeof BtfKind];

interface BtfType {
  readonly kind: BtfKind;
  readonly name: string;
  readonly vlen: number;
  readonly kindFlag: boolean;
  /** size for Int/Struct/Union/Enum/Float/Datasec/Enum64, else the referenced type id. */
  readonly sizeOrType: number;
  /** Where the kind-specific tail starts in the buffer. */
  readonly tail: number;
}

export interface BtfMember {
  /** Byte offset from the start of the outermost structure asked about. */
  readonly offsetBytes: number;
  /** Size of the member's type in bytes (a pointer is 8). */
  readonly sizeBytes: number;
  /** The member's type id with typedefs and qualifiers peeled off. */
  readonly typeId: number;
}

function corrupt(what: string): StrataError {
  return new StrataError('Unsupported', `The kernel's type information (BTF) is not readable: ${what}.`);
}

export class Btf {
  private readonly types: BtfType[] = [];
  private byName: Map<string, number[]> | undefined;

  constructor(private readonly buf: Buffer) {
    if (buf.length < 24) throw corrupt('shorter than its header');
    const le = buf.readUInt16LE(0) === MAGIC;
    if (!le && buf.readUInt16BE(0) !== MAGIC) throw corrupt('no BTF magic');
    if (!le) throw corrupt('big-endian BTF is not supported');
    const hdrLen = buf.readUInt32LE(4);
    const typeOff = hdrLen + buf.readUInt32LE(8);
    const typeLen = buf.readUInt32LE(12);
    const strOff = hdrLen + buf.readUInt32LE(16);
    const strLen = buf.readUInt32LE(20);
    if (typeOff + typeLen > buf.length || strOff + strLen > buf.length) throw corrupt('a section runs past the end');
    const name = (off: number): string => {
      if (off === 0) return '';
      if (off >= strLen) throw corrupt(`a name offset ${off} is outside the string section`);
      const start = strOff + off;
      const end = buf.indexOf(0, start);
      return buf.toString('latin1', start, end < 0 || end > strOff + strLen ? strOff + strLen : end);
    };
    this.types.push({ kind: 0 as BtfKind, name: '', vlen: 0, kindFlag: false, sizeOrType: 0, tail: 0 }); // id 0: void
    let p = typeOff;
    const end = typeOff + typeLen;
    while (p < end) {
      if (p + 12 > end) throw corrupt('a type record is cut short');
      const info = buf.readUInt32LE(p + 4);
      const kind = ((info >>> 24) & 0x1f) as BtfKind;
      const vlen = info & 0xffff;
      const tail = p + 12;
      this.types.push({ kind, name: name(buf.readUInt32LE(p)), vlen, kindFlag: info >>> 31 === 1, sizeOrType: buf.readUInt32LE(p + 8), tail });
      p = tail + tailBytes(kind, vlen);
    }
    if (p !== end) throw corrupt('the type section does not end on a record');
  }

  static readVmlinux(file = VMLINUX_BTF): Btf {
    let buf: Buffer;
    try {
      buf = readFileSync(file);
    } catch (cause) {
      throw new StrataError('Unsupported', `The kernel publishes no type information (${file}: ${(cause as Error).message}); it was built without CONFIG_DEBUG_INFO_BTF.`, { cause });
    }
    return new Btf(buf);
  }

  get typeCount(): number {
    return this.types.length - 1;
  }

  /** The id of the type of this kind and name; throws Unsupported when there is none. */
  find(kind: BtfKind, name: string): number {
    if (!this.byName) {
      this.byName = new Map();
      this.types.forEach((t, id) => {
        if (!t.name) return;
        const ids = this.byName!.get(t.name);
        if (ids) ids.push(id);
        else this.byName!.set(t.name, [id]);
      });
    }
    const id = this.byName.get(name)?.find((i) => this.types[i]!.kind === kind);
    if (id === undefined) throw new StrataError('Unsupported', `This kernel's type information has no ${kindName(kind)} ${name}.`);
    return id;
  }

  /**
   * Where `path` (member names separated by dots, e.g. "bi_iter.bi_sector") sits in `struct name`.
   * Members of anonymous structs and unions are found as if they were the outer struct's own.
   */
  member(structName: string, path: string): BtfMember {
    let id = this.find(BtfKind.Struct, structName);
    let offsetBytes = 0;
    let found: BtfMember | undefined;
    for (const part of path.split('.')) {
      const hit = this.findMember(id, part, 0);
      if (!hit) throw new StrataError('Unsupported', `This kernel's struct ${structName} has no member ${path}.`);
      offsetBytes += hit.offsetBytes;
      found = { offsetBytes, sizeBytes: hit.sizeBytes, typeId: hit.typeId };
      id = hit.typeId;
    }
    return found!;
  }

  /** The value of an enumerator (of any enum), or undefined. */
  enumValue(name: string): number | undefined {
    for (const t of this.types) {
      if (t.kind !== BtfKind.Enum && t.kind !== BtfKind.Enum64) continue;
      const step = t.kind === BtfKind.Enum ? 8 : 12;
      for (let i = 0; i < t.vlen; i++) {
        const at = t.tail + i * step;
        if (this.nameAt(this.buf.readUInt32LE(at)) === name) return t.kind === BtfKind.Enum ? this.buf.readInt32LE(at + 4) : this.buf.readUInt32LE(at + 4);
      }
    }
    return undefined;
  }

  /** Peels typedefs, qualifiers and type tags off a type id. */
  resolve(id: number): number {
    for (let hops = 0; hops < 64; hops++) {
      const t = this.types[id];
      if (!t) throw corrupt(`type id ${id} does not exist`);
      if (t.kind !== BtfKind.Typedef && t.kind !== BtfKind.Volatile && t.kind !== BtfKind.Const && t.kind !== BtfKind.Restrict && t.kind !== BtfKind.TypeTag) return id;
      id = t.sizeOrType;
    }
    throw corrupt('a chain of typedefs does not end');
  }

  /** Size in bytes of a type (after resolve). */
  sizeOf(id: number): number {
    const t = this.types[this.resolve(id)]!;
    switch (t.kind) {
      case BtfKind.Ptr:
        return 8;
      case BtfKind.Array: {
        const nelems = this.buf.readUInt32LE(t.tail + 8);
        return nelems * this.sizeOf(this.buf.readUInt32LE(t.tail));
      }
      case BtfKind.Int:
      case BtfKind.Struct:
      case BtfKind.Union:
      case BtfKind.Enum:
      case BtfKind.Enum64:
      case BtfKind.Float:
        return t.sizeOrType;
      default:
        throw new StrataError('Unsupported', `The kernel type ${t.name || `#${id}`} (${kindName(t.kind)}) has no size.`);
    }
  }

  kindOf(id: number): BtfKind {
    return this.types[this.resolve(id)]!.kind;
  }

  private nameAt(off: number): string {
    // Names are compared only in enumValue, rarely; decode on demand.
    const hdrLen = this.buf.readUInt32LE(4);
    const start = hdrLen + this.buf.readUInt32LE(16) + off;
    const end = this.buf.indexOf(0, start);
    return this.buf.toString('latin1', start, end < 0 ? this.buf.length : end);
  }

  private findMember(structId: number, name: string, depth: number): BtfMember | undefined {
    const t = this.types[this.resolve(structId)]!;
    if ((t.kind !== BtfKind.Struct && t.kind !== BtfKind.Union) || depth > 8) return undefined;
    for (let i = 0; i < t.vlen; i++) {
      const at = t.tail + i * 12;
      const memberName = this.nameAt(this.buf.readUInt32LE(at));
      const typeId = this.resolve(this.buf.readUInt32LE(at + 4));
      const rawOffset = this.buf.readUInt32LE(at + 8);
      const bitOffset = t.kindFlag ? rawOffset & 0xffffff : rawOffset;
      const bitfield = t.kindFlag && rawOffset >>> 24 !== 0;
      if (memberName === name) {
        if (bitfield || bitOffset % 8 !== 0) throw new StrataError('Unsupported', `The kernel's ${t.name}.${name} is a bit field; the bpf tracker cannot read it.`);
        return { offsetBytes: bitOffset / 8, sizeBytes: this.sizeOf(typeId), typeId };
      }
      if (memberName === '') {
        const inner = this.findMember(typeId, name, depth + 1);
        if (inner) return { ...inner, offsetBytes: inner.offsetBytes + bitOffset / 8 };
      }
    }
    return undefined;
  }
}

function tailBytes(kind: BtfKind, vlen: number): number {
  switch (kind) {
    case BtfKind.Int:
    case BtfKind.Var:
    case BtfKind.DeclTag:
      return 4;
    case BtfKind.Array:
      return 12;
    case BtfKind.Struct:
    case BtfKind.Union:
    case BtfKind.Datasec:
    case BtfKind.Enum64:
      return 12 * vlen;
    case BtfKind.Enum:
    case BtfKind.FuncProto:
      return 8 * vlen;
    case BtfKind.Ptr:
    case BtfKind.Fwd:
    case BtfKind.Typedef:
    case BtfKind.Volatile:
    case BtfKind.Const:
    case BtfKind.Restrict:
    case BtfKind.Func:
    case BtfKind.Float:
    case BtfKind.TypeTag:
      return 0;
    default:
      throw corrupt(`unknown type kind ${kind as number}`);
  }
}

function kindName(kind: BtfKind): string {
  return (
    ({ [BtfKind.Struct]: 'struct', [BtfKind.Union]: 'union', [BtfKind.Typedef]: 'typedef', [BtfKind.Enum]: 'enum', [BtfKind.Func]: 'function' } as Record<number, string>)[kind] ??
    `type of kind ${kind as number}`
  );
}
