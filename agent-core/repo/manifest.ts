// The snapshot manifest: one sealed JSON file per snapshot naming every map page of the disk, so any
// snapshot restores on its own without replaying a chain (as in Proxmox Backup).
import * as z from 'zod';
import { StrataError } from '../api/errors.js';
import { HexIdSchema, SnapshotSummarySchema, type SnapshotSummary } from '../api/snapshot.js';
import { hmac, seal, unseal, type RepoKeys } from './crypto.js';
import { LABELS, MANIFEST_VERSION } from './format.js';

export const ManifestSchema = z.object({
  format: z.literal(MANIFEST_VERSION),
  summary: SnapshotSummarySchema.omit({ id: true }),
  blockSizeBytes: z.number().int().positive(),
  slotBytes: z.number().int().positive(),
  mapPageBytes: z.number().int().positive(),
  /** Incrementals since the last full read along the parent chain (0 for a full). */
  incrementalsSinceFull: z.number().int().nonnegative(),
  /**
   * The live tracker's epoch key this snapshot was read under (docs/FORMAT.md §8): the next backup
   * may trust the tracker's changes only if they were recorded under this key. Absent or null when
   * no tracker was running; optional so that manifests written before it stay valid.
   */
  trackerEpoch: z.string().min(1).max(256).nullable().optional(),
  /** The disk's layout when it was read (partition table, volumes), for the console. */
  layout: z.unknown().nullable(),
  /** [startBytes, lengthBytes, page id] for each page, in disk order, covering the source. */
  pages: z.array(z.tuple([z.number().int().nonnegative(), z.number().int().positive(), HexIdSchema])),
});
export type Manifest = z.infer<typeof ManifestSchema>;

const MANIFEST_AAD = Buffer.from('strata v1 snapshot');

export function encodeManifest(keys: RepoKeys, manifest: Manifest): { id: string; bytes: Buffer } {
  const plain = Buffer.from(JSON.stringify(manifest));
  const id = hmac(keys.idKey, Buffer.from(LABELS.snapshot), plain).toString('hex');
  return { id, bytes: seal(keys, plain, MANIFEST_AAD) };
}

export function decodeManifest(keys: RepoKeys, stored: Buffer, id: string): Manifest {
  const plain = unseal(keys, stored, MANIFEST_AAD, `Snapshot ${id}`);
  let json: unknown;
  try {
    json = JSON.parse(plain.toString('utf8'));
  } catch (cause) {
    throw new StrataError('Corrupt', `Snapshot ${id} is not valid JSON; the repository is damaged (run \`strata verify\`).`, { cause });
  }
  const format = (json as { format?: unknown } | null)?.format;
  if (typeof format === 'number' && format > MANIFEST_VERSION) {
    throw new StrataError('Unsupported', `Snapshot ${id} uses manifest format ${format}, newer than this Strata understands; upgrade Strata.`);
  }
  const parsed = ManifestSchema.safeParse(json);
  if (!parsed.success) {
    throw new StrataError('Corrupt', `Snapshot ${id} does not match the manifest format (${parsed.error.issues[0]?.message}); the repository is damaged.`);
  }
  if (hmac(keys.idKey, Buffer.from(LABELS.snapshot), plain).toString('hex') !== id) {
    throw new StrataError('Corrupt', `Snapshot ${id} does not match its name; the file was altered or renamed.`);
  }
  return parsed.data;
}

export function summaryOf(id: string, m: Manifest): SnapshotSummary {
  return { id, ...m.summary };
}
