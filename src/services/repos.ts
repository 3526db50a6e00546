import type { Access } from '../access/index.ts';
import { type Principal } from '../domain/access.ts';
import { AccessDenied, conflict, forbidden, invalid, notFound } from '../domain/errors.ts';
import { branchNameProblem, branchPatternProblem, repoNameProblem } from '../domain/validate.ts';
import { readRefs } from '../git/refs.ts';
import { fetchMirror } from '../git/remote.ts';
import { repoDir } from '../git/repo-path.ts';
import type { GitEnv } from '../git/runner.ts';
import { createBareRepo, removeRepo, setHead } from '../git/skeleton.ts';
import type { HgEnv } from '../hg/runner.ts';
import { createHgRepo, hgRepoDir } from '../hg/skeleton.ts';
import { listHgTree } from '../hg/tree.ts';
import { runHg } from '../hg/runner.ts';
import { listTree, normaliseRepoPath, type TreeNode } from '../git/tree.ts';
import { type Conn, isUniqueViolation, type RepoRow, type Store } from '../store/index.ts';
import { type Outbound, type OutboundTarget, outboundErrorText, redactText, redactUrl } from './outbound.ts';
import type { ProcessSlots } from './process-slots.ts';
import { findRepoByRef } from './repo-ref.ts';
import { newId, now } from './secrets.ts';
import type { PageQuery } from './types.ts';

export interface CreateRepoInput {
  /** `git` (default) or `hg`, fixed at creation */
  type?: 'git' | 'hg';
  name?: string | null;
  public?: boolean;
  defaultBranch?: string | null;
  description?: string | null;
  /** another user as owner, by username: admins only */
  ownerName?: string;
  /** an upstream to clone now and `pull` from later (SSRF-checked) */
  cloneUri?: string | null;
}

export interface RepoOptions {
  git: GitEnv;
  hg: HgEnv;
  /** git children started for requests are bounded (get_repo_nodes' ls-tree) */
  slots: ProcessSlots;
  /** the one guard for URLs the server fetches (clone_uri) */
  outbound: Outbound;
  fetchTimeoutMs: number;
  /** new repositories start with their default branch protected */
  protectDefaultBranch?: boolean;
}

export interface RepoInfo {
  id: string;
  name: string | null;
  accountId: string;
  visibility: 'public' | 'private';
  defaultBranch: string;
  createdAt: string;
  type: 'git' | 'hg';
}

export const repoInfo = (r: RepoRow): RepoInfo => ({
  id: r.id,
  name: r.name,
  accountId: r.owner_id,
  visibility: r.visibility,
  defaultBranch: r.default_branch,
  createdAt: r.created_at,
  type: r.type,
});


/** Repository use cases: create, resolve, list, delete. Every access goes through `Access`. */
export class Repos {
  constructor(
    private readonly store: Store,
    private readonly access: Access,
    private readonly dataDir: string,
    private readonly opts: RepoOptions,
  ) {}

  /**
   * Resolves a repository the principal may act on with `action`; `AccessDenied` (looking
   * missing when the repository is hidden from the caller) otherwise.
   */
  async get(p: Principal, idOrName: string, action: 'repo:read' | 'repo:write' | 'repo:admin' = 'repo:read'): Promise<RepoRow> {
    return this.access.requireRepo(p, action, await findRepoByRef(this.store, idOrName), idOrName);
  }

  /**
   * Like get, for the use cases that only exist for git (the Git REST API's content, commits,
   * search, sync, triggers' diffs, git over HTTP/SSH): a Mercurial repository the caller may see
   * is a 400 UNSUPPORTED_REPOSITORY_TYPE. The decision comes first, so a hidden one still looks
   * missing.
   */
  async getGit(p: Principal, idOrName: string, action: 'repo:read' | 'repo:write' | 'repo:admin' = 'repo:read'): Promise<RepoRow> {
    const row = await this.get(p, idOrName, action);
    if (row.type !== 'git') throw invalid(`${row.name ?? row.id} is a Mercurial repository: this operation is for git repositories`, 'UNSUPPORTED_REPOSITORY_TYPE');
    return row;
  }

