import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fingerprintTree, localBackend, tempRepoDir, type TempRepoDir } from '../../test-support/repo-dir.js';
import { until } from '../../test-support/until.js';
import { BlobType, Compression, DEFAULTS, REPO_FORMAT_VERSION } from './format.js';
import type { Manifest } from './manifest.js';
import { sealBlob } from './pack.js';
import { Repository, RepositoryMemo, type RepoConfig } from './repository.js';

const strataError = (code: string) => expect.objectContaining({ name: 'StrataError', code });

const PASSWORD = 'correct horse battery staple';
const noPassword = (): string | null => {
  throw new Error('an unencrypted repository must not ask for a password');
};

function readConfig(dir: string): RepoConfig {
  return JSON.parse(readFileSync(path.join(dir, 'config'), 'utf8')) as RepoConfig;
}

function editConfig(dir: string, edit: (c: Record<string, unknown>) => void): void {
  const config = readConfig(dir) as unknown as Record<string, unknown>;
  edit(config);
  writeFileSync(path.join(dir, 'config'), JSON.stringify(config, null, 2) + '\n');
}

let repo: TempRepoDir;
beforeEach(() => {
  repo = tempRepoDir();
});
afterEach(() => repo.cleanup());

describe('Repository.init', () => {
  it('makes an unencrypted repository with its id key in the config and no key files', async () => {
    const r = await Repository.init(repo.backend, { encryption: 'none' });
    const config = readConfig(repo.dir);
    expect(config).toMatchObject({ magic: 'strata-repository', version: REPO_FORMAT_VERSION, encryption: 'none', packTargetBytes: DEFAULTS.packTargetBytes });
    expect(config.idKey).toBe(r.keys.idKey.toString('hex'));
    expect(r.keys.encKey).toBeNull();
    expect(await repo.backend.list('keys')).toEqual([]);
    expect(readdirSync(repo.dir).sort()).toEqual(['config', 'data', 'index', 'keys', 'locks', 'snapshots', 'tmp']);
  });

  it('makes an encrypted repository whose keys live only in a password-wrapped key file', async () => {
    const r = await Repository.init(repo.backend, { encryption: 'aes-256-gcm', password: PASSWORD, fullEvery: 7 });
    const config = readConfig(repo.dir);
    expect(config.encryption).toBe('aes-256-gcm');
    expect(config.fullEvery).toBe(7);
    expect(config.idKey).toBeUndefined();
    const keyFiles = await repo.backend.list('keys');
    expect(keyFiles).toHaveLength(1);
    const keyFile = (await repo.backend.load('keys', keyFiles[0]!)).toString('utf8');
    expect(JSON.parse(keyFile)).toMatchObject({ kdf: { name: 'scrypt', N: 32768, r: 8, p: 1 } });
    expect(keyFile).not.toContain(r.keys.idKey.toString('hex'));
    expect(keyFile).not.toContain(r.keys.idKey.toString('base64'));
  });

  it('an encrypted repository without a password is refused before anything is written', async () => {
    await expect(Repository.init(repo.backend, { encryption: 'aes-256-gcm' })).rejects.toThrow(strataError('InvalidInput'));
    expect(readdirSync(repo.root)).toEqual([]);
  });

  it('refuses a fullEvery that is not a positive whole number', async () => {
    await expect(Repository.init(repo.backend, { encryption: 'none', fullEvery: 0 })).rejects.toThrow(strataError('InvalidInput'));
    await expect(Repository.init(repo.backend, { encryption: 'none', fullEvery: 2.5 })).rejects.toThrow(strataError('InvalidInput'));
  });

  it('refuses a directory that holds other files and leaves them alone', async () => {
    mkdirSync(repo.dir);
    writeFileSync(path.join(repo.dir, 'holiday.jpg'), 'not a repository');
    const before = fingerprintTree(repo.dir);
    await expect(Repository.init(repo.backend, { encryption: 'none' })).rejects.toThrow(strataError('InvalidInput'));
    expect(fingerprintTree(repo.dir)).toEqual(before);
  });

  it('refuses a directory that already holds a repository and leaves it alone', async () => {
    await Repository.init(repo.backend, { encryption: 'none' });
    const before = fingerprintTree(repo.dir);
    await expect(Repository.init(repo.backend, { encryption: 'none' })).rejects.toThrow(/already holds a Strata repository/);
    expect(fingerprintTree(repo.dir)).toEqual(before);
  });
});

