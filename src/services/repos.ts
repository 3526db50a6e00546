import type { Access } from '../access/index.ts';
import { type Principal } from '../domain/access.ts';
import { conflict, invalid, notFound, unauthenticated } from '../domain/errors.ts';
import { branchNameProblem, isUuid, pageParams, repoNameProblem } from '../domain/validate.ts';
import { readRefs } from '../git/refs.ts';
import { repoDir } from '../git/repo-path.ts';
import { createBareRepo, removeRepo } from '../git/skeleton.ts';
import { isUniqueViolation, type RepoRow, type Store } from '../store/index.ts';
import { newId, now } from './secrets.ts';

export interface CreateRepoInput {
  name?: string | null;
  public?: boolean;
  defaultBranch?: string | null;
  description?: string | null;
}

export interface RepoInfo {
  id: string;
  name: string | null;
  accountId: string;
  visibility: 'public' | 'private';
  defaultBranch: string;
  createdAt: string;
}

export const repoInfo = (r: RepoRow): RepoInfo => ({
  id: r.id,
  name: r.name,
  accountId: r.owner_id,
  visibility: r.visibility,
  defaultBranch: r.default_branch,
  createdAt: r.created_at,
});

const REPO_NOT_FOUND = 'REPO_NOT_FOUND';

/** Repository use cases: create, resolve, list, delete. Every access goes through `Access`. */
export class Repos {
  constructor(
    private readonly store: Store,
    private readonly access: Access,
    private readonly dataDir: string,
  ) {}

  /**
   * Finds a repository by id or full name without any access check, for the
   * surfaces to authorize next. Malformed input finds nothing.
   */
  async find(idOrName: string): Promise<RepoRow | undefined> {
    const lower = idOrName.toLowerCase();
    if (isUuid(lower)) return this.store.findRepoById(this.store.db, lower);
    if (repoNameProblem(idOrName)) return undefined;
    return this.store.findRepoByName(this.store.db, idOrName);
  }

  /**
   * Resolves a repository the principal may act on with `action`, or throws
   * `notFound` (REPO_NOT_FOUND) for a repository that is missing or hidden
   * from it, `forbidden` when visible but not allowed.
   */
  async get(p: Principal, idOrName: string, action: 'repo:read' | 'repo:write' | 'repo:admin' = 'repo:read'): Promise<RepoRow> {
    const row = await this.find(idOrName);
    const msg = `Repository not found: ${idOrName.slice(0, 200)}`;
    if (!row) throw p.kind === 'anonymous' ? unauthenticated() : notFound(msg, REPO_NOT_FOUND);
    await this.access.require(p, action, { kind: 'repo', repoId: row.id }, msg, REPO_NOT_FOUND);
    return row;
  }

  /** Creates an empty bare repository owned by the calling user's account. */
  async create(p: Principal, input: CreateRepoInput): Promise<RepoRow> {
    if (p.kind !== 'user' || !p.active) throw unauthenticated('An API key is required to create repositories');
    const name = input.name ?? null;
    if (name !== null) {
      const problem = repoNameProblem(name);
      if (problem) throw invalid(`Invalid repository name: ${problem}`);
    }
    const defaultBranch = input.defaultBranch ?? 'main';
    const bp = branchNameProblem(defaultBranch);
    if (bp) throw invalid(`Invalid default branch: ${bp}`);
    const row: RepoRow = {
      id: newId(),
      name,
      owner_id: p.userId,
      visibility: input.public ? 'public' : 'private',
      default_branch: defaultBranch,
      description: input.description ?? null,
      upstream_url: null,
      created_at: now(),
    };
    // Folder first, then the row: a repository visible in the database always has its folder.
    await createBareRepo(this.dataDir, row.id, defaultBranch);
    try {
      await this.store.insertRepo(this.store.db, row);
    } catch (e) {
      await removeRepo(this.dataDir, row.id);
      if (isUniqueViolation(e)) throw conflict(`Repository ${name} already exists`, 'REPO_ALREADY_EXISTS');
      throw e;
    }
    return row;
  }

  /** Lists repositories: an admin sees all, another user those its account owns. */
  async list(p: Principal, q: { limit?: unknown; offset?: unknown }): Promise<{ rows: RepoRow[]; total: number; offset: number }> {
    if (p.kind !== 'user' || !p.active) throw unauthenticated('An API key is required to list repositories');
    const { limit, offset } = pageParams(q, 100, 1000);
    const { rows, total } = await this.store.listRepos(this.store.db, { ownerId: p.admin ? undefined : p.userId, limit, offset });
    return { rows, total, offset };
  }

  /** Branches and tags of a repository read from disk, in the SDK's listing shape. */
  async refsSummary(row: RepoRow): Promise<{ branches: Record<string, { default: boolean; name: string; target: string | null }>; tags: Record<string, { name: string; target: string }> }> {
    const dir = repoDir(this.dataDir, row.id);
    const [heads, tagRefs] = await Promise.all([readRefs(dir, 'refs/heads/'), readRefs(dir, 'refs/tags/')]);
    const branches: Record<string, { default: boolean; name: string; target: string | null }> = {};
    for (const [ref, oid] of heads) {
      const name = ref.slice('refs/heads/'.length);
      branches[name] = { default: name === row.default_branch, name, target: oid };
    }
    const tags: Record<string, { name: string; target: string }> = {};
    for (const [ref, oid] of tagRefs) {
      const name = ref.slice('refs/tags/'.length);
      tags[name] = { name, target: oid };
    }
    return { branches, tags };
  }

  /** Deletes a repository (admin on it needed): the row, its grants, then its folder. */
  async delete(p: Principal, idOrName: string): Promise<void> {
    const row = await this.get(p, idOrName, 'repo:admin');
    await this.store.deleteRepo(this.store.db, row.id);
    await removeRepo(this.dataDir, row.id);
  }
}
