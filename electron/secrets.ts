// The repository password the console remembers, encrypted by the desktop's keyring (Electron's
// safeStorage) into a 0600 file in the state directory, so scheduled and tray backups of an
// encrypted repository can run without asking. Without a real keyring nothing is stored.
import { chmodSync, closeSync, fsyncSync, lstatSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import path from 'node:path';
import type { Handlers } from '../agent-core/api/contract.js';
import { StrataError, toStrataError } from '../agent-core/api/errors.js';
import type { LogLine } from '../agent/dispatch.js';

/** The part of Electron's safeStorage used here; tests pass their own, since safeStorage needs the Electron binary. */
export interface Encryptor {
  isEncryptionAvailable(): boolean;
  encryptString(plainText: string): Buffer;
  decryptString(encrypted: Buffer): string;
  /** Linux only: 'basic_text' means no keyring, the "encryption" uses a key built into Chromium. */
  getSelectedStorageBackend?(): string;
}

export const PASSWORD_FILE_NAME = 'repository-password.enc';

/** Marks the file's format, so a file of something else is never handed to decryptString. */
const MAGIC = Buffer.from('strata-safestorage-v1\n');

export class PasswordStore {
  readonly file: string;

  constructor(
    private readonly stateDir: string,
    private readonly encryptor: Encryptor,
  ) {
    this.file = path.join(stateDir, PASSWORD_FILE_NAME);
  }

  /** Why a password cannot be kept here, or null if it can. */
  unavailableReason(): string | null {
    if (!this.encryptor.isEncryptionAvailable()) return 'This desktop offers no encryption for stored secrets';
    if (this.encryptor.getSelectedStorageBackend?.() === 'basic_text') return 'No keyring (GNOME Keyring or KWallet) is running to protect a stored password';
    return null;
  }

  save(password: string): void {
    if (password.length === 0) throw new StrataError('InvalidInput', 'The password to remember is empty; type the repository password.');
    const reason = this.unavailableReason();
    if (reason) throw new StrataError('Unsupported', `${reason}, so Strata will not store the repository password; give it with STRATA_PASSWORD instead.`);
    const data = Buffer.concat([MAGIC, this.encryptor.encryptString(password)]);
    const tmp = `${this.file}.${process.pid}.tmp`;
    try {
      mkdirSync(this.stateDir, { recursive: true, mode: 0o700 });
      // Created 0600 before a byte is written, then renamed over the old file: never readable by others, never half written.
      const fd = openSync(tmp, 'wx', 0o600);
      try {
        writeSync(fd, data);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      chmodSync(tmp, 0o600);
      renameSync(tmp, this.file);
    } catch (err) {
      rmSync(tmp, { force: true });
      throw toStrataError(err, `Storing the repository password in ${this.file}`);
    }
  }

  /** The stored password, or null if none is stored. Synchronous, as the agent's password callback is. */
  load(): string | null {
    let data: Buffer;
    try {
      const st = lstatSync(this.file);
      if (!st.isFile()) throw new StrataError('Corrupt', `${this.file} is not a regular file; delete it and enter the repository password again.`);
      if (process.getuid && st.uid !== process.getuid()) {
        throw new StrataError('PermissionDenied', `${this.file} belongs to another user; delete it and enter the repository password again.`);
      }
      // Encrypted, but still nobody else's business; tighten a file someone loosened.
      if ((st.mode & 0o077) !== 0) chmodSync(this.file, 0o600);
      data = readFileSync(this.file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw toStrataError(err, `Reading the stored repository password ${this.file}`);
    }
    if (data.length <= MAGIC.length || !data.subarray(0, MAGIC.length).equals(MAGIC)) {
      throw new StrataError('Corrupt', `${this.file} does not hold a stored password; delete it and enter the repository password again.`);
    }
    if (!this.encryptor.isEncryptionAvailable()) {
      throw new StrataError('Unsupported', 'The desktop keyring is not available, so the stored repository password cannot be read; unlock the keyring or give the password with STRATA_PASSWORD.');
    }
    try {
      return this.encryptor.decryptString(data.subarray(MAGIC.length));
    } catch (err) {
      throw new StrataError('Corrupt', `The stored repository password cannot be decrypted (the keyring changed?); delete ${this.file} and enter the password again.`, { cause: err });
    }
  }

  forget(): void {
    rmSync(this.file, { force: true });
  }
}

/**
 * The embedded agent's handlers, with repository:init remembering the password of the repository it
 * made, so later backups (scheduled, from the tray) can open it. Where no keyring can protect the
 * password it is not stored, and the log says so; the repository is made either way.
 */
export function rememberPasswordOnInit(handlers: Handlers, store: PasswordStore, log: LogLine): Handlers {
  return {
    ...handlers,
    'repository:init': async (input) => {
      const created = await handlers['repository:init'](input);
      if (input.password) {
        try {
          store.save(input.password);
          log(`remembered the password of ${created.path} in ${store.file}`);
        } catch (err) {
          log(`not remembering the password of ${created.path}: ${toStrataError(err).message}`);
        }
      }
      return created;
    },
  };
}
