// verify --read-data names the damaged object: here a chunk's stored block digests, which only a
// comparison with the chunk's data can catch in an unencrypted repository.
import { openSync, readSync, writeSync, closeSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BlobType } from '../agent-core/repo/format.js';
import { Repository } from '../agent-core/repo/repository.js';
import { LocalDirBackend } from '../drivers/storage/local-dir-backend.js';
import { strata, summaryOf } from '../test-support/cli.js';
import { makeContent, Scratch } from '../test-support/disk.js';

describe('verify --read-data', () => {
  const scratch = new Scratch();
  afterAll(() => scratch.cleanup());

  it('names a digests blob whose bytes no longer match its chunk, and the pack that holds it', async () => {
    const image = scratch.path('raw.img');
    const fd = openSync(image, 'w');
    writeSync(fd, makeContent(3 << 20, 'random', 21));
    closeSync(fd);
    const repoDir = scratch.path('repo');
    const env = { STRATA_STATE_DIR: scratch.path('state') };
    expect(strata(['init', '--repo', repoDir], env).status).toBe(0);
    expect(strata(['backup', image, '--repo', repoDir, '--json'], env).status).toBe(0);

    const repo = await Repository.open(new LocalDirBackend(repoDir), () => null);
    await repo.loadIndex();
    const [digestsId, entry] = [...repo.index.entries()].find(([, b]) => b.type === BlobType.digests)!;
    const pack = path.join(repoDir, 'data', entry.packId.slice(0, 2), entry.packId);
    const pfd = openSync(pack, 'r+');
    const b = Buffer.alloc(1);
    readSync(pfd, b, 0, 1, entry.offset + 3);
    b[0] = b[0]! ^ 0x01;
    writeSync(pfd, b, 0, 1, entry.offset + 3);
    closeSync(pfd);

    const r = strata(['verify', '--repo', repoDir, '--read-data', '--json'], env);
    expect(r.status).toBe(1);
    const problems = r.lines.filter((l) => l.type === 'problem').map((l) => `${l.object as string} ${l.problem as string}`);
    expect(problems.some((p) => p.includes(digestsId) && p.includes('does not match the data of chunk'))).toBe(true);
    expect(problems.some((p) => p.includes(entry.packId) && p.includes('changed on disk'))).toBe(true);
    expect(summaryOf(r).ok).toBe(false);
    // Structure alone cannot see it: without --read-data the repository looks whole.
    expect(strata(['verify', '--repo', repoDir, '--json'], env).status).toBe(0);
  });
});
