import type { Access } from '../access/index.ts';
import type { Principal } from '../domain/access.ts';
import { conflict, invalid, notFound } from '../domain/errors.ts';
import { branchNameProblem, isDotGit, isSignaturePart, requireObjectId } from '../domain/validate.ts';
import { EMPTY_TREE, formatCommit, formatTree, objectId, parseCommit, type TreeEntry, ZERO_OID } from '../git/objects.ts';
import { type NewObject, writePack } from '../git/pack.ts';
import type { GitReader } from '../git/read.ts';
import { repoDir } from '../git/repo-path.ts';
import { normaliseRepoPath } from '../git/tree.ts';
import { casRef } from '../git/update-ref.ts';
import type { RefEvents } from './events.ts';
import { readRef } from '../git/refs.ts';
import type { AutoGc } from './auto-gc.ts';
import { commitOut } from './repo-content.ts';
import type { Repos } from './repos.ts';
import type { RepoRow } from './types.ts';

/** One file of a commit: new content (utf8 text or base64), or `deleted`. */
export interface FileChange {
  path: string;
  content?: string | null;
  encoding?: 'utf8' | 'base64' | null;
  deleted?: boolean | null;
}

/**
 * A commit to write, shaped as the route's schema checks it: a message of 1-1,000,000
 * characters, 1-2000 files with paths of at most 4096 characters, author parts of at most 200
 * NUL-free characters. Internal callers (imports) build the same.
 */
export interface CreateCommitInput {
  message: string;
  files: readonly FileChange[];
  /** default: the default branch */
  branch?: string | null;
  author?: { name: string; email: string } | null;
  /** the tip the caller expects: a compare-and-swap */
  expectedSha?: string | null;
}

const BASE64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function sigPart(v: string, what: string): string {
  if (!isSignaturePart(v)) throw invalid(`${what} must be 1-200 characters without <, > or line breaks`);
  return v;
}

/** Validated changes: path -> new content, or null to delete. */
function parseChanges(files: readonly FileChange[]): Map<string, Buffer | null> {
  const out = new Map<string, Buffer | null>();
  for (const f of files) {
    // the path's meaning: inside the tree, never into .git, no control characters or backslashes
    const path = normaliseRepoPath(f.path);
    if (!path || path.split('/').some(isDotGit) || f.path.includes('\\')) throw invalid(`Invalid file path: ${f.path.slice(0, 200)}`, 'INVALID_FILE_PATH');
    const content = f.content ?? null;
    if ((content !== null) === !!f.deleted) throw invalid(`File change must have either content or deleted flag, not both: ${path}`, 'INVALID_FILE_CHANGE');
    if (out.has(path)) throw invalid(`File listed twice: ${path}`, 'INVALID_FILE_PATH');
    if (content === null) {
      out.set(path, null);
      continue;
    }
    if (f.encoding === 'base64') {
      const clean = content.replace(/\s+/g, '');
      if (!BASE64_RE.test(clean)) throw invalid(`Invalid base64 content for file: ${path}`, 'INVALID_BASE64_CONTENT');
      out.set(path, Buffer.from(clean, 'base64'));
    } else out.set(path, Buffer.from(content, 'utf8'));
  }
  // a path that is both a file and a folder of another change is contradictory
  for (const p of out.keys()) {
    const parts = p.split('/');
    for (let i = 1; i < parts.length; i++) if (out.get(parts.slice(0, i).join('/'))) throw invalid(`Path is both a file and a folder: ${parts.slice(0, i).join('/')}`, 'INVALID_FILE_PATH');
  }
  return out;
}

/**
 * Writing commits without a checkout: blobs, trees and the commit are written
 * as loose objects (what `hash-object -w`/`mktree`/`commit-tree` write), and
 * the branch moves with `git update-ref <ref> <new> <old>`. With
 * `expectedSha` a moved branch is a 409; without it the change is re-applied
 * on the new tip, so two concurrent writers never lose a commit.
 */
export class Commits {
  /** Writers queue per repository in this process; update-ref's CAS covers other processes and nodes. */
  private readonly tails = new Map<string, Promise<unknown>>();
  /** API commits since the last `git gc --auto` per repository. */
  private readonly sinceGc = new Map<string, number>();

