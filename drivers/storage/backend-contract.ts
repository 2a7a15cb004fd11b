// The shared suite every storage target runs (as restic's backend tests): what save, load, list,
// remove and cleanTemp must do, including the errors. A new target is a new file plus one call.
import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { FileType, RepoBackend } from '../../agent-core/repo/backend.js';

/** How the suite makes and counts the partial files a killed writer leaves, which only the target knows. */
export interface LeftoverProbe {
  plant(backend: RepoBackend): Promise<void>;
  count(backend: RepoBackend): Promise<number>;
}

const strataError = (code: string) => expect.objectContaining({ name: 'StrataError', code });

const NAMED_TYPES: readonly Exclude<FileType, 'config'>[] = ['keys', 'data', 'index', 'snapshots', 'locks'];

const hexName = (): string => randomBytes(32).toString('hex');

/**
 * Runs the contract on backends from makeBackend, each at a fresh, empty location that create()
 * has not been called on yet.
 */
export function runBackendContract(name: string, makeBackend: () => Promise<RepoBackend>, leftovers: LeftoverProbe): void {
  async function created(): Promise<RepoBackend> {
    const backend = await makeBackend();
    await backend.create();
    return backend;
  }

  describe(`storage target contract: ${name}`, () => {
    it('a fresh location is not a repository until its config is saved', async () => {
      const backend = await makeBackend();
      expect(await backend.isRepository()).toBe(false);
      await backend.create();
      expect(await backend.isRepository()).toBe(false);
      for (const type of NAMED_TYPES) expect(await backend.list(type)).toEqual([]);
      expect(await backend.list('config')).toEqual([]);
      await backend.save('config', 'config', Buffer.from('{}'));
      expect(await backend.isRepository()).toBe(true);
      expect(await backend.list('config')).toEqual(['config']);
      expect((await backend.load('config', 'config')).toString()).toBe('{}');
    });

    it('create refuses a location that already holds files', async () => {
      const backend = await created();
      await backend.save('config', 'config', Buffer.from('{}'));
      await expect(backend.create()).rejects.toThrow(strataError('InvalidInput'));
      expect(await backend.isRepository()).toBe(true);
    });

    it('saves and loads whole files of every type, from one buffer or several parts', async () => {
      const backend = await created();
      for (const type of NAMED_TYPES) {
        const one = randomBytes(1000);
        const nameOne = hexName();
        await backend.save(type, nameOne, one);
        expect((await backend.load(type, nameOne)).equals(one)).toBe(true);
        expect(await backend.size(type, nameOne)).toBe(one.length);

        const parts = [randomBytes(10), new Uint8Array(0), randomBytes(70_000), Uint8Array.of(1, 2, 3)];
        const nameParts = hexName();
        await backend.save(type, nameParts, parts);
        expect((await backend.load(type, nameParts)).equals(Buffer.concat(parts))).toBe(true);
      }
    });

    it('saves and loads an empty file', async () => {
      const backend = await created();
      const n = hexName();
      await backend.save('index', n, Buffer.alloc(0));
      expect((await backend.load('index', n)).length).toBe(0);
      expect(await backend.size('index', n)).toBe(0);
      expect(await backend.list('index')).toEqual([n]);
    });

    it('loads ranges: at the start, in the middle, up to the end, and empty', async () => {
      const backend = await created();
      const bytes = randomBytes(100_000);
      const n = hexName();
      await backend.save('data', n, bytes);
      expect((await backend.load('data', n, 0, 10)).equals(bytes.subarray(0, 10))).toBe(true);
      expect((await backend.load('data', n, 12_345, 54_321)).equals(bytes.subarray(12_345, 12_345 + 54_321))).toBe(true);
      expect((await backend.load('data', n, 99_990, 10)).equals(bytes.subarray(99_990))).toBe(true);
      expect((await backend.load('data', n, 500, 0)).length).toBe(0);
    });

    it('a range past the end is Corrupt, never short data', async () => {
      const backend = await created();
      const n = hexName();
      await backend.save('data', n, randomBytes(1000));
      await expect(backend.load('data', n, 990, 20)).rejects.toThrow(strataError('Corrupt'));
      await expect(backend.load('data', n, 5000, 1)).rejects.toThrow(strataError('Corrupt'));
    });

    it('loadRanges, where offered, reads several ranges of one file as load does each, and refuses as it does', async () => {
      const backend = await created();
      if (!backend.loadRanges) return;
      const bytes = randomBytes(100_000);
      const n = hexName();
      await backend.save('data', n, bytes);
      const ranges = [
        { offsetBytes: 99_990, lengthBytes: 10 },
        { offsetBytes: 0, lengthBytes: 10 },
        { offsetBytes: 12_345, lengthBytes: 54_321 },
        { offsetBytes: 500, lengthBytes: 0 },
      ];
      const got = await backend.loadRanges('data', n, ranges);
      expect(got.map((b, i) => b.equals(bytes.subarray(ranges[i]!.offsetBytes, ranges[i]!.offsetBytes + ranges[i]!.lengthBytes)))).toEqual([true, true, true, true]);
      await expect(backend.loadRanges('data', n, [{ offsetBytes: 0, lengthBytes: 10 }, { offsetBytes: 99_995, lengthBytes: 10 }])).rejects.toThrow(strataError('Corrupt'));
      await expect(backend.loadRanges('data', hexName(), [{ offsetBytes: 0, lengthBytes: 10 }])).rejects.toThrow(strataError('NotFound'));
    });

    it('loading or sizing a missing file is NotFound', async () => {
      const backend = await created();
      for (const type of NAMED_TYPES) {
        await expect(backend.load(type, hexName())).rejects.toThrow(strataError('NotFound'));
        await expect(backend.size(type, hexName())).rejects.toThrow(strataError('NotFound'));
      }
      await expect(backend.load('data', hexName(), 0, 10)).rejects.toThrow(strataError('NotFound'));
      await expect(backend.load('config', 'config')).rejects.toThrow(strataError('NotFound'));
    });

    it('lists each type separately, every data file across its two-level layout', async () => {
      const backend = await created();
      const saved = new Map<FileType, string[]>();
      for (const type of NAMED_TYPES) {
        const names: string[] = [];
        for (let i = 0; i < (type === 'data' ? 40 : 3); i++) {
          const n = hexName();
          names.push(n);
          await backend.save(type, n, Buffer.from(`${type} ${i}`));
        }
        saved.set(type, names);
      }
      // Names that share the first two characters share a data subdirectory.
      const sibling = `${saved.get('data')![0]!.slice(0, 2)}${'0'.repeat(62)}`;
      await backend.save('data', sibling, Buffer.from('sibling'));
      saved.get('data')!.push(sibling);
      for (const type of NAMED_TYPES) expect([...(await backend.list(type))].sort()).toEqual([...saved.get(type)!].sort());
    });

    it('lists short and non-hex names, as locks and keys use', async () => {
      const backend = await created();
      const names = ['a', 'lock-1.json', 'Z_9', 'm3a8k2-0f1e2d3c4b5a'];
      for (const n of names) await backend.save('locks', n, Buffer.from(n));
      await backend.save('data', 'x', Buffer.from('short data name'));
      expect([...(await backend.list('locks'))].sort()).toEqual([...names].sort());
      expect(await backend.list('data')).toEqual(['x']);
      for (const n of names) expect((await backend.load('locks', n)).toString()).toBe(n);
    });

    it('remove deletes one file of one type; removing a missing file is not an error', async () => {
      const backend = await created();
      const n = hexName();
      await backend.save('index', n, Buffer.from('index'));
      await backend.save('snapshots', n, Buffer.from('snapshot'));
      await backend.remove('index', n);
      expect(await backend.list('index')).toEqual([]);
      await expect(backend.load('index', n)).rejects.toThrow(strataError('NotFound'));
      expect((await backend.load('snapshots', n)).toString()).toBe('snapshot');
      await backend.remove('index', n);
      await backend.remove('data', hexName());
    });

    it('saving an existing name replaces it whole', async () => {
      const backend = await created();
      const n = hexName();
      await backend.save('snapshots', n, randomBytes(5000));
      const second = randomBytes(300);
      await backend.save('snapshots', n, second);
      expect((await backend.load('snapshots', n)).equals(second)).toBe(true);
      expect(await backend.list('snapshots')).toEqual([n]);
    });

    it('readers racing a replacement see the old file or the new one, never a mix', async () => {
      const backend = await created();
      const n = hexName();
      const oldBytes = Buffer.alloc(8 << 20, 0x11);
      const newBytes = Buffer.alloc(8 << 20, 0x22);
      const digest = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
      const allowed = new Set([digest(oldBytes), digest(newBytes)]);
      await backend.save('data', n, oldBytes);
      const reads: Promise<Buffer>[] = [];
      const writing = backend.save('data', n, newBytes);
      for (let i = 0; i < 16; i++) reads.push(backend.load('data', n));
      await writing;
      for (const b of await Promise.all(reads)) expect(allowed.has(digest(b))).toBe(true);
      expect((await backend.load('data', n)).equals(newBytes)).toBe(true);
    });

    it.each([['a/b'], ['../config'], ['..'], ['.'], [''], ['x\\y'], ['sp ace'], ['new\nline']])('rejects the name %j as InvalidInput, writing nothing', async (bad) => {
      const backend = await created();
      for (const type of NAMED_TYPES) {
        await expect(backend.save(type, bad, Buffer.from('x'))).rejects.toThrow(strataError('InvalidInput'));
        await expect(backend.load(type, bad)).rejects.toThrow(strataError('InvalidInput'));
        await expect(backend.remove(type, bad)).rejects.toThrow(strataError('InvalidInput'));
        expect(await backend.list(type)).toEqual([]);
      }
      expect(await backend.isRepository()).toBe(false);
    });

    it('a staged file, where offered, is invisible until committed, then reads back whole; a discarded or abandoned one leaves nothing', async () => {
      const backend = await created();
      if (!backend.stage) {
        expect(backend.stage).toBeUndefined(); // a target without it keeps writing files whole (save)
        return;
      }
      const n = hexName();
      const pieces = [randomBytes(3000), randomBytes(1), randomBytes(70_000), Buffer.alloc(0)];
      const staged = await backend.stage('data');
      await staged.append([pieces[0]!]);
      await staged.append([pieces[1]!, pieces[2]!]);
      await staged.flush();
      await staged.append([pieces[3]!]);
      expect(await backend.list('data')).toEqual([]);
      await expect(backend.load('data', n)).rejects.toEqual(strataError('NotFound'));
      await staged.commit(n);
      expect(await backend.list('data')).toEqual([n]);
      expect((await backend.load('data', n)).equals(Buffer.concat(pieces))).toBe(true);
      expect(await leftovers.count(backend)).toBe(0);

      const dropped = await backend.stage('data');
      await dropped.append([randomBytes(100)]);
      await dropped.discard();
      expect(await backend.list('data')).toEqual([n]);
      expect(await leftovers.count(backend)).toBe(0);

      // A writer killed with a staged file open: the next exclusive lock's cleanTemp drops it.
      const killed = await backend.stage('index');
      await killed.append([randomBytes(100)]);
      expect(await leftovers.count(backend)).toBe(1);
      await backend.cleanTemp();
      expect(await leftovers.count(backend)).toBe(0);
      expect(await backend.list('index')).toEqual([]);
      await killed.discard();
    });

    it('cleanTemp drops a killed writer’s leftovers and keeps every saved file', async () => {
      const backend = await created();
      const n = hexName();
      const bytes = randomBytes(2000);
      await backend.save('data', n, bytes);
      await leftovers.plant(backend);
      expect(await leftovers.count(backend)).toBeGreaterThan(0);
      expect(await backend.list('data')).toEqual([n]);
      await backend.cleanTemp();
      expect(await leftovers.count(backend)).toBe(0);
      expect((await backend.load('data', n)).equals(bytes)).toBe(true);
      await backend.cleanTemp();
      expect(await leftovers.count(backend)).toBe(0);
    });
  });
}
