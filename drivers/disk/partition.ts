// A partition as the table readers report it, and the one rule they share for entries that do not
// fit the disk: clamp what overhangs, drop what starts past the end, and say so.

export interface Partition {
  /** Partition number as Linux gives it: MBR primaries 1–4, logicals from 5; GPT entry number. */
  readonly index: number;
  readonly startBytes: number;
  readonly sizeBytes: number;
  /** MBR type as `"0x83"`, or GPT type GUID in lowercase. */
  readonly partitionType: string;
  /** GPT partition name, when set. */
  readonly name?: string;
  /** GPT unique partition GUID, lowercase. */
  readonly uuid?: string;
}

/**
 * Fits [startBytes, startBytes + sizeBytes) to a disk of diskSizeBytes. Returns null, with a warning,
 * when nothing of the partition lies on the disk.
 */
export function fitToDisk(
  what: string,
  startBytes: number,
  sizeBytes: number,
  diskSizeBytes: number,
  warnings: string[],
): { startBytes: number; sizeBytes: number } | null {
  if (startBytes >= diskSizeBytes) {
    warnings.push(`${what} starts at byte ${startBytes}, past the end of the ${diskSizeBytes}-byte disk; it is ignored.`);
    return null;
  }
  const end = startBytes + sizeBytes;
  if (end > diskSizeBytes) {
    warnings.push(
      `${what} ends at byte ${end}, past the end of the ${diskSizeBytes}-byte disk; only the part on the disk is read. The image may be truncated.`,
    );
    return { startBytes, sizeBytes: diskSizeBytes - startBytes };
  }
  return { startBytes, sizeBytes };
}

/** MBR partition types print as two lowercase hex digits: `0x83`, `0x0c`. */
export function formatMbrType(type: number): string {
  return `0x${type.toString(16).padStart(2, '0')}`;
}