describe('Repository.open', () => {
  it('opens an unencrypted repository with the same keys, without asking for a password', async () => {
    const made = await Repository.init(repo.backend, { encryption: 'none' });
    const opened = await Repository.open(localBackend(repo.dir), noPassword);
    expect(opened.id).toBe(made.id);
    expect(opened.keys.idKey.equals(made.keys.idKey)).toBe(true);
    expect(opened.keys.blockKey.equals(made.keys.blockKey)).toBe(true);
  });

  it('opens an encrypted repository with the right password to the same keys', async () => {
    const made = await Repository.init(repo.backend, { encryption: 'aes-256-gcm', password: PASSWORD });
    const opened = await Repository.open(localBackend(repo.dir), () => PASSWORD);
    expect(opened.keys.encKey!.equals(made.keys.encKey!)).toBe(true);
    expect(opened.keys.idKey.equals(made.keys.idKey)).toBe(true);
  });

  it('a wrong password is PermissionDenied and leaves the directory byte-for-byte unchanged', async () => {
    await Repository.init(repo.backend, { encryption: 'aes-256-gcm', password: PASSWORD });
    const before = fingerprintTree(repo.dir);
    await expect(Repository.open(localBackend(repo.dir), () => 'not the password')).rejects.toThrow(strataError('PermissionDenied'));
    expect(fingerprintTree(repo.dir)).toEqual(before);
  });

  it('a missing password for an encrypted repository is InvalidInput and says how to give one', async () => {
    await Repository.init(repo.backend, { encryption: 'aes-256-gcm', password: PASSWORD });
    const before = fingerprintTree(repo.dir);
    await expect(Repository.open(localBackend(repo.dir), () => null)).rejects.toThrow(strataError('InvalidInput'));
    await expect(Repository.open(localBackend(repo.dir), () => '')).rejects.toThrow(/--password-file/);
    expect(fingerprintTree(repo.dir)).toEqual(before);
  });

  it('a newer format version is Unsupported, refused before anything is written', async () => {
    await Repository.init(repo.backend, { encryption: 'aes-256-gcm', password: PASSWORD });
    editConfig(repo.dir, (c) => {
      c.version = 2;
    });
    const before = fingerprintTree(repo.dir);
    let asked = false;
    const err = await Repository.open(localBackend(repo.dir), () => {
      asked = true;
      return PASSWORD;
    }).catch((e: unknown) => e);
    expect(err).toEqual(strataError('Unsupported'));
    expect((err as Error).message).toMatch(/upgrade Strata/);
    expect(asked).toBe(false);
    expect(fingerprintTree(repo.dir)).toEqual(before);
  });

  it('a directory without a config is NotFound', async () => {
    mkdirSync(repo.dir);
    await expect(Repository.open(repo.backend, noPassword)).rejects.toThrow(strataError('NotFound'));
  });

  it('a config that is not JSON, or misses a field, is Corrupt', async () => {
    await Repository.init(repo.backend, { encryption: 'none' });
    const good = readFileSync(path.join(repo.dir, 'config'));
    writeFileSync(path.join(repo.dir, 'config'), '{ "magic": ');
    await expect(Repository.open(localBackend(repo.dir), noPassword)).rejects.toThrow(strataError('Corrupt'));
    writeFileSync(path.join(repo.dir, 'config'), good);
    editConfig(repo.dir, (c) => {
      delete c.packTargetBytes;
    });
    await expect(Repository.open(localBackend(repo.dir), noPassword)).rejects.toThrow(/packTargetBytes/);
  });
});

