// The chain limit applied by the backup itself, under its own lock and with its own catalog: the
// oldest scheduled snapshots beyond the limit go, snapshots a person asked for stay, the catalog
// follows, and a limit that cannot be applied leaves the backup standing with a warning. A real
// image file, repository and SQLite catalog.
import { writeFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AUTOMATIC_TAG } from '../agent-core/api/snapshot.js';
import { Repository } from '../agent-core/repo/repository.js';
import { LocalDirBackend } from '../drivers/storage/local-dir-backend.js';
import { makeContent, Scratch } from '../test-support/disk.js';
import { backup, listSnapshots, type AgentContext } from './operations.js';

const MiB = 1 << 20;

describe('the chain limit, applied by each backup', () => {
  let scratch: Scratch;
  let image: string;
  let repo: string;
  let ctx: AgentContext;

  beforeEach(async () => {
    scratch = new Scratch('strata-chain-limit-');
    image = scratch.path('disk.img');
    writeFileSync(image, makeContent(4 * MiB, 'random', 1));
    repo = scratch.path('repo');
    await Repository.init(new LocalDirBackend(repo), { encryption: 'none', password: null });
    ctx = { stateDir: scratch.path('state'), password: () => null };
  });

  afterEach(() => scratch.cleanup());

  /** Changes the image a little, so each backup is a snapshot of its own. */
  function touch(i: number): void {
    writeFileSync(image, makeContent(4096, 'random', 100 + i), { flag: 'r+' });
  }

  it('forgets the oldest scheduled snapshots beyond it, keeps the ones a person made, and tells who asked', async () => {
    const forgotten: string[][] = [];
    const limits: unknown[] = [];
    const retention = {
      chainLimitOf: async (catalog: unknown) => {
        limits.push(catalog);
        return 2;
      },
      onForgotten: (ids: readonly string[]) => forgotten.push([...ids]),
    };
    const manual = await backup(ctx, image, repo, { retention });
    const automatic: string[] = [];
    for (let i = 0; i < 3; i++) {
      touch(i);
      automatic.push((await backup(ctx, image, repo, { tags: [AUTOMATIC_TAG], retention })).id);
    }
    expect(forgotten).toEqual([[automatic[0]], [automatic[1]]]);
    expect(limits.every((c) => typeof (c as { readSettings?: unknown }).readSettings === 'function')).toBe(true);
    const left = (await listSnapshots(ctx, repo)).map((s) => s.id);
    expect(left.sort()).toEqual([manual.id, automatic[2]!].sort());
    expect((await (await Repository.open(new LocalDirBackend(repo), () => null)).listSnapshotIds()).sort()).toEqual(left);
  });

  it('leaves the backup standing, with a warning, when the limit cannot be read', async () => {
    const warnings: string[] = [];
    const summary = await backup(ctx, image, repo, {
      tags: [AUTOMATIC_TAG],
      onWarning: (m) => warnings.push(m),
      retention: {
        chainLimitOf: () => Promise.reject(new Error('the settings table is gone')),
        onForgotten: () => expect.unreachable('nothing can be forgotten'),
      },
    });
    expect(warnings).toEqual([expect.stringMatching(/chain limit could not be applied to .*the settings table is gone/)]);
    expect((await listSnapshots(ctx, repo)).map((s) => s.id)).toEqual([summary.id]);
  });
});
