// loadExtents and the repository memo: a long-lived agent keeps the last disk maps it wrote or
// read, keyed by their content-addressed pages, so the next backup of the same source starts from
// its parent's map without reading a page; without a memo every load reads the pages. A real
// repository in a temp directory, its pack removed to prove what is read.
import { rmSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { tempRepoDir, type TempRepoDir } from '../../test-support/repo-dir.js';
import { BlobType, ExtentKind } from '../repo/format.js';
import type { Manifest } from '../repo/manifest.js';
import { encodeMapPage, splitIntoPages, type MapExtent } from '../repo/map-page.js';
import { Repository, RepositoryMemo } from '../repo/repository.js';
import { loadExtents } from './parent-view.js';

const MiB = 1 << 20;

describe('loadExtents with a repository memo', () => {
  let dir: TempRepoDir;

  beforeEach(async () => {
    dir = tempRepoDir('strata-parent-view-');
    await Repository.init(dir.backend, { encryption: 'none', password: null });
  });

  afterEach(() => dir.cleanup());

  /** Writes a map of 8 MiB in pages of 2 MiB; returns the manifest's pages. */
  async function writeMap(repo: Repository, extents: readonly MapExtent[]): Promise<Manifest['pages']> {
    const writer = repo.writer();
    const pages: Manifest['pages'] = [];
    for (const page of splitIntoPages(extents, 8 * MiB, 2 * MiB)) {
      const plain = encodeMapPage(page.startBytes, page.lengthBytes, page.extents);
      const id = repo.mapPageId(plain);
      await writer.addPlain(BlobType.map, id, plain, true);
      pages.push([page.startBytes, page.lengthBytes, id]);
    }
    await writer.finish();
    return pages;
  }

  const extents: MapExtent[] = [
    { startBytes: 0, lengthBytes: 3 * MiB, kind: ExtentKind.data, chunkId: 'ab'.repeat(32), offsetInChunkBytes: 0 },
    { startBytes: 3 * MiB, lengthBytes: 1 * MiB, kind: ExtentKind.zero },
    { startBytes: 4 * MiB, lengthBytes: 4 * MiB, kind: ExtentKind.unmapped },
  ];

  const dropPacks = (): void => rmSync(path.join(dir.dir, 'data'), { recursive: true, force: true });

  it('a map kept by its writer loads without reading a page; one read once is kept too', async () => {
    const repo = await Repository.open(dir.backend, () => null);
    repo.memo = new RepositoryMemo();
    await repo.loadIndex();
    const pages = await writeMap(repo, extents);
    const asRead = await loadExtents(repo, { pages } as Manifest);
    expect(asRead).toEqual(splitIntoPages(extents, 8 * MiB, 2 * MiB).flatMap((p) => p.extents));

    dropPacks();
    // Read once, kept: the second load reads nothing (the pages are gone from the disk).
    expect(await loadExtents(repo, { pages } as Manifest)).toBe(asRead);
    // A writer's own map is kept as it wrote it.
    repo.memo.keepMap(pages, extents);
    expect(await loadExtents(repo, { pages } as Manifest)).toBe(extents);
  });

  it('without a memo every load reads the pages', async () => {
    const repo = await Repository.open(dir.backend, () => null);
    await repo.loadIndex();
    const pages = await writeMap(repo, extents);
    expect((await loadExtents(repo, { pages } as Manifest)).length).toBeGreaterThan(0);
    dropPacks();
    await expect(loadExtents(repo, { pages } as Manifest)).rejects.toThrow();
  });
});
