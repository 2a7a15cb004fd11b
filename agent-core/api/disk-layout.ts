// What a disk looks like to Strata: its partition table and volumes, as `strata inspect --json`
// prints them, the manifest keeps them and the console draws them.
import * as z from 'zod';

export const PartitionTableKindSchema = z.enum(['mbr', 'gpt', 'none']);
export type PartitionTableKind = z.infer<typeof PartitionTableKindSchema>;

export const FILESYSTEM_KINDS = [
  'ext2',
  'ext3',
  'ext4',
  'xfs',
  'btrfs',
  'ntfs',
  'vfat',
  'exfat',
  'swap',
  'LVM2_member',
  'crypto_LUKS',
  'unknown',
] as const;

/** Filesystem (or container) names as blkid spells them; `unknown` when no signature matched. */
export const FilesystemKindSchema = z.enum(FILESYSTEM_KINDS);
export type FilesystemKind = z.infer<typeof FilesystemKindSchema>;

/** A logical volume of an LVM2 physical volume, mapped through its own filesystem. */
export const LogicalVolumeInfoSchema = z.object({
  name: z.string(),
  sizeBytes: z.number().int().nonnegative(),
  filesystem: FilesystemKindSchema,
  label: z.string().nullable(),
  uuid: z.string().nullable(),
  /** Bytes of the LV its filesystem marks used (the whole LV where Strata does not read it). */
  usedBytes: z.number().int().nonnegative(),
});
export type LogicalVolumeInfo = z.infer<typeof LogicalVolumeInfoSchema>;

export const VolumeInfoSchema = z.object({
  /** Partition number as Linux numbers it (MBR logicals from 5, GPT entry number); 0 without a table. */
  index: z.number().int().nonnegative(),
  startBytes: z.number().int().nonnegative(),
  sizeBytes: z.number().int().nonnegative(),
  /** MBR type as `"0x83"` or GPT type GUID in lowercase; null without a table. */
  partitionType: z.string().nullable(),
  filesystem: FilesystemKindSchema,
  label: z.string().nullable(),
  /** The filesystem's UUID as blkid prints it. */
  uuid: z.string().nullable(),
  /** Bytes the filesystem's allocation metadata marks used; the whole volume where Strata does not read it. */
  usedBytes: z.number().int().nonnegative(),
  /** For an LVM2 physical volume: its logical volumes that lie on it and were mapped, in metadata order. */
  logicalVolumes: z.array(LogicalVolumeInfoSchema).optional(),
});
export type VolumeInfo = z.infer<typeof VolumeInfoSchema>;

export const DiskLayoutSchema = z.object({
  sizeBytes: z.number().int().nonnegative(),
  /** The sector size the partition table was found with (the device's logical sector size otherwise). */
  logicalSectorSize: z.number().int().positive(),
  partitionTable: PartitionTableKindSchema,
  volumes: z.array(VolumeInfoSchema),
  /** Sentences about what looked wrong and how Strata played it safe. */
  warnings: z.array(z.string()),
});
export type DiskLayout = z.infer<typeof DiskLayoutSchema>;
