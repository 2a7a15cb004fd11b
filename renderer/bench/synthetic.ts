// Seeded, deterministic data for the UI speed bench: a 2 TiB disk with a million used extents (and
// changed / snapshot overlays), and a source's snapshot tree with branches and long chains.
import type { VolumeInfo } from '../../agent-core/api/disk-layout.js';
import type { Extent } from '../../agent-core/api/extents.js';
import type { BackupMode, SnapshotSummary } from '../../agent-core/api/snapshot.js';

/** mulberry32: small, fast, and the same sequence on every engine for a seed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;
const TiB = 1024 * GiB;

export interface SyntheticDisk {
  sizeBytes: number;
  blockSize: number;
  volumes: VolumeInfo[];
  used: Extent[];
  changed: Extent[];
  snapshot: Extent[];
}

function volume(index: number, startBytes: number, sizeBytes: number, filesystem: VolumeInfo['filesystem'], label: string | null): VolumeInfo {
  return { index, startBytes, sizeBytes, partitionType: null, filesystem, label, uuid: null, usedBytes: 0 };
}

/**
 * `extentCount` used extents over a `sizeBytes` disk, in 4 KiB blocks: one extent per equal slot,
 * its length following a slowly varying density (full regions, sparse regions) plus noise, so every
 * zoom level has texture. `changed` touches every 50th extent; `snapshot` drops every 10th.
 */
export function syntheticDisk(options: { sizeBytes?: number; extentCount?: number; seed?: number } = {}): SyntheticDisk {
  const sizeBytes = options.sizeBytes ?? 2 * TiB;
  const count = options.extentCount ?? 1_000_000;
  const random = prng(options.seed ?? 1);
  const blockSize = 4 * KiB;
  const slotBlocks = Math.floor(sizeBytes / count / blockSize);
  if (slotBlocks < 2) throw new Error('disk too small for that many extents');
  const used: Extent[] = new Array(count);
  const changed: Extent[] = [];
  const snapshot: Extent[] = [];
  for (let i = 0; i < count; i++) {
    const phase = i / count;
    const density = 0.15 + 0.8 * Math.abs(Math.sin(phase * 37) * Math.cos(phase * 5));
    const lengthBlocks = Math.max(1, Math.min(slotBlocks - 1, Math.round(slotBlocks * density * (0.5 + random()))));
    const gapBlocks = Math.floor(random() * (slotBlocks - lengthBlocks));
    const start = (i * slotBlocks + gapBlocks) * blockSize;
    const extent: Extent = [start, lengthBlocks * blockSize];
    used[i] = extent;
    if (i % 50 === 7) changed.push([start, Math.max(1, Math.floor(lengthBlocks / 3)) * blockSize]);
    if (i % 10 !== 3) snapshot.push(extent);
  }
  const volumes = [
    volume(1, 1 * MiB, 512 * MiB, 'vfat', 'EFI'),
    volume(2, 513 * MiB, 200 * GiB, 'ext4', 'root'),
    volume(3, 513 * MiB + 200 * GiB, 1.5 * TiB, 'xfs', 'home'),
    volume(4, 513 * MiB + 200 * GiB + 1.5 * TiB, 32 * GiB, 'swap', null),
  ];
  return { sizeBytes, blockSize, volumes, used, changed, snapshot };
}

function hexId(random: () => number): string {
  let s = '';
  for (let i = 0; i < 8; i++) s += Math.floor(random() * 0x100000000).toString(16).padStart(8, '0');
  return s;
}

/**
 * `count` snapshots of one source, an hour apart: lines with a full every 64, a resync now and then,
 * a restore every ~60 snapshots that starts a branch from an older snapshot, tags (manual
 * snapshots) on about one in twelve, and a fresh chain (no parent) every `chainEvery`, so chains
 * come near the default limit of 128 without passing it.
 */
export function syntheticSnapshots(options: { count?: number; seed?: number; chainEvery?: number } = {}): SnapshotSummary[] {
  const count = options.count ?? 1000;
  const chainEvery = options.chainEvery ?? 125;
  const random = prng(options.seed ?? 2);
  const sourceId = hexId(random);
  const startMs = Date.UTC(2026, 0, 1);
  const list: SnapshotSummary[] = [];
  let tip: SnapshotSummary | null = null;
  let sinceFull = 0;
  for (let i = 0; i < count; i++) {
    let parent = i % chainEvery === 0 ? null : tip;
    // A restore to an older snapshot: the next backup's parent is that snapshot, so a branch starts.
    if (parent && i % 60 === 59 && i % chainEvery > 12) parent = list[list.length - 1 - Math.floor(random() * 10) - 2]!;
    let mode: BackupMode = 'incremental';
    let modeReason: string | null = null;
    if (!parent) {
      mode = 'full';
      modeReason = 'no earlier snapshot of this source';
    } else if (sinceFull >= 63) {
      mode = 'full';
      modeReason = 'a full every 64 snapshots';
    } else if (random() < 0.03) {
      mode = 'resync';
      modeReason = 'the change tracker lost track after a reboot';
    }
    sinceFull = mode === 'full' ? 0 : sinceFull + 1;
    const sourceBytes = 512 * GiB;
    const validBytes = Math.round(sourceBytes * (0.4 + random() * 0.1));
    const bytesNew = mode === 'incremental' ? Math.round(random() * 2 * GiB) : validBytes;
    const snapshot: SnapshotSummary = {
      id: hexId(random),
      sourceId,
      sourceName: '/dev/nvme0n1',
      parentId: parent ? parent.id : null,
      mode,
      modeReason,
      tracker: 'live',
      createdAt: new Date(startMs + i * 3_600_000).toISOString(),
      hostname: 'workstation',
      tags: random() < 0.08 ? ['manual', `note-${i}`] : [],
      sourceBytes,
      validBytes,
      bytesRead: mode === 'incremental' ? bytesNew * 2 : validBytes,
      bytesNew,
      bytesStored: Math.round(bytesNew * (0.35 + random() * 0.2)),
      durationMs: Math.round(1000 + random() * 600_000),
    };
    list.push(snapshot);
    tip = snapshot;
  }
  return list;
}