  /**
   * Commits written here are loose objects (one small pack per commit): every 50 of them (git's
   * gc.autoPackLimit) per repository, `gc --auto` is asked for (AutoGc, in the background), or
   * the packs pile up and every read slows down. The count is this node's.
   */
  private maybeGc(repoId: string, dir: string): void {
    const n = (this.sinceGc.get(repoId) ?? 0) + 1;
    if (n < 50) {
      this.sinceGc.set(repoId, n);
      return;
    }
    this.sinceGc.delete(repoId);
    this.autoGc?.request(repoId, dir);
  }

  private serial<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    const tail = run.catch(() => undefined);
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return run;
  }

  constructor(
    private readonly repos: Repos,
    private readonly reader: GitReader,
    private readonly dataDir: string,
    private readonly events: RefEvents,
    private readonly access: Access,
    private readonly autoGc?: AutoGc,
  ) {}

  async create(p: Principal, repo: string, body: CreateCommitInput) {
    const row = await this.repos.getGit(p, repo, 'repo:write');
    const dir = repoDir(this.dataDir, row.id);
    // the schema counts characters; a message of only blanks is still no message
    if (body.message.trim() === '') throw invalid('message must be a non-empty string');
    const changes = parseChanges(body.files);
    const branch = body.branch ?? row.default_branch;
    if (branchNameProblem(branch)) throw invalid(`Invalid branch name: ${branch.slice(0, 100)}`);
    let expected: string | null | undefined;
    if (body.expectedSha !== undefined && body.expectedSha !== null) expected = requireObjectId(body.expectedSha, 'expectedSha');
    let author = { name: p.kind === 'user' ? p.username : 'Palisade', email: p.kind === 'user' ? `${p.username}@users.palisade.invalid` : 'identity@users.palisade.invalid' };
    if (body.author) author = { name: sigPart(body.author.name, 'author.name'), email: sigPart(body.author.email, 'author.email') };
    // Blob ids do not depend on the tip; the objects are written with the trees and the commit, as one pack.
    const blobs = new Map<string, string | null>();
    const blobObjects: NewObject[] = [];
    for (const [path, content] of changes) {
      if (content === null) blobs.set(path, null);
      else {
        blobs.set(path, objectId('blob', content));
        blobObjects.push({ type: 'blob', content });
      }
    }

    const ref = `refs/heads/${branch}`;
    // Decided per ref before anything is written: a commit never forces (its parent is the tip).
    const exists = readRef(dir, ref) !== undefined; // its loose file, else packed-refs: not every branch
    await this.access.requireRefs(p, row, [{ ref, op: exists ? 'update' : 'create', force: false }]);
    return this.serial(row.id, () => this.commitLoop(p, row, dir, ref, branch, blobs, blobObjects, author, body.message, expected));
  }

  private async commitLoop(p: Principal, row: RepoRow, dir: string, ref: string, branch: string, blobs: Map<string, string | null>, blobObjects: NewObject[], author: { name: string; email: string }, message: string, expected: string | null | undefined) {
    for (let attempt = 0; attempt < 8; attempt++) {
      if (attempt > 0) await new Promise((r) => setTimeout(r, Math.random() * 20 * attempt));
      const heads = await this.reader.heads(dir);
      const current = heads.get(ref) ?? null;
      if (expected !== undefined && expected !== current) {
        throw conflict(`Conflict: expected parent SHA ${expected} but current is ${current ?? 'none'}`, 'CONFLICTING_PARENT');
      }
      const parent = current ?? (branch !== row.default_branch ? (heads.get(`refs/heads/${row.default_branch}`) ?? null) : null);
      const parentTree = parent ? ((await this.reader.commitTree(dir, parent)) ?? null) : null;
      const pending: NewObject[] = [...blobObjects];
      let tree = await this.applyTree(dir, parentTree, blobs, '', pending);
      if (tree === null) {
        pending.push({ type: 'tree', content: Buffer.alloc(0) });
        tree = EMPTY_TREE;
      }
      const commitBuf = formatCommit({ tree, parents: parent ? [parent] : [], author, committer: author, message, date: new Date() });
      pending.push({ type: 'commit', content: commitBuf });
      // One pack per commit (two files) instead of a file per object; gc --auto consolidates.
      const written = writePack(dir, pending);
      for (const o of written) this.reader.markPresent(dir, o);
      const oid = written[written.length - 1]!;
      this.reader.rememberCommit(parseCommit(oid, commitBuf));
      if (await casRef(this.reader.g, dir, ref, oid, current ?? ZERO_OID)) {
        if (heads.size === 0 && branch !== row.default_branch) await this.repos.setDefaultBranch(p, row.id, branch);
        this.events.refsChanged(row.id, [{ ref, before: current, after: oid }]);
        this.maybeGc(row.id, dir);
        return { commit: commitOut(parseCommit(oid, commitBuf)) };
      }
      if (expected !== undefined) {
        const now = (await this.reader.heads(dir)).get(ref) ?? 'none';
        throw conflict(`Conflict: expected parent SHA ${expected} but current is ${now}`, 'CONFLICTING_PARENT');
      }
    }
    throw conflict('The branch kept moving; try again', 'CONFLICTING_PARENT');
  }

  /** Applies changes under `prefix` to the tree `treeOid`; returns the new tree id, or null when it ends up empty. */
  private async applyTree(dir: string, treeOid: string | null, changes: Map<string, string | null>, prefix: string, pending: NewObject[]): Promise<string | null> {
    const entries = new Map<string, TreeEntry>();
    if (treeOid && treeOid !== EMPTY_TREE) {
      const t = await this.reader.tree(dir, treeOid);
      for (const e of t?.entries ?? []) entries.set(e.name, e);
    }
    const direct = new Map<string, string | null>();
    const nested = new Map<string, Map<string, string | null>>();
    for (const [path, oid] of changes) {
      const slash = path.indexOf('/');
      if (slash < 0) direct.set(path, oid);
      else {
        const head = path.slice(0, slash);
        if (!nested.has(head)) nested.set(head, new Map());
        nested.get(head)!.set(path.slice(slash + 1), oid);
      }
    }
    for (const [name, oid] of direct) {
      if (oid === null) {
        const e = entries.get(name);
        if (!e || e.mode === '40000') throw notFound(`Path not found: ${prefix}${name}`, 'PATH_NOT_FOUND');
        entries.delete(name);
      } else {
        const e = entries.get(name);
        entries.set(name, { mode: e && (e.mode === '100755' || e.mode === '120000') ? e.mode : '100644', name, oid });
      }
    }
    for (const [name, sub] of nested) {
      const e = entries.get(name);
      const subOid = await this.applyTree(dir, e && e.mode === '40000' ? e.oid : null, sub, `${prefix}${name}/`, pending);
      if (subOid === null) entries.delete(name);
      else entries.set(name, { mode: '40000', name, oid: subOid });
    }
    if (entries.size === 0) return null;
    const list = [...entries.values()];
    const content = formatTree(list);
    const oid = objectId('tree', content);
    pending.push({ type: 'tree', content });
    this.reader.rememberTree(oid, list);
    return oid;
  }

  /**
   * Creates a branch at `sha` (default: the tip of the default branch);
   * 409 BRANCH_ALREADY_EXISTS if it exists.
   */
  async createBranch(p: Principal, repo: string, name: string, sha: string | null | undefined) {
    if (name === '{*branch}' || name === '*branch' || name === '{branch}') {
      throw invalid('The branch name is missing from the URL: the path ended in the literal "{*branch}" (freestyle-sandboxes 0.1.46 sends this by mistake); POST /git/v1/repo/{repo}/git/refs/heads/<name> instead', 'BRANCH_NAME_EMPTY');
    }
    const bp = branchNameProblem(name);
    if (bp) throw invalid(`Invalid branch name: ${bp}`);
    const row = await this.repos.getGit(p, repo, 'repo:write');
    const dir = repoDir(this.dataDir, row.id);
    const heads = await this.reader.heads(dir);
    let target: string | undefined;
    if (sha === undefined || sha === null || sha === '') {
      target = heads.get(`refs/heads/${row.default_branch}`);
      if (!target) throw notFound('Repository has no default branch configured', 'NO_DEFAULT_BRANCH');
    } else {
      target = await this.reader.resolveCommit(dir, requireObjectId(sha, 'sha'));
      if (!target) throw notFound(`Commit not found: ${sha}`, 'COMMIT_NOT_FOUND');
    }
    const ref = `refs/heads/${name}`;
    if (heads.has(ref)) throw conflict(`Branch already exists: ${name}`, 'BRANCH_ALREADY_EXISTS');
    await this.access.requireRefs(p, row, [{ ref, op: 'create' }]);
    if (!(await casRef(this.reader.g, dir, ref, target, ZERO_OID))) throw conflict(`Branch already exists: ${name}`, 'BRANCH_ALREADY_EXISTS');
    this.events.refsChanged(row.id, [{ ref, before: null, after: target }]);
    return { name, sha: target };
  }
}

