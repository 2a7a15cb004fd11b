// The storage contract of a repository (as restic's Backend): save, load, list, remove of named
// files by type. Every storage target implements it and passes backend-contract.ts's suite.

export type FileType = 'config' | 'keys' | 'data' | 'index' | 'snapshots' | 'locks';

/**
 * A file written in pieces and stored under its name only when committed, as `save` stores a
 * whole one: until then nothing of it is visible, and a killed writer leaves only a temp file
 * (`cleanTemp` drops it).
 */
export interface StagedFile {
  /** Appends parts after everything appended before; the caller starts one append after the last resolved. */
  append(parts: readonly Uint8Array[]): Promise<void>;
  /** Starts writing what was appended to the disk now, so commit has less left to wait for. */
  flush(): Promise<void>;
  /** Stores the file as `name`, atomically and durably (as `save`), and closes it. */
  commit(name: string): Promise<void>;
  /** Closes and drops the file; nothing of it becomes visible. */
  discard(): Promise<void>;
}

export interface RepoBackend {
  /** Where the repository lives, for messages. */
  readonly location: string;
  /** Makes the empty layout; refuses a location that already holds files. */
  create(): Promise<void>;
  /** Whether the location holds a repository (its config file). */
  isRepository(): Promise<boolean>;
  /**
   * Stores a file atomically and durably: a reader sees all of it or none, and it survives a
   * crash once save resolves. Saving an existing name replaces it.
   */
  save(type: FileType, name: string, parts: Uint8Array | readonly Uint8Array[]): Promise<void>;
  /** Reads a whole file, or lengthBytes at offsetBytes. NotFound if missing. */
  load(type: FileType, name: string, offsetBytes?: number, lengthBytes?: number): Promise<Buffer>;
  /**
   * Reads several ranges of one file, as `load` with an offset does for each, opening it once
   * (optional: callers fall back to one `load` per range).
   */
  loadRanges?(type: FileType, name: string, ranges: readonly { readonly offsetBytes: number; readonly lengthBytes: number }[]): Promise<Buffer[]>;
  size(type: FileType, name: string): Promise<number>;
  list(type: FileType): Promise<string[]>;
  /** Removes a file; a missing one is not an error. */
  remove(type: FileType, name: string): Promise<void>;
  /** Drops partial files left by a killed writer; called only under an exclusive lock. */
  cleanTemp(): Promise<void>;
  /**
   * Opens a file of `type` to write in pieces (optional: a writer then keeps a file whole in
   * memory and `save`s it). Packs are written this way while a backup fills them.
   */
  stage?(type: FileType): Promise<StagedFile>;
}
