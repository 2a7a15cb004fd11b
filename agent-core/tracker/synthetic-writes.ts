// Seeded write patterns for sizing the change map: a typical day on a server volume and the
// adversarial every-other-block pattern. Shared by the tracker's tests and bench/tracker-memory.mjs.

export interface Write {
  readonly offsetBytes: number;
  readonly lengthBytes: number;
}

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;
/** ext4's block group: inode table and bitmaps sit at the start of each one. */
const GROUP_BYTES = 128 * MiB;

/** mulberry32: small, fast and the same on every machine. */
function rng(seed: number): { next(): number; int(lo: number, hi: number): number; logInt(lo: number, hi: number): number } {
  let state = seed >>> 0;
  const next = (): number => {
    state = (state + 0x6d2b79f5) | 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)),
    logInt: (lo, hi) => Math.round(Math.exp(Math.log(lo) + next() * (Math.log(hi) - Math.log(lo)))),
  };
}

/**
 * A day on a server volume of sizeBytes (shaped for 100 GB): a 128 MiB journal written round, eight
 * logs appended in unaligned pieces across fragmented extents, a 16 GiB database with three hot
 * 64 MiB regions of 2000 rewritten 8 KiB pages each, 800 scattered cold pages and a sequential
 * 512 MiB WAL, 300 files
 * of 4 KiB–64 MiB rewritten in one to three extents each, and the inode-table and bitmap blocks each
 * file and log touches in its block group: about 34 000 writes leaving 6 500 separate runs. Each
 * source writes in its own order; the sources interleave over the day.
 */
export function typicalDayWrites(sizeBytes: number, seed = 7): Write[] {
  const r = rng(seed);
  // Each source (the journal, one log, one file, one hot region) writes in its own order over its
  // own stretch of the day; the sources interleave, as a server's threads do.
  const streams: Write[][] = [];
  const begin = (): void => {
    streams.push([]);
  };
  const emit = (w: Write): void => {
    streams[streams.length - 1]!.push(w);
  };
  const place = (lengthBytes: number): number => Math.floor(r.int(0, Math.max(0, sizeBytes - lengthBytes)) / (4 * KiB)) * 4 * KiB;
  const metadata = (offsetBytes: number): void => {
    const group = Math.floor(offsetBytes / GROUP_BYTES) * GROUP_BYTES;
    emit({ offsetBytes: group + 4 * KiB * r.int(1, 2), lengthBytes: 4 * KiB }); // block and inode bitmaps
    emit({ offsetBytes: group + 64 * KiB + 4 * KiB * r.int(0, 511), lengthBytes: 4 * KiB }); // inode table
  };

  const journal = 1 * GiB;
  begin();
  for (let o = 0; o < 128 * MiB; o += 64 * KiB) emit({ offsetBytes: journal + o, lengthBytes: 64 * KiB });

  for (let log = 0; log < 8; log++) {
    begin();
    let remaining = r.logInt(4 * MiB, 256 * MiB);
    while (remaining > 0) {
      const extentBytes = Math.min(remaining, 32 * MiB);
      const base = place(extentBytes);
      metadata(base);
      // Appends land at arbitrary byte offsets and lengths: a line, a batch of lines.
      for (let o = 0; o < extentBytes; ) {
        const n = Math.min(extentBytes - o, r.int(100, 64 * KiB));
        emit({ offsetBytes: base + o, lengthBytes: n });
        o += n;
      }
      remaining -= extentBytes;
    }
  }

  const dbBytes = Math.min(16 * GiB, Math.floor(sizeBytes / 4));
  const db = place(dbBytes);
  const page = 8 * KiB;
  for (let hot = 0; hot < 3; hot++) {
    begin();
    const regionBytes = Math.min(64 * MiB, dbBytes);
    const base = db + Math.floor(r.int(0, dbBytes - regionBytes) / page) * page;
    for (let i = 0; i < 2000; i++) emit({ offsetBytes: base + page * r.int(0, regionBytes / page - 1), lengthBytes: page });
  }
  begin();
  for (let i = 0; i < 800; i++) emit({ offsetBytes: db + page * r.int(0, dbBytes / page - 1), lengthBytes: page });
  const wal = place(1 * GiB);
  begin();
  for (let o = 0; o < 512 * MiB; o += 128 * KiB) emit({ offsetBytes: wal + o, lengthBytes: 128 * KiB });

  for (let file = 0; file < 300; file++) {
    begin();
    const fileBytes = r.logInt(4 * KiB, 64 * MiB);
    const extents = r.int(1, 3);
    for (let e = 0; e < extents; e++) {
      const n = Math.ceil(fileBytes / extents);
      const base = place(n);
      metadata(base);
      for (let o = 0; o < n; o += MiB) emit({ offsetBytes: base + o, lengthBytes: Math.min(MiB, n - o) });
    }
  }

  const timed: Array<{ atDayFraction: number; w: Write }> = [];
  for (const stream of streams) {
    const startFraction = r.next() * 0.7;
    const spanFraction = 0.05 + r.next() * (1 - startFraction - 0.05);
    stream.forEach((w, i) => timed.push({ atDayFraction: startFraction + (spanFraction * (i + r.next())) / stream.length, w }));
  }
  const writes = timed.sort((a, b) => a.atDayFraction - b.atDayFraction).map((t) => t.w);
  return writes;
}

/** Every other block of the device, one write each: the pattern no run structure can compress. */
export function* everyOtherBlockWrites(sizeBytes: number, blockSizeBytes = 4 * KiB): Generator<Write> {
  for (let o = 0; o + blockSizeBytes <= sizeBytes; o += 2 * blockSizeBytes) yield { offsetBytes: o, lengthBytes: blockSizeBytes };
}

/** Single-block writes at uniformly random blocks, fraction of the device's blocks in all: no clusters. */
export function* randomBlockWrites(sizeBytes: number, fraction: number, seed = 7, blockSizeBytes = 4 * KiB): Generator<Write> {
  const r = rng(seed);
  const blocks = Math.floor(sizeBytes / blockSizeBytes);
  const count = Math.round(blocks * fraction);
  for (let i = 0; i < count; i++) yield { offsetBytes: r.int(0, blocks - 1) * blockSizeBytes, lengthBytes: blockSizeBytes };
}
