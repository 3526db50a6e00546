import type { Access } from '../access/index.ts';
import { type Principal } from '../domain/access.ts';
import { conflict, forbidden, invalid, notFound, unauthenticated } from '../domain/errors.ts';
import { branchNameProblem, isUuid, pageParams, repoNameProblem } from '../domain/validate.ts';
import { readRefs } from '../git/refs.ts';
import { fetchMirror } from '../git/remote.ts';
import { repoDir } from '../git/repo-path.ts';
import type { GitEnv } from '../git/runner.ts';
import { createBareRepo, removeRepo, setHead } from '../git/skeleton.ts';
import { listTree, normaliseRepoPath, type TreeNode } from '../git/tree.ts';
import { type Conn, isUniqueViolation, type RepoRow, type Store } from '../store/index.ts';
import { checkOutboundUrl } from './outbound-url.ts';
import { newId, now } from './secrets.ts';

export interface CreateRepoInput {
  name?: string | null;
  public?: boolean;
  defaultBranch?: string | null;
  description?: string | null;
  /** another user as owner: admins only */
  ownerId?: string;
  /** an upstream to clone now and `pull` from later (SSRF-checked) */
  cloneUri?: string | null;
}

export interface RepoOptions {
  git: GitEnv;
  allowPrivateUrls: boolean;
  fetchTimeoutMs: number;
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
    private readonly opts: RepoOptions,
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

  /**
   * Creates a bare repository, owned by the calling user (or, for an admin,
   * by `ownerId`). A name with `/` creates its repository groups. With
   * `cloneUri`, the upstream is fetched now; a failed fetch removes the
   * repository again and reports why.
   */
  async create(p: Principal, input: CreateRepoInput): Promise<RepoRow> {
    if (!(await this.access.authorize(p, 'account:use', { kind: 'server' })).allowed || p.kind !== 'user') throw unauthenticated('An API key is required to create repositories');
    let ownerId = p.userId;
    if (input.ownerId && input.ownerId !== p.userId) {
      if (!(await this.access.isServerAdmin(p))) throw forbidden('Only admins may create repositories for another owner');
      ownerId = input.ownerId;
    }
    const name = input.name ?? null;
    if (name !== null) {
      const problem = repoNameProblem(name);
      if (problem) throw invalid(`Invalid repository name: ${problem}`);
    }
    const defaultBranch = input.defaultBranch ?? 'main';
    const bp = branchNameProblem(defaultBranch);
    if (bp) throw invalid(`Invalid default branch: ${bp}`);
    const upstream = input.cloneUri ? (await checkOutboundUrl(input.cloneUri, this.opts.allowPrivateUrls)).toString() : null;
    const row: RepoRow = {
      id: newId(),
      name,
      owner_id: ownerId,
      visibility: input.public ? 'public' : 'private',
      default_branch: defaultBranch,
      description: input.description ?? null,
      upstream_url: upstream,
      created_at: now(),
      group_id: null,
    };
    // Folder first, then the row: a repository visible in the database always has its folder.
    await createBareRepo(this.dataDir, row.id, defaultBranch);
    try {
      await this.store.transaction(async (tx) => {
        if (name !== null && name.includes('/')) row.group_id = await this.ensureGroups(tx, name.slice(0, name.lastIndexOf('/')));
        await this.store.insertRepo(tx, row);
      });
    } catch (e) {
      await removeRepo(this.dataDir, row.id);
      if (isUniqueViolation(e)) throw conflict(`Repository ${name} already exists`, 'REPO_ALREADY_EXISTS');
      throw e;
    }
    if (upstream) {
      try {
        await this.fetchUpstream(row, upstream);
      } catch (e) {
        await this.store.deleteRepo(this.store.db, row.id);
        await removeRepo(this.dataDir, row.id);
        throw invalid(`Could not clone from ${redact(upstream)}: ${(e as Error).message}`, 'SOURCE_NOT_FOUND');
      }
    }
    return (await this.store.findRepoById(this.store.db, row.id)) ?? row;
  }

  /** Creates the repository groups of a path ("a/b" -> a, a/b), returning the innermost id. */
  private async ensureGroups(tx: Conn, path: string): Promise<string> {
    let parent: string | null = null;
    const parts = path.split('/');
    for (let i = 1; i <= parts.length; i++) {
      const name = parts.slice(0, i).join('/');
      const found = await this.store.findRepoGroup(tx, name);
      if (found) {
        parent = found.id;
        continue;
      }
      const id = newId();
      await this.store.insertRepoGroup(tx, { id, name, parent_id: parent, created_at: now() });
      parent = id;
    }
    return parent!;
  }

