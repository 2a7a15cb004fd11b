// LVM2's text metadata (the volume group description kept in each PV's metadata area), parsed into
// sections and values, and the volume group's logical volumes and segments read out of it.

export type LvmValue = string | number | Array<string | number>;
export interface LvmSection {
  readonly [key: string]: LvmValue | LvmSection;
}

/** More nesting than this is not LVM metadata (a VG is four levels deep). */
const MAX_DEPTH = 16;

type Token = { kind: 'word' | 'string' | 'number'; value: string } | { kind: 'punct'; value: '=' | '{' | '}' | '[' | ']' | ',' };

function tokenize(text: string): Token[] | null {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c === '#') {
      while (i < text.length && text[i] !== '\n') i++;
    } else if (/\s/.test(c)) {
      i++;
    } else if ('={}[],'.includes(c)) {
      tokens.push({ kind: 'punct', value: c as '=' });
      i++;
    } else if (c === '"') {
      let s = '';
      i++;
      while (i < text.length && text[i] !== '"') {
        if (text[i] === '\\' && i + 1 < text.length) i++;
        s += text[i++];
      }
      if (i >= text.length) return null;
      i++;
      tokens.push({ kind: 'string', value: s });
    } else {
      const m = /^[A-Za-z0-9_.+-]+/.exec(text.slice(i, i + 256));
      if (!m) return null;
      tokens.push({ kind: /^-?\d+$/.test(m[0]) ? 'number' : 'word', value: m[0] });
      i += m[0].length;
    }
  }
  return tokens;
}

/** Parses LVM config text; null when it is not well formed. */
export function parseLvmText(text: string): LvmSection | null {
  const tokens = tokenize(text);
  if (!tokens) return null;
  let pos = 0;
  const scalar = (t: Token | undefined): string | number | null => {
    if (!t || t.kind === 'punct') return null;
    if (t.kind === 'number') {
      const n = Number(t.value);
      return Number.isSafeInteger(n) ? n : null;
    }
    return t.value;
  };
  const section = (depth: number, closing: boolean): Record<string, LvmValue | LvmSection> | null => {
    if (depth > MAX_DEPTH) return null;
    const out: Record<string, LvmValue | LvmSection> = Object.create(null) as Record<string, LvmValue | LvmSection>;
    while (pos < tokens.length) {
      const t = tokens[pos]!;
      if (t.kind === 'punct' && t.value === '}') {
        if (!closing) return null;
        pos++;
        return out;
      }
      if (t.kind !== 'word' && t.kind !== 'string') return null;
      const next = tokens[pos + 1];
      pos += 2;
      if (next?.kind === 'punct' && next.value === '{') {
        const inner = section(depth + 1, true);
        if (!inner) return null;
        out[t.value] = inner;
      } else if (next?.kind === 'punct' && next.value === '=') {
        const v = tokens[pos];
        if (v?.kind === 'punct' && v.value === '[') {
          pos++;
          const list: Array<string | number> = [];
          while (pos < tokens.length && !(tokens[pos]!.kind === 'punct' && tokens[pos]!.value === ']')) {
            const item = tokens[pos]!;
            if (item.kind === 'punct' && item.value === ',') {
              pos++;
              continue;
            }
            const s = scalar(item);
            if (s === null) return null;
            list.push(s);
            pos++;
          }
          if (pos >= tokens.length) return null;
          pos++;
          out[t.value] = list;
        } else {
          const s = scalar(v);
          if (s === null) return null;
          out[t.value] = s;
          pos++;
        }
      } else {
        return null;
      }
    }
    return closing ? null : out;
  };
  return section(0, false);
}

export interface LvmStripe {
  readonly pvName: string;
  readonly startExtent: number;
}

export interface LvmSegment {
  readonly startExtent: number;
  readonly extentCount: number;
  readonly type: string;
  /** For striped segments: the areas on PVs, in stripe order. */
  readonly stripes: LvmStripe[];
  /** Bytes per stripe chunk (striped segments with more than one stripe). */
  readonly stripeSizeBytes: number;
  /** Every string value of the segment: the PV and LV names that an unknown type refers to. */
  readonly references: string[];
}