describe('blobs and manifests', () => {
  /** An unencrypted or encrypted repository whose packs close after about 4 KiB. */
  async function smallPackRepo(encryption: 'none' | 'aes-256-gcm'): Promise<{ open: () => Promise<Repository> }> {
    await Repository.init(repo.backend, { encryption, password: PASSWORD });
    editConfig(repo.dir, (c) => {
      c.packTargetBytes = 4096;
    });
    return { open: () => Repository.open(localBackend(repo.dir), () => PASSWORD) };
  }

  describe.each(['none', 'aes-256-gcm'] as const)('BlobWriter (%s)', (encryption) => {
    it('fills several packs, leaves one merged index, and every blob reads back after reopening', async () => {
      const { open } = await smallPackRepo(encryption);
      const r = await open();
      expect(r.config.packTargetBytes).toBe(4096);
      const blobs = new Map<string, Buffer>();
      const writer = r.writer();
      for (let i = 0; i < 40; i++) {
        const raw = randomBytes(1000);
        const id = randomBytes(32).toString('hex');
        blobs.set(id, raw);
        await writer.addPlain(BlobType.data, id, raw, true);
      }
      await writer.finish();

      const packs = await r.backend.list('data');
      const indexFiles = await r.backend.list('index');
      expect(packs.length).toBeGreaterThanOrEqual(8);
      expect(indexFiles).toHaveLength(1);
      expect(writer.bytesStored).toBe(
        (await Promise.all(packs.map((p) => r.backend.size('data', p)))).reduce((a, b) => a + b, 0) + (await r.backend.size('index', indexFiles[0]!)),
      );
      for (const [id, raw] of blobs) expect((await r.readBlob(id, BlobType.data)).equals(raw)).toBe(true);

      const again = await open();
      expect(await again.loadIndex()).toEqual(indexFiles);
      expect(again.index.size).toBe(blobs.size);
      expect([...again.index.packs.keys()].sort()).toEqual([...packs].sort());
      expect([...again.index.packs.values()].reduce((a, b) => a + b, 0)).toBe(blobs.size);
      for (const [id, raw] of blobs) {
        expect(again.index.get(id)!.rawLength).toBe(raw.length);
        expect((await again.readBlob(id, BlobType.data)).equals(raw)).toBe(true);
      }
    });

    it('stores a compressible blob compressed and reads it back whole', async () => {
      const { open } = await smallPackRepo(encryption);
      const r = await open();
      const raw = Buffer.alloc(64 << 10, 0x5a);
      const id = r.chunkId(raw);
      const writer = r.writer();
      await writer.addPlain(BlobType.data, id, raw, true);
      await writer.finish();
      const entry = r.index.get(id)!;
      expect(entry.compression).toBe(Compression.zstd);
      expect(entry.storedLength).toBeLessThan(1024);
      expect((await r.readBlob(id, BlobType.data)).equals(raw)).toBe(true);
    });
  });

  it('a memo learns the index files its writer wrote, so a later load reads none of them back', async () => {
    const { open } = await smallPackRepo('aes-256-gcm');
    const memo = new RepositoryMemo();
    const r = await open();
    r.memo = memo;
    const blobs = new Map<string, Buffer>();
    const writer = r.writer();
    for (let i = 0; i < 12; i++) {
      const raw = randomBytes(1000);
      const id = r.chunkId(raw);
      blobs.set(id, raw);
      await writer.addPlain(BlobType.data, id, raw, false);
    }
    await writer.finish();
    const indexFiles = await r.backend.list('index');
    expect(indexFiles).toHaveLength(1);
    // The merged file is in the memo; the small ones it replaced go at the next load.
    expect(memo.indexFiles.has(indexFiles[0]!)).toBe(true);

    const again = await open();
    again.memo = memo;
    const loads: string[] = [];
    const load = again.backend.load.bind(again.backend);
    again.backend.load = (...args: Parameters<typeof load>) => {
      if (args[0] === 'index') loads.push(args[1]);
      return load(...args);
    };
    expect(await again.loadIndex()).toEqual(indexFiles);
    expect(loads).toEqual([]);
    expect([...memo.indexFiles.keys()]).toEqual(indexFiles);
    // What the memo holds is what a fresh decode of the file gives.
    const fresh = await open();
    await fresh.loadIndex();
    for (const [id, raw] of blobs) {
      expect(again.index.get(id)).toEqual(fresh.index.get(id));
      expect((await again.readBlob(id, BlobType.data)).equals(raw)).toBe(true);
    }
  });

  it('a blob added twice, or already indexed, is stored once', async () => {
    const { open } = await smallPackRepo('none');
    const r = await open();
    const raw = randomBytes(500);
    const id = r.chunkId(raw);
    const first = r.writer();
    await first.addPlain(BlobType.data, id, raw, false);
    await first.addPlain(BlobType.data, id, raw, false);
    expect(first.has(id)).toBe(true);
    await first.finish();
    const second = r.writer();
    await second.addPlain(BlobType.data, id, raw, false);
    await second.finish();
    expect(second.bytesStored).toBe(0);
    expect(await r.backend.list('data')).toHaveLength(1);
    expect(r.index.packs.size).toBe(1);
  });

  it('a writer that fills one pack writes its index and no merged copy', async () => {
    const { open } = await smallPackRepo('none');
    const r = await open();
    const writer = r.writer();
    await writer.addPlain(BlobType.map, r.mapPageId(Buffer.from('page')), Buffer.from('page'), false);
    await writer.finish();
    expect(await r.backend.list('index')).toHaveLength(1);
    expect(await r.backend.list('data')).toHaveLength(1);
  });

  describe('a pack written as it fills (a staged file)', () => {
    const tmpFiles = (): { name: string; bytes: number }[] =>
      readdirSync(path.join(repo.dir, 'tmp')).map((name) => ({ name, bytes: readFileSync(path.join(repo.dir, 'tmp', name)).length }));

    /** Adds random blobs of 64 KiB, about 1 MiB in all, each telling when its memory may be reused. */
    async function fill(r: Repository, writer: ReturnType<Repository['writer']>, released: Set<string>): Promise<Map<string, Buffer>> {
      const blobs = new Map<string, Buffer>();
      for (let i = 0; i < 16; i++) {
        const raw = randomBytes(64 << 10);
        const id = r.chunkId(raw);
        blobs.set(id, raw);
        const sealed = sealBlob(r.keys, BlobType.data, id, raw);
        await writer.add(BlobType.data, Compression.none, id, sealed, raw.length, () => released.add(id));
      }
      return blobs;
    }

    it('reaches the disk before finish, releases blobs as they are written, and ends as the pack a whole write makes', async () => {
      await Repository.init(repo.backend, { encryption: 'aes-256-gcm', password: PASSWORD });
      const r = await Repository.open(localBackend(repo.dir), () => PASSWORD);
      const writer = r.writer();
      const released = new Set<string>();
      const blobs = await fill(r, writer, released);
      // Appends run behind the adds: blobs are released once written, long before finish.
      await until('blobs released by their append', () => released.size > 0);
      expect(tmpFiles().some((f) => f.bytes >= 256 << 10)).toBe(true);
      expect(await r.backend.list('data')).toEqual([]);
      await writer.finish();
      expect(released.size).toBe(blobs.size);
      expect(tmpFiles()).toEqual([]);
      const [pack] = await r.backend.list('data');
      // A pack's name is the SHA-256 of its bytes, hashed as they were added and written.
      expect(createHash('sha256').update(await r.backend.load('data', pack!)).digest('hex')).toBe(pack);
      for (const [id, raw] of blobs) expect((await r.readBlob(id, BlobType.data)).equals(raw)).toBe(true);
    });

    it('is dropped with its staged file when the backup fails (abandon), and every blob is released', async () => {
      await Repository.init(repo.backend, { encryption: 'none', password: null });
      const r = await Repository.open(localBackend(repo.dir), () => null);
      const writer = r.writer();
      const released = new Set<string>();
      const blobs = await fill(r, writer, released);
      await until('a staged pack', () => tmpFiles().length > 0);
      await writer.abandon();
      expect(released.size).toBe(blobs.size);
      expect(tmpFiles()).toEqual([]);
      expect(await r.backend.list('data')).toEqual([]);
      expect(await r.backend.list('index')).toEqual([]);
    });
  });

  it('reading a blob as the wrong type is Corrupt, and an unknown id is NotFound', async () => {
    const { open } = await smallPackRepo('aes-256-gcm');
    const r = await open();
    const raw = Buffer.from('digests');
    const id = r.digestsBlobId('ab'.repeat(32));
    const writer = r.writer();
    await writer.addPlain(BlobType.digests, id, raw, false);
    await writer.finish();
    await expect(r.readBlob(id, BlobType.data)).rejects.toThrow(strataError('Corrupt'));
    await expect(r.readBlob('cd'.repeat(32), BlobType.data)).rejects.toThrow(strataError('NotFound'));
    expect((await r.readBlob(id, BlobType.digests)).equals(raw)).toBe(true);
  });

  it('a pack altered on disk fails authentication when read (encrypted)', async () => {
    const { open } = await smallPackRepo('aes-256-gcm');
    const r = await open();
    const raw = randomBytes(300);
    const id = r.chunkId(raw);
    const writer = r.writer();
    await writer.addPlain(BlobType.data, id, raw, false);
    await writer.finish();
    const packId = r.index.get(id)!.packId;
    const file = path.join(repo.dir, 'data', packId.slice(0, 2), packId);
    const bytes = readFileSync(file);
    bytes[100]! ^= 1;
    writeFileSync(file, bytes);
    await expect(r.readBlob(id, BlobType.data)).rejects.toThrow(strataError('Corrupt'));
  });

  it('keyed ids differ between repositories for the same content', async () => {
    const a = await Repository.init(repo.backend, { encryption: 'none' });
    const other = tempRepoDir();
    try {
      const b = await Repository.init(other.backend, { encryption: 'none' });
      const content = Buffer.from('same content');
      expect(a.chunkId(content)).not.toBe(b.chunkId(content));
      expect(a.mapPageId(content)).not.toBe(b.mapPageId(content));
      expect(a.sourceId('/dev/vdb')).not.toBe(b.sourceId('/dev/vdb'));
      expect(a.sourceId('/dev/vdb')).toBe(a.sourceId('/dev/vdb'));
    } finally {
      other.cleanup();
    }
  });

  it.each(['none', 'aes-256-gcm'] as const)('a saved manifest (%s) lists and loads back after reopening', async (encryption) => {
    const { open } = await smallPackRepo(encryption);
    const r = await open();
    const manifest: Manifest = {
      format: 1,
      summary: {
        sourceId: r.sourceId('/dev/vdb'),
        sourceName: '/dev/vdb',
        parentId: null,
        mode: 'full',
        modeReason: null,
        tracker: 'none',
        createdAt: '2025-01-02T03:04:05.000Z',
        hostname: 'host',
        tags: [],
        sourceBytes: 4096,
        validBytes: 4096,
        bytesRead: 4096,
        bytesNew: 4096,
        bytesStored: 100,
        durationMs: 5,
      },
      blockSizeBytes: 4096,
      slotBytes: 1 << 20,
      mapPageBytes: 256 << 20,
      incrementalsSinceFull: 0,
      layout: null,
      pages: [[0, 4096, r.mapPageId(Buffer.from('page'))]],
    };
    const { id, sizeBytes } = await r.saveManifest(manifest);
    expect(sizeBytes).toBe(await r.backend.size('snapshots', id));
    const again = await open();
    expect(await again.listSnapshotIds()).toEqual([id]);
    expect(await again.loadManifest(id)).toEqual(manifest);
  });
});
