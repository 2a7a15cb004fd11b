// The stored repository password's file handling. Electron's safeStorage needs the Electron binary,
// which cannot be installed here, so these tests encrypt with AES-256-GCM from node:crypto behind the
// same interface; the file's format, mode, atomic replacement and refusals are what is tested.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { StrataError } from '../agent-core/api/errors.js';
import { openAgent } from '../agent/agent.js';
import { dispatch } from '../agent/dispatch.js';
import { Scratch } from '../test-support/disk.js';
import { PASSWORD_FILE_NAME, PasswordStore, rememberPasswordOnInit, type Encryptor } from './secrets.js';

/** A real cipher in place of the desktop keyring (safeStorage needs the Electron binary). */
class AesEncryptor implements Encryptor {
  private readonly key = randomBytes(32);
  constructor(
    private readonly backend = 'gnome_libsecret',
    private readonly available = true,
  ) {}
  isEncryptionAvailable(): boolean {
    return this.available;
  }
  getSelectedStorageBackend(): string {
    return this.backend;
  }
  encryptString(plain: string): Buffer {
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', this.key, iv);
    const body = Buffer.concat([c.update(plain, 'utf8'), c.final()]);
    return Buffer.concat([iv, c.getAuthTag(), body]);
  }
  decryptString(data: Buffer): string {
    const d = createDecipheriv('aes-256-gcm', this.key, data.subarray(0, 12));
    d.setAuthTag(data.subarray(12, 28));
    return Buffer.concat([d.update(data.subarray(28)), d.final()]).toString('utf8');
  }
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return err instanceof StrataError ? `${err.code}: ${err.message}` : `not a StrataError: ${String(err)}`;
  }
  return undefined;
}

describe('the stored repository password (node:crypto in place of safeStorage, which needs the Electron binary)', () => {
  const scratch = new Scratch('strata-secrets-');
  afterAll(() => scratch.cleanup());
  let n = 0;
  const fresh = (encryptor: Encryptor = new AesEncryptor()) => new PasswordStore(scratch.path(`state-${++n}`), encryptor);

  it('keeps the password encrypted in a 0600 file in a 0700 state directory, and reads it back', () => {
    const store = fresh();
    expect(store.load()).toBeNull();
    store.save('correct horse battery staple');
    expect(store.file.endsWith(`/${PASSWORD_FILE_NAME}`)).toBe(true);
    expect(statSync(store.file).mode & 0o777).toBe(0o600);
    expect(statSync(scratch.path(`state-${n}`)).mode & 0o777).toBe(0o700);
    expect(readFileSync(store.file).includes('correct horse')).toBe(false);
    expect(store.load()).toBe('correct horse battery staple');
  });

  it('replaces the password whole and leaves no temporary file', () => {
    const store = fresh();
    store.save('first');
    store.save('second');
    expect(store.load()).toBe('second');
    expect(readdirSync(scratch.path(`state-${n}`))).toEqual([PASSWORD_FILE_NAME]);
  });

  it('stores nothing without a keyring, and says how to give the password instead', () => {
    for (const encryptor of [new AesEncryptor('basic_text'), new AesEncryptor('gnome_libsecret', false)]) {
      const store = fresh(encryptor);
      expect(codeOf(() => store.save('pw'))).toMatch(/^Unsupported: .*STRATA_PASSWORD/);
      expect(existsSync(store.file)).toBe(false);
    }
    expect(codeOf(() => fresh().save(''))).toMatch(/^InvalidInput/);
  });

  it('tightens a file someone made readable by others', () => {
    const store = fresh();
    store.save('pw');
    chmodSync(store.file, 0o644);
    expect(store.load()).toBe('pw');
    expect(statSync(store.file).mode & 0o777).toBe(0o600);
  });

  it('refuses a file that is not a stored password, or one the keyring cannot decrypt, telling to delete it', () => {
    const store = fresh();
    mkdirSync(scratch.path(`state-${n}`), { recursive: true });
    writeFileSync(store.file, 'hello', { mode: 0o600 });
    expect(codeOf(() => store.load())).toMatch(/^Corrupt: .*delete it/);
    const other = fresh();
    other.save('pw');
    const stranger = new PasswordStore(scratch.path(`state-${n}`), new AesEncryptor());
    expect(codeOf(() => stranger.load())).toMatch(/^Corrupt: .*cannot be decrypted.*delete/);
    const dir = fresh();
    mkdirSync(dir.file, { recursive: true });
    expect(codeOf(() => dir.load())).toMatch(/^Corrupt: .*not a regular file/);
  });

  it('forgets the password', () => {
    const store = fresh();
    store.save('pw');
    store.forget();
    expect(store.load()).toBeNull();
    store.forget();
  });
});

describe('remembering the password of a repository the console made (node:crypto in place of safeStorage)', () => {
  const scratch = new Scratch('strata-remember-');
  afterAll(() => scratch.cleanup());

  it('stores the password given to repository:init, and only on success', async () => {
    const agent = await openAgent({ stateDir: scratch.path('state'), log: () => undefined });
    try {
      const store = new PasswordStore(scratch.path('state'), new AesEncryptor());
      const lines: string[] = [];
      const handlers = rememberPasswordOnInit(agent.handlers, store, (l) => lines.push(l));
      const refused = await dispatch(handlers, 'repository:init', { repo: scratch.path('enc'), encryption: 'aes-256-gcm' }, () => undefined);
      expect(refused).toMatchObject({ ok: false, error: { code: 'InvalidInput' } });
      expect(store.load()).toBeNull();
      const made = await dispatch(handlers, 'repository:init', { repo: scratch.path('enc'), encryption: 'aes-256-gcm', password: 'hunter2-but-longer' }, () => undefined);
      expect(made).toMatchObject({ ok: true, value: { encryption: 'aes-256-gcm' } });
      expect(store.load()).toBe('hunter2-but-longer');
      expect(lines).toEqual([expect.stringMatching(/^remembered the password of .*enc in .*repository-password\.enc$/)]);
      expect(lines.join('')).not.toContain('hunter2');
    } finally {
      await agent.close();
    }
  });

  it('makes the repository but stores nothing where no keyring protects the password', async () => {
    const agent = await openAgent({ stateDir: scratch.path('state2'), log: () => undefined });
    try {
      const store = new PasswordStore(scratch.path('state2'), new AesEncryptor('basic_text'));
      const lines: string[] = [];
      const made = await dispatch(rememberPasswordOnInit(agent.handlers, store, (l) => lines.push(l)), 'repository:init', { repo: scratch.path('enc2'), encryption: 'aes-256-gcm', password: 'pw-pw-pw' }, () => undefined);
      expect(made.ok).toBe(true);
      expect(existsSync(store.file)).toBe(false);
      expect(lines).toEqual([expect.stringContaining('not remembering the password')]);
    } finally {
      await agent.close();
    }
  });
});