  /** The folder of a repository: where it lives on disk comes from here and its id, never its name. */
  folderOf(row: Pick<RepoRow, 'id' | 'type'>): string {
    return row.type === 'hg' ? hgRepoDir(this.dataDir, row.id) : repoDir(this.dataDir, row.id);
  }

  /** Like get, but undefined instead of a not-found (JSON-RPC's get_repo answers null). */
  async findReadable(p: Principal, idOrName: string): Promise<RepoRow | undefined> {
    try {
      return await this.get(p, idOrName, 'repo:read');
    } catch (e) {
      if (e instanceof AccessDenied && e.kind === 'notFound') return undefined;
      throw e;
    }
  }

  /**
   * Creates a bare repository, owned by the calling user (or, for an admin,
   * by `ownerId`). A name with `/` creates its repository groups. With
   * `cloneUri`, the upstream is fetched now; a failed fetch removes the
   * repository again and reports why.
   */
  async create(p: Principal, input: CreateRepoInput): Promise<RepoRow> {
    const account = await this.access.requireAccount(p);
    let ownerId = account.userId;
    if (input.ownerName !== undefined && input.ownerName.toLowerCase() !== account.username.toLowerCase()) {
      if (!(await this.access.isServerAdmin(p))) throw forbidden('Only admins may create repositories for another owner');
      const owner = await this.store.findUserByName(this.store.db, input.ownerName);
      if (!owner) throw notFound(`user ${input.ownerName.slice(0, 64)} does not exist`, 'USER_NOT_FOUND');
      ownerId = owner.id;
    }
    const name = input.name ?? null;
    if (name !== null) {
      const problem = repoNameProblem(name);
      if (problem) throw invalid(`Invalid repository name: ${problem}`);
    }
    const type = input.type ?? 'git';
    // Mercurial's branch is `default`; git's is what the caller asks, main when it does not
    const defaultBranch = type === 'hg' ? 'default' : (input.defaultBranch ?? 'main');
    const bp = branchNameProblem(defaultBranch);
    if (bp) throw invalid(`Invalid default branch: ${bp}`);
    // Checked as the caller: a file:// path only for admins, this server's repositories only if readable.
    const target = input.cloneUri ? await this.opts.outbound.target(p, input.cloneUri, 'git') : undefined;
    // Stored as given, credentials included (used, never shown: see redactUrl).
    const upstream = input.cloneUri ? new URL(input.cloneUri).href : null;
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
      type,
      protected_branches: this.opts.protectDefaultBranch ? JSON.stringify([defaultBranch]) : null,
    };
    // Folder first, then the row: a repository visible in the database always has its folder.
    if (type === 'hg') await createHgRepo(this.opts.hg, this.dataDir, row.id);
    else await createBareRepo(this.dataDir, row.id, defaultBranch);
    try {
      await this.store.transaction(async (tx) => {
        if (name !== null && name.includes('/')) row.group_id = await this.ensureGroups(tx, name.slice(0, name.lastIndexOf('/')));
        await this.store.insertRepo(tx, row);
      });
    } catch (e) {
      await removeRepo(this.dataDir, row.id, this.folderOf(row));
      if (isUniqueViolation(e)) throw conflict(`Repository ${name} already exists`, 'REPO_ALREADY_EXISTS');
      throw e;
    }
    if (target) {
      try {
        await this.opts.slots.run(p, () => this.fetchUpstream(row, target));
      } catch (e) {
        await this.store.deleteRepo(this.store.db, row.id);
        await removeRepo(this.dataDir, row.id);
        throw invalid(`Could not clone from ${target.shown}: ${fetchFailure(e)}`, 'SOURCE_NOT_FOUND');
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
      parent = (await this.store.ensureRepoGroup(tx, { id: newId(), name, parent_id: parent, created_at: now() })).id;
    }
    return parent!;
  }

  /** Mirrors the upstream's branches and tags; if the default branch is not among them, adopts `master` or the first one. */
  private async fetchUpstream(row: RepoRow, target: OutboundTarget): Promise<void> {
    if (row.type === 'hg') return this.pullHg(row, target);
    const dir = repoDir(this.dataDir, row.id);
    await fetchMirror(this.opts.git, dir, this.opts.outbound.gitRemote(target), { timeoutMs: this.opts.fetchTimeoutMs });
    const heads = await readRefs(dir, 'refs/heads/');
    if (heads.size > 0 && !heads.has(`refs/heads/${row.default_branch}`)) {
      const pick = heads.has('refs/heads/main') ? 'main' : heads.has('refs/heads/master') ? 'master' : [...heads.keys()].sort()[0]!.slice('refs/heads/'.length);
      await setHead(this.dataDir, row.id, pick);
      await this.store.updateRepo(this.store.db, row.id, { default_branch: pick });
    }
  }