  /** Mirrors the upstream's branches and tags; if the default branch is not among them, adopts `master` or the first one. */
  private async fetchUpstream(row: RepoRow, url: string): Promise<void> {
    const dir = repoDir(this.dataDir, row.id);
    await fetchMirror(this.opts.git, dir, url, { allowFile: this.opts.allowPrivateUrls, timeoutMs: this.opts.fetchTimeoutMs });
    const heads = await readRefs(dir, 'refs/heads/');
    if (heads.size > 0 && !heads.has(`refs/heads/${row.default_branch}`)) {
      const pick = heads.has('refs/heads/main') ? 'main' : heads.has('refs/heads/master') ? 'master' : [...heads.keys()].sort()[0]!.slice('refs/heads/'.length);
      await setHead(this.dataDir, row.id, pick);
      await this.store.updateRepo(this.store.db, row.id, { default_branch: pick });
    }
  }

  /** Fetches the repository's upstream again (admin on it needed). */
  async pull(p: Principal, idOrName: string): Promise<RepoRow> {
    const row = await this.get(p, idOrName, 'repo:admin');
    if (!row.upstream_url) throw invalid(`Repository ${row.name ?? row.id} has no remote location (clone_uri) to pull from`);
    // The stored URL was checked when set; check again, since DNS answers change.
    const url = (await checkOutboundUrl(row.upstream_url, this.opts.allowPrivateUrls)).toString();
    try {
      await this.fetchUpstream(row, url);
    } catch (e) {
      throw invalid(`Pull from ${redact(url)} failed: ${(e as Error).message}`);
    }
    return row;
  }

  /**
   * Files and folders under `rootPath` at `revision`, flat (seed 002's get_repo_nodes), of a
   * repository the caller already resolved through an access decision (read).
   */
  async nodes(row: RepoRow, revision: string, rootPath: string, retType: 'all' | 'files' | 'dirs'): Promise<TreeNode[]> {
    const root = normaliseRepoPath(rootPath);
    if (root === undefined) throw invalid(`Invalid root_path: ${rootPath.slice(0, 200)}`);
    const nodes = await listTree(this.opts.git, repoDir(this.dataDir, row.id), revision, root, 60_000);
    if (!nodes) throw notFound(`revision ${revision.slice(0, 100)} or path "${root}" not found in ${row.name ?? row.id}`, 'PATH_NOT_FOUND');
    return retType === 'all' ? nodes : nodes.filter((n) => (retType === 'files' ? n.type === 'file' : n.type === 'dir'));
  }

  /** Lists repositories: an admin sees all, another user those it owns or was granted. */
  async list(p: Principal, q: { limit?: unknown; offset?: unknown }): Promise<{ rows: RepoRow[]; total: number; offset: number }> {
    if (!(await this.access.authorize(p, 'account:use', { kind: 'server' })).allowed || p.kind !== 'user') throw unauthenticated('An API key is required to list repositories');
    const { limit, offset } = pageParams(q, 100, 1000);
    const { rows, total } = (await this.access.isServerAdmin(p)) ? await this.store.listRepos(this.store.db, { limit, offset }) : await this.store.listReposVisibleTo(this.store.db, p.userId, limit, offset);
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

  /** Sets the default branch (write needed): metadata and HEAD. */
  async setDefaultBranch(p: Principal, idOrName: string, branch: unknown): Promise<string> {
    if (typeof branch !== 'string' || branchNameProblem(branch)) throw invalid(`Invalid default branch: ${typeof branch === 'string' ? branchNameProblem(branch) : 'must be a string'}`);
    const row = await this.get(p, idOrName, 'repo:write');
    try {
      await this.setDefaultBranchInternal(row.id, branch);
    } catch (e) {
      // deleted since it was resolved (its folder is gone): the same answer as before
      if (!(await this.store.findRepoById(this.store.db, row.id))) throw notFound(`Repository not found: ${idOrName.slice(0, 200)}`, REPO_NOT_FOUND);
      throw e;
    }
    return branch;
  }

  /** Points HEAD and the row at `branch`, without an access check (callers have decided). */
  async setDefaultBranchInternal(repoId: string, branch: string): Promise<void> {
    await setHead(this.dataDir, repoId, branch);
    await this.store.updateRepo(this.store.db, repoId, { default_branch: branch });
  }

  /** Sets the visibility (admin needed): one fact shared with the RPC's `private`. */
  async setVisibility(p: Principal, idOrName: string, visibility: unknown): Promise<'public' | 'private'> {
    if (visibility !== 'public' && visibility !== 'private') throw invalid('visibility must be "public" or "private"');
    const row = await this.get(p, idOrName, 'repo:admin');
    await this.store.updateRepo(this.store.db, row.id, { visibility });
    return visibility;
  }

  /** Removes a repository without an access check (a failed import of the caller's own new repository). */
  async removeInternal(repoId: string): Promise<void> {
    await this.store.deleteRepo(this.store.db, repoId);
    await removeRepo(this.dataDir, repoId);
  }

  /** Deletes a repository (admin on it needed): the row, its grants, then its folder. */
  async delete(p: Principal, idOrName: string): Promise<void> {
    const row = await this.get(p, idOrName, 'repo:admin');
    await this.store.deleteRepo(this.store.db, row.id);
    await removeRepo(this.dataDir, row.id);
  }
}

/** A URL with any password replaced, for messages. */
export function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(invalid URL)';
  }
}
