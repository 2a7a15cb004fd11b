// What the long-lived agent keeps warm between jobs, per repository: the memo of its index files and
// manifests (agent-core/repo/repository.ts, RepositoryMemo) and a compute pool whose workers have
// already loaded their modules and keys. A fresh CLI process pays for both on every run; the agent
// pays once, then only for what changed. Both are dropped after a while without use and when the
// agent closes. Correctness never rests on them: the memo is checked against the repository's
// listings at every load, and a pool is reused only after a job that succeeded with it.
import { timingSafeEqual } from 'node:crypto';
import type { BlockCompute } from '../agent-core/engine/compute.js';
import { Repository, RepositoryMemo, type WrappingKeyCache } from '../agent-core/repo/repository.js';
import { WorkerPool } from '../drivers/compute/worker-pool.js';
import { LocalDirBackend } from '../drivers/storage/local-dir-backend.js';

/** How long a repository's memo and pool outlive its last use (a schedule's next run usually reuses them). */
export const WARM_IDLE_MS = 5 * 60_000;

/** One compute pool for one operation; `release(reusable)` hands it back, or stops it when it must not be reused. */
export interface ComputeLease {
  readonly compute: BlockCompute;
  release(reusable: boolean): Promise<void>;
}

interface Warm {
  /** The keys the memo and pool belong to: a repository made anew at the same path gets new ones. */
  readonly idKey: Buffer;
  readonly encKey: Buffer | null;
  readonly memo: RepositoryMemo;
  pool: WorkerPool | null;
  /** The block size and zstd level the pool's workers were started with. */
  poolConfig: string;
  /** The pool is lent out; a second borrower at the same time gets a pool of its own. */
  lent: boolean;
  idleTimer: NodeJS.Timeout | null;
}

function sameKey(a: Buffer | null, b: Buffer | null): boolean {
  if (a === null || b === null) return a === b;
  return a.length === b.length && timingSafeEqual(a, b);
}

export class WarmRepositories {
  private readonly warm = new Map<string, Warm>();
  /**
   * Password-derived keys that opened a repository, so an encrypted repository's jobs do not run
   * scrypt (~100 ms, 32 MiB) each time. Forgotten after idleMs without use and when the agent closes;
   * the agent holds the repositories' own keys in the same memory anyway.
   */
  private readonly wrappingKeys = new Map<string, { key: Buffer; timer: NodeJS.Timeout }>();
  private readonly wrappingKeyCache: WrappingKeyCache = {
    get: (id) => {
      const e = this.wrappingKeys.get(id);
      if (e) e.timer.refresh();
      return e?.key;
    },
    set: (id, key) => {
      if (this.closed) return;
      clearTimeout(this.wrappingKeys.get(id)?.timer);
      const timer = setTimeout(() => this.forgetWrappingKey(id), this.idleMs);
      timer.unref();
      this.wrappingKeys.set(id, { key, timer });
      this.wrappingKeysDerived++;
    },
  };
  private closed = false;
  /** Password-derived keys remembered so far (tests: a second open of an encrypted repository derives none). */
  wrappingKeysDerived = 0;
  /** Pools started so far (tests: a second job reuses the first one's). */
  poolsStarted = 0;
  /** Pools stopped so far. */
  poolsStopped = 0;

  constructor(private readonly idleMs = WARM_IDLE_MS) {}

  /**
   * Opens the repository as Repository.open does (config read, keys unwrapped) and lends it the
   * memo of earlier operations on it, or a new memo when the keys are not the same.
   */
  async open(repoPath: string, getPassword: () => string | null): Promise<Repository> {
    const backend = new LocalDirBackend(repoPath);
    // Repository.open sets a key only when it derived it and the key opened a key file.
    const repo = await Repository.open(backend, getPassword, this.wrappingKeyCache);
    if (this.closed) return repo;
    const key = backend.location;
    let w = this.warm.get(key);
    if (w && !(sameKey(w.idKey, repo.keys.idKey) && sameKey(w.encKey, repo.keys.encKey))) {
      this.drop(key);
      w = undefined;
    }
    if (!w) {
      w = { idKey: repo.keys.idKey, encKey: repo.keys.encKey, memo: new RepositoryMemo(), pool: null, poolConfig: '', lent: false, idleTimer: null };
      this.warm.set(key, w);
    }
    repo.memo = w.memo;
    this.touch(key, w);
    return repo;
  }

  /** The repository's warm pool if it is free (started now if there is none), else a pool of its own. */
  compute(repo: Repository): ComputeLease {
    const key = repo.backend.location;
    const w = this.warm.get(key);
    const start = (): WorkerPool => {
      this.poolsStarted++;
      return new WorkerPool(repo.keys, { blockSizeBytes: repo.config.blockSizeBytes, zstdLevel: repo.config.zstdLevel });
    };
    const stop = async (pool: WorkerPool): Promise<void> => {
      this.poolsStopped++;
      await pool.close();
    };
    // The workers hold the keys, block size and zstd level they were started with.
    const config = `${repo.config.blockSizeBytes}/${repo.config.zstdLevel}`;
    const fits = w !== undefined && !this.closed && sameKey(w.idKey, repo.keys.idKey) && sameKey(w.encKey, repo.keys.encKey);
    if (!fits || w.lent) {
      const pool = start();
      return { compute: pool, release: () => stop(pool) };
    }
    if (w.pool !== null && w.poolConfig !== config) {
      void stop(w.pool);
      w.pool = null;
    }
    if (w.pool === null) {
      w.pool = start();
      w.poolConfig = config;
    }
    w.lent = true;
    const pool = w.pool;
    this.clearIdle(w);
    let released = false;
    return {
      compute: pool,
      release: async (reusable) => {
        if (released) return;
        released = true;
        w.lent = false;
        // A job that failed or was cancelled may have left tasks or a dead worker behind: stop it.
        if (!reusable || this.closed || this.warm.get(key) !== w) {
          if (w.pool === pool) w.pool = null;
          await stop(pool);
        }
        if (this.warm.get(key) === w) this.touch(key, w);
      },
    };
  }

  /** Stops every pool and forgets every memo; later opens work as in the CLI. */
  async close(): Promise<void> {
    this.closed = true;
    for (const id of [...this.wrappingKeys.keys()]) this.forgetWrappingKey(id);
    await Promise.all([...this.warm.keys()].map((key) => this.drop(key)));
  }

  private forgetWrappingKey(id: string): void {
    const e = this.wrappingKeys.get(id);
    if (!e) return;
    clearTimeout(e.timer);
    e.key.fill(0);
    this.wrappingKeys.delete(id);
  }

  private touch(key: string, w: Warm): void {
    this.clearIdle(w);
    if (w.lent) return;
    w.idleTimer = setTimeout(() => void this.drop(key), this.idleMs);
    // An idle memo must not keep a process alive that has nothing else to do.
    w.idleTimer.unref();
  }

  private clearIdle(w: Warm): void {
    if (w.idleTimer) clearTimeout(w.idleTimer);
    w.idleTimer = null;
  }

  private async drop(key: string): Promise<void> {
    const w = this.warm.get(key);
    if (!w) return;
    this.warm.delete(key);
    this.clearIdle(w);
    // A lent pool is stopped by its borrower's release (it sees the entry gone).
    if (w.pool && !w.lent) {
      const pool = w.pool;
      w.pool = null;
      this.poolsStopped++;
      await pool.close();
    }
  }
}