  /**
   * `hg pull` from an upstream the guard checked: this server's own hg repository or an admin's
   * path from its folder; an http(s) one through the guard's relay, since Mercurial's HTTP client
   * cannot be pinned to the checked address itself.
   */
  private async pullHg(row: RepoRow, target: OutboundTarget): Promise<void> {
    let source: string;
    let relay: { url: string; close: () => void } | undefined;
    if (target.kind === 'self') {
      if (target.repo.type !== 'hg') throw invalid('the clone_uri names a git repository; a Mercurial repository pulls from Mercurial');
      source = this.folderOf(target.repo);
    } else if (target.kind === 'file') source = target.path;
    else {
      relay = await this.opts.outbound.relay(target, this.opts.fetchTimeoutMs);
      source = relay.url;
    }
    try {
      const dir = this.folderOf(row);
      const r = await runHg(this.opts.hg, ['-R', dir, 'pull', '--', source], { timeoutMs: this.opts.fetchTimeoutMs, maxOutput: 1 << 20 }, [dir, source]);
      if (r.code !== 0 && r.code !== 1) throw new Error(r.stderr.split('\n').find((l) => l.startsWith('abort:'))?.replace(/'\/[^']*'|\/[^\s]+/g, '…').slice(0, 300) ?? `hg exited with ${r.code}`);
    } finally {
      relay?.close();
    }
  }

  /** Fetches the repository's upstream again (admin on it needed). */
  async pull(p: Principal, idOrName: string): Promise<RepoRow> {
    const row = await this.get(p, idOrName, 'repo:admin');
    if (!row.upstream_url) throw invalid(`Repository ${row.name ?? row.id} has no remote location (clone_uri) to pull from`);
    // Checked again as the caller at each use: DNS answers change, and so do the caller's rights.
    const target = await this.opts.outbound.target(p, row.upstream_url, 'git');
    try {
      await this.opts.slots.run(p, () => this.fetchUpstream(row, target));
    } catch (e) {
      throw invalid(`Pull from ${target.shown} failed: ${fetchFailure(e)}`);
    }
    return row;
  }

  /**
   * Files and folders under `rootPath` at `revision`, flat (seed 002's get_repo_nodes); read
   * needed. For hg, `revision` is a changeset id, `tip`, a branch, tag or bookmark.
   */
  async nodes(p: Principal, idOrName: string, revision: string, rootPath: string, retType: 'all' | 'files' | 'dirs'): Promise<TreeNode[]> {
    const row = await this.get(p, idOrName, 'repo:read');
    const root = normaliseRepoPath(rootPath);
    if (root === undefined) throw invalid(`Invalid root_path: ${rootPath.slice(0, 200)}`);
    const nodes = await this.opts.slots.run(p, () =>
      row.type === 'hg' ? listHgTree(this.opts.hg, this.folderOf(row), revision, root, 60_000) : listTree(this.opts.git, repoDir(this.dataDir, row.id), revision, root, 60_000),
    );
    if (!nodes) throw notFound(`revision ${revision.slice(0, 100)} or path "${root}" not found in ${row.name ?? row.id}`, 'PATH_NOT_FOUND');
    return retType === 'all' ? nodes : nodes.filter((n) => (retType === 'files' ? n.type === 'file' : n.type === 'dir'));
  }

  /** Lists repositories: an admin sees all, another user those it owns or was granted. */
  async list(p: Principal, q: PageQuery): Promise<{ rows: RepoRow[]; total: number; offset: number }> {
    const account = await this.access.requireAccount(p);
    const { limit = 100, offset = 0 } = q;
    const { rows, total } = (await this.access.isServerAdmin(p)) ? await this.store.listRepos(this.store.db, { limit, offset }) : await this.store.listReposVisibleTo(this.store.db, account.userId, limit, offset);
    return { rows, total, offset };
  }

  /** Like list, each repository with its branches and tags (the SDK's listing shape). */
  async listWithRefs(p: Principal, q: PageQuery) {
    const { rows, total, offset } = await this.list(p, q);
    return { rows: await Promise.all(rows.map(async (row) => ({ row, ...(await this.refsSummary(row)) }))), total, offset };
  }

  /** Branches and tags of a repository read from disk. */
  private async refsSummary(row: RepoRow): Promise<{ branches: Record<string, { default: boolean; name: string; target: string | null }>; tags: Record<string, { name: string; target: string }> }> {
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

  /** Sets the default branch (write needed): metadata and HEAD; `invalid` unless it is a valid branch name. */
  async setDefaultBranch(p: Principal, idOrName: string, branch: string): Promise<string> {
    const problem = branchNameProblem(branch);
    if (problem) throw invalid(`Invalid default branch: ${problem}`);
    const row = await this.getGit(p, idOrName, 'repo:write');
    try {
      await setHead(this.dataDir, row.id, branch);
    } catch (e) {
      // deleted since it was resolved (its folder is gone): the same answer as for a missing one
      if (!(await this.store.findRepoById(this.store.db, row.id))) await this.access.requireRepo(p, 'repo:write', undefined, idOrName);
      throw e;
    }
    await this.store.updateRepo(this.store.db, row.id, { default_branch: branch });
    return branch;
  }

  /** Sets the visibility (admin needed): one fact shared with the RPC's `private`. */
  async setVisibility(p: Principal, idOrName: string, visibility: 'public' | 'private'): Promise<'public' | 'private'> {
    const row = await this.get(p, idOrName, 'repo:admin');
    await this.store.updateRepo(this.store.db, row.id, { visibility });
    return visibility;
  }

  /** Sets or clears the description (admin needed): at most 2,000 characters, no NUL. */
  async setDescription(p: Principal, idOrName: string, description: string | null): Promise<string | null> {
    const row = await this.get(p, idOrName, 'repo:admin');
    const value = description === null || description.trim() === '' ? null : description.trim();
    if (value !== null && (value.length > 2000 || value.includes('\0'))) throw invalid('Description must be at most 2000 characters');
    await this.store.updateRepo(this.store.db, row.id, { description: value });
    return value;
  }

  /** The repository's protected branch patterns (read needed). */
  async protectedBranches(p: Principal, idOrName: string): Promise<{ branches: string[] }> {
    const row = await this.get(p, idOrName, 'repo:read');
    return { branches: row.protected_branches ? (JSON.parse(row.protected_branches) as string[]) : [] };
  }

  /**
   * Replaces the protected branch patterns (admin needed): branch names, `*` matching any
   * characters (`release/*`). Below admin, nobody force-pushes or deletes a branch matching one.
   */
  async setProtectedBranches(p: Principal, idOrName: string, branches: readonly string[]): Promise<{ branches: string[] }> {
    for (const b of branches) {
      const problem = branchPatternProblem(b);
      if (problem) throw invalid(problem, 'INVALID_BRANCH_PATTERN');
    }
    const row = await this.get(p, idOrName, 'repo:admin');
    const list = [...new Set(branches)];
    await this.store.updateRepo(this.store.db, row.id, { protected_branches: list.length ? JSON.stringify(list) : null });
    await this.access.audit.record({ actor: p, action: 'repo.protected-branches', target: { kind: 'repo', id: row.id, name: row.name }, detail: { branches: list } });
    return { branches: list };
  }

  /** Deletes a repository (admin on it needed): the row, its grants, then its folder. */
  async delete(p: Principal, idOrName: string): Promise<void> {
    const row = await this.get(p, idOrName, 'repo:admin');
    await this.store.deleteRepo(this.store.db, row.id);
    await removeRepo(this.dataDir, row.id, this.folderOf(row));
  }
}

/** A URL with its credentials hidden, for messages. */
export const redact = redactUrl;

/** Why a fetch failed, in words safe to show: git's own complaint (paths and credentials hidden) or a fixed sentence. */
export function fetchFailure(e: unknown): string {
  if (e instanceof Error && !('code' in e)) return redactText(e.message);
  return outboundErrorText(e);
}