export interface LvmLogicalVolume {
  readonly name: string;
  readonly segments: LvmSegment[];
}

export interface LvmVolumeGroup {
  readonly name: string;
  readonly seqno: number;
  readonly extentBytes: number;
  readonly pvs: Array<{ name: string; id: string; peStartBytes: number; peCount: number }>;
  readonly lvs: LvmLogicalVolume[];
}

const SECTOR = 512;

function isSection(v: LvmValue | LvmSection | undefined): v is LvmSection {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function num(s: LvmSection, key: string): number | null {
  const v = s[key];
  return typeof v === 'number' && v >= 0 ? v : null;
}

function collectStrings(v: LvmValue | LvmSection, out: string[]): void {
  if (typeof v === 'string') {
    out.push(v);
  } else if (Array.isArray(v)) {
    for (const x of v) if (typeof x === 'string') out.push(x);
  } else if (isSection(v)) {
    for (const x of Object.values(v)) collectStrings(x, out);
  }
}

/** The volume group of parsed metadata text: the one top-level section that has physical_volumes. Null when incomplete. */
export function readVolumeGroup(root: LvmSection): LvmVolumeGroup | null {
  const entry = Object.entries(root).find(([, v]) => isSection(v) && isSection(v['physical_volumes']));
  if (!entry) return null;
  const [name, vg] = entry as [string, LvmSection];
  const extentSectors = num(vg, 'extent_size');
  const seqno = num(vg, 'seqno');
  if (!extentSectors || seqno === null) return null;
  const extentBytes = extentSectors * SECTOR;
  const pvs: LvmVolumeGroup['pvs'] = [];
  for (const [pvName, pv] of Object.entries(vg['physical_volumes'] as LvmSection)) {
    if (!isSection(pv)) return null;
    const peStart = num(pv, 'pe_start');
    const peCount = num(pv, 'pe_count');
    if (typeof pv['id'] !== 'string' || peStart === null || peCount === null) return null;
    pvs.push({ name: pvName, id: pv['id'], peStartBytes: peStart * SECTOR, peCount });
  }
  const lvs: LvmLogicalVolume[] = [];
  const lvSection = vg['logical_volumes'];
  for (const [lvName, lv] of Object.entries(isSection(lvSection) ? lvSection : {})) {
    if (!isSection(lv)) return null;
    const segments: LvmSegment[] = [];
    for (const [key, seg] of Object.entries(lv)) {
      if (!/^segment\d+$/.test(key)) continue;
      if (!isSection(seg)) return null;
      const startExtent = num(seg, 'start_extent');
      const extentCount = num(seg, 'extent_count');
      const type = seg['type'];
      if (startExtent === null || !extentCount || typeof type !== 'string') return null;
      const stripes: LvmStripe[] = [];
      const list = seg['stripes'];
      if (type === 'striped') {
        if (!Array.isArray(list) || list.length === 0 || list.length % 2 !== 0) return null;
        for (let i = 0; i < list.length; i += 2) {
          const pvName = list[i];
          const start = list[i + 1];
          if (typeof pvName !== 'string' || typeof start !== 'number' || start < 0) return null;
          stripes.push({ pvName, startExtent: start });
        }
        if (num(seg, 'stripe_count') !== stripes.length || extentCount % stripes.length !== 0) return null;
      }
      const stripeSectors = num(seg, 'stripe_size') ?? 0;
      const references: string[] = [];
      collectStrings(seg, references);
      segments.push({ startExtent, extentCount, type, stripes, stripeSizeBytes: stripeSectors * SECTOR, references });
    }
    lvs.push({ name: lvName, segments: segments.sort((a, b) => a.startExtent - b.startExtent) });
  }
  return { name, seqno, extentBytes, pvs, lvs };
}
