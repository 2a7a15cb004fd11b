import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runBackendContract } from './backend-contract.js';
import { LocalDirBackend } from './local-dir-backend.js';

const root = mkdtempSync(path.join(os.tmpdir(), 'strata-localdir-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

let made = 0;
const freshDir = (): string => path.join(root, `repo-${made++}`);

runBackendContract('LocalDirBackend', async () => new LocalDirBackend(freshDir()), {
  plant: async (backend) => {
    writeFileSync(path.join(backend.location, 'tmp', 'data-0123456789abcdef'), Buffer.alloc(4096, 1));
    writeFileSync(path.join(backend.location, 'tmp', 'index-fedcba9876543210'), '');
  },
  count: async (backend) => readdirSync(path.join(backend.location, 'tmp')).length,
});

/** Every file under dir, relative, with '/' separators. */
function filesUnder(dir: string): string[] {
  const out: string[] = [];
  const walk = (rel: string): void => {
    for (const e of readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const child = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(child);
      else out.push(child);
    }
  };
  walk('');
  return out.sort();
}

describe('LocalDirBackend on disk', () => {
  it('lays files out as FORMAT.md §1 says: data under its first two characters, the rest flat', async () => {
    const backend = new LocalDirBackend(freshDir());
    await backend.create();
    const pack = 'ab' + '1'.repeat(62);
    await backend.save('data', pack, Buffer.from('pack'));
    await backend.save('index', 'cd' + '2'.repeat(62), Buffer.from('index'));
    await backend.save('snapshots', 'ef' + '3'.repeat(62), Buffer.from('snapshot'));
    await backend.save('keys', '0123', Buffer.from('key'));
    await backend.save('locks', 'lock-1', Buffer.from('lock'));
    await backend.save('config', 'config', Buffer.from('config'));
    expect(filesUnder(backend.location)).toEqual(
      ['config', `data/ab/${pack}`, `index/cd${'2'.repeat(62)}`, 'keys/0123', 'locks/lock-1', `snapshots/ef${'3'.repeat(62)}`].sort(),
    );
    expect(statSync(path.join(backend.location, 'data', 'ab', pack)).mode & 0o777).toBe(0o600);
  });

  it('names starting with a dot cannot reach outside their directory', async () => {
    const backend = new LocalDirBackend(freshDir());
    await backend.create();
    for (const bad of ['..x', '..config', '.hidden']) {
      await expect(backend.save('data', bad, Buffer.from('escape'))).rejects.toMatchObject({ code: 'InvalidInput' });
    }
    expect(filesUnder(backend.location)).toEqual([]);
    expect(readdirSync(path.dirname(backend.location)).filter((n) => n.startsWith('..'))).toEqual([]);
  });

  it('lists only names a writer could have made, ignoring strays and temp files', async () => {
    const backend = new LocalDirBackend(freshDir());
    await backend.create();
    await backend.save('index', 'good', Buffer.from('x'));
    writeFileSync(path.join(backend.location, 'index', '.swp'), 'editor');
    writeFileSync(path.join(backend.location, 'index', 'back~up'), 'editor');
    writeFileSync(path.join(backend.location, 'tmp', 'index-0000'), 'partial');
    expect(await backend.list('index')).toEqual(['good']);
  });

  it('a stray file beside the data subdirectories is ignored, not an error', async () => {
    const backend = new LocalDirBackend(freshDir());
    await backend.create();
    const pack = 'ab' + '4'.repeat(62);
    await backend.save('data', pack, Buffer.from('pack'));
    writeFileSync(path.join(backend.location, 'data', '.DS_Store'), 'finder');
    writeFileSync(path.join(backend.location, 'data', 'README'), 'someone was here');
    expect(await backend.list('data')).toEqual([pack]);
  });

  it('a failed save leaves nothing behind, not even in tmp/', async () => {
    const backend = new LocalDirBackend(freshDir());
    await backend.create();
    // A directory where the file should go makes the rename fail after the temp file was written.
    const n = 'ab' + '9'.repeat(62);
    mkdirSync(path.join(backend.location, 'data', 'ab', n, 'inside'), { recursive: true });
    await expect(backend.save('data', n, Buffer.from('data'))).rejects.toMatchObject({ name: 'StrataError' });
    expect(readdirSync(path.join(backend.location, 'tmp'))).toEqual([]);
  });
});

describe('LocalDirBackend under SIGKILL', () => {
  const SIZE_BYTES = 48 << 20;

  // The child saves large, self-naming data files (name = SHA-256 of the content) until killed.
  const child = `
    import { createHash } from 'node:crypto';
    import { pathToFileURL } from 'node:url';
    const { LocalDirBackend } = await import(pathToFileURL(process.env.STRATA_BACKEND_MODULE).href);
    const backend = new LocalDirBackend(process.env.STRATA_REPO_DIR);
    for (let i = 0; ; i++) {
      const bytes = Buffer.alloc(${SIZE_BYTES}, i % 251);
      bytes.writeUInt32LE(i, 0);
      const name = createHash('sha256').update(bytes).digest('hex');
      await backend.save('data', name, bytes);
      process.stdout.write(name + '\\n');
    }
  `;

  it('a writer killed mid-save leaves only complete files under final names, and partial ones only in tmp/', async () => {
    const dir = freshDir();
    await new LocalDirBackend(dir).create();
    const tmpDir = path.join(dir, 'tmp');
    const proc = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', child], {
      cwd: path.resolve(import.meta.dirname, '..', '..'),
      env: { ...process.env, STRATA_REPO_DIR: dir, STRATA_BACKEND_MODULE: path.join(import.meta.dirname, 'local-dir-backend.ts') },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<NodeJS.Signals | null>((resolve) => proc.once('exit', (_code, signal) => resolve(signal)));

    // Let two saves finish, then kill while a third is between open and rename.
    const deadline = Date.now() + 60_000;
    let caughtInTmp: { name: string; sizeBytes: number } | null = null;
    while (!caughtInTmp) {
      if (Date.now() > deadline || proc.exitCode !== null) throw new Error(`the writer did not get going: ${stderr}`);
      if (stdout.split('\n').length > 2) {
        const inTmp = existsSync(tmpDir) ? readdirSync(tmpDir) : [];
        if (inTmp.length > 0) {
          try {
            caughtInTmp = { name: inTmp[0]!, sizeBytes: statSync(path.join(tmpDir, inTmp[0]!)).size };
          } catch {
            // renamed between readdir and stat: wait for the next one
          }
        }
      }
      if (!caughtInTmp) await new Promise((r) => setImmediate(r));
    }
    proc.kill('SIGKILL');
    expect(await exited).toBe('SIGKILL');
    expect(caughtInTmp.sizeBytes).toBeLessThanOrEqual(SIZE_BYTES);

    const reported = stdout.split('\n').filter(Boolean);
    expect(reported.length).toBeGreaterThanOrEqual(2);
    const files = filesUnder(dir);
    const finalFiles = files.filter((f) => !f.startsWith('tmp/'));
    const leftovers = files.filter((f) => f.startsWith('tmp/'));
    // Everything outside tmp/ is a whole data file whose content still hashes to its name.
    for (const f of finalFiles) {
      const [top, sub, name] = f.split('/');
      expect(top).toBe('data');
      expect(sub).toBe(name!.slice(0, 2));
      const bytes = readFileSync(path.join(dir, f));
      expect(bytes.length).toBe(SIZE_BYTES);
      expect(createHash('sha256').update(bytes).digest('hex')).toBe(name);
    }
    const backend = new LocalDirBackend(dir);
    const listed = await backend.list('data');
    expect(listed.length).toBe(finalFiles.length);
    for (const name of reported) expect(listed).toContain(name);
    expect(listed.length).toBeLessThanOrEqual(reported.length + 1);
    expect(leftovers).toHaveLength(1);
    for (const f of leftovers) expect(f).toMatch(/^tmp\/data-[0-9a-f]{16}$/);

    await backend.cleanTemp();
    expect(readdirSync(tmpDir)).toEqual([]);
    expect(await backend.list('data')).toEqual(listed);
  });
});
