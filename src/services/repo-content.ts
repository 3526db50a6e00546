import type { Readable } from 'node:stream';
import type { Principal } from '../domain/access.ts';
import { invalid, notFound } from '../domain/errors.ts';
import { branchNameProblem, requireObjectId, requireRevision } from '../domain/validate.ts';
import { type CommitInfo, type TagInfo } from '../git/objects.ts';
import type { GitReader } from '../git/read.ts';
import { repoDir } from '../git/repo-path.ts';
import { streamGit } from '../git/runner.ts';
import { normaliseRepoPath } from '../git/tree.ts';
import type { ProcessSlots } from './process-slots.ts';
import type { Repos } from './repos.ts';
import type { RepoRow } from './types.ts';

/** A commit in the SDK's shape. */
export const commitOut = (c: CommitInfo) => ({
  sha: c.sha,
  tree: { sha: c.tree },
  parents: c.parents.map((sha) => ({ sha })),
  author: c.author,
  committer: c.committer,
  message: c.message,
});

/** The history page `commits` lists, as the route's schema checked it (limit 1-500, offset >= 0). */
export interface CommitsQuery {
  branch?: string;
  limit?: number;
  offset?: number;
  order?: 'asc' | 'desc';
  since?: string;
  until?: string;
}

const tagOut = (name: string, t: TagInfo | undefined, target: string) =>
  t ? { name, sha: t.sha, target: { sha: t.target }, tagger: t.tagger, message: t.message } : { name, sha: target, target: { sha: target }, tagger: null, message: null };


/**
 * The read side of the Git REST API: refs, objects, history, contents,
 * archives and comparisons. Each call resolves the repository through
 * `Repos.get`, i.e. the one decision point, needing read. Every git child
 * started for a call (history walks, diffs, size look-ups, archives) holds a
 * slot of the process pool while it runs (`unavailable` when none frees up).
 */
export class RepoContent {
  constructor(
    private readonly repos: Repos,
    private readonly reader: GitReader,
    private readonly dataDir: string,
    private readonly slots: ProcessSlots,
  ) {}

  /** `GitReader.run` holding a process slot for `p`'s client. */
  private git(p: Principal, ...args: Parameters<GitReader['run']>) {
    return this.slots.run(p, () => this.reader.run(...args));
  }

  /** `GitReader.sizes` (one batch-check child) holding a process slot. */
  private sizes(p: Principal, dir: string, oids: string[]) {
    return oids.length === 0 ? this.reader.sizes(dir, oids) : this.slots.run(p, () => this.reader.sizes(dir, oids));
  }

  private async open(p: Principal, repo: string): Promise<{ row: RepoRow; dir: string }> {
    const row = await this.repos.getGit(p, repo, 'repo:read');
    return { row, dir: repoDir(this.dataDir, row.id) };
  }

  async branches(p: Principal, repo: string) {
    const { dir } = await this.open(p, repo);
    const heads = await this.reader.heads(dir);
    return { branches: [...heads].map(([ref, sha]) => ({ name: ref.slice('refs/heads/'.length), commit: sha })).sort((a, b) => a.name.localeCompare(b.name)) };
  }

  async branch(p: Principal, repo: string, name: string) {
    const { dir } = await this.open(p, repo);
    const heads = await this.reader.heads(dir);
    const sha = heads.get(`refs/heads/${name}`);
    if (!sha) throw notFound(`Branch not found: ${name.slice(0, 200)}`, 'BRANCH_NOT_FOUND');
    return { name: `refs/heads/${name}`, sha };
  }

  async tags(p: Principal, repo: string) {
    const { dir } = await this.open(p, repo);
    const refs = await this.reader.tags(dir);
    const tags = [];
    for (const [ref, oid] of [...refs].sort((a, b) => a[0].localeCompare(b[0]))) tags.push(tagOut(ref.slice('refs/tags/'.length), await this.reader.tag(dir, oid), oid));
    return { tags };
  }

  async tagByName(p: Principal, repo: string, name: string) {
    const { dir } = await this.open(p, repo);
    const oid = (await this.reader.tags(dir)).get(`refs/tags/${name}`);
    if (!oid) throw notFound(`Tag not found: ${name.slice(0, 200)}`, 'TAG_NOT_FOUND');
    return tagOut(name, await this.reader.tag(dir, oid), oid);
  }

  async tagByHash(p: Principal, repo: string, hash: string) {
    const { dir } = await this.open(p, repo);
    const t = await this.reader.tag(dir, requireObjectId(hash));
    if (!t) throw notFound(`Tag not found: ${hash}`, 'TAG_NOT_FOUND');
    return tagOut(t.name, t, t.target);
  }

  async blob(p: Principal, repo: string, hash: string) {
    const { dir } = await this.open(p, repo);
    const o = await this.reader.object(dir, requireObjectId(hash));
    if (!o || o.type !== 'blob') throw notFound(`Blob not found: ${hash}`, 'BLOB_NOT_FOUND');
    return { sha: o.oid, size: o.size, encoding: 'base64' as const, content: o.content.toString('base64') };
  }

  async tree(p: Principal, repo: string, hash: string) {
    const { dir } = await this.open(p, repo);
    const t = await this.reader.tree(dir, requireObjectId(hash));
    if (!t) throw notFound(`Tree not found: ${hash}`, 'TREE_NOT_FOUND');
    const sizes = await this.sizes(p, dir, t.entries.filter((e) => e.mode !== '40000' && e.mode !== '160000').map((e) => e.oid));
    return {
      sha: t.oid,
      tree: t.entries.map((e) => (e.mode === '40000' ? { path: e.name, sha: e.oid, type: 'tree' as const } : { path: e.name, sha: e.oid, type: 'blob' as const, size: sizes.get(e.oid) ?? 0 })),
    };
  }

  async commit(p: Principal, repo: string, hash: string) {
    const { dir } = await this.open(p, repo);
    const c = await this.reader.commit(dir, requireObjectId(hash));
    if (!c) throw notFound(`Commit not found: ${hash}`, 'COMMIT_NOT_FOUND');
    return commitOut(c);
  }

  /** Commits of a branch (default: the default branch), newest first or oldest first, paged by offset or by since/until. */
  async commits(p: Principal, repo: string, q: CommitsQuery) {
    const { row, dir } = await this.open(p, repo);
    const { limit = 50, offset = 0, order = 'desc' } = q;
    const branch = q.branch || row.default_branch;
    if (branchNameProblem(branch)) throw invalid(`Invalid branch: ${branch.slice(0, 100)}`);
    const head = (await this.reader.heads(dir)).get(`refs/heads/${branch}`);
    const since = q.since ? requireObjectId(q.since, 'since') : undefined;
    const until = q.until ? requireObjectId(q.until, 'until') : undefined;
    const selector = since && until ? { Range: { since, until } } : since ? { Since: since } : until ? { Until: until } : null;
    const empty = { commits: [], count: 0, offset, limit, total: 0, order, selector, next_commit: null };
    const tip = until ?? head;
    if (!tip) {
      if (q.branch) throw notFound(`Branch not found: ${branch}`, 'BRANCH_NOT_FOUND');
      return empty;
    }
    for (const c of [since, until]) if (c && !(await this.reader.commit(dir, c))) throw notFound(`Commit not found: ${c}`, 'COMMIT_NOT_FOUND');
    const range = since ? [`^${since}`, tip] : [tip];
    const count = await this.git(p, dir, ['rev-list', '--count', ...range], range.filter((r) => !r.startsWith('^')));
    const total = Number(count.stdout.toString().trim()) || 0;
    let shas: string[];
    let next: string | null = null;
    if (order === 'desc') {
      const r = await this.git(p, dir, ['rev-list', `--max-count=${limit + 1}`, `--skip=${offset}`, ...range], range.filter((x) => !x.startsWith('^')));
      shas = r.stdout.toString().split('\n').filter(Boolean);
      if (shas.length > limit) next = shas.pop()!;
    } else {
      const r = await this.git(p, dir, ['rev-list', '--reverse', ...range], range.filter((x) => !x.startsWith('^')), undefined, 256 << 20);
      const all = r.stdout.toString().split('\n').filter(Boolean);
      shas = all.slice(offset, offset + limit);
      next = all[offset + limit] ?? null;
    }
    const commits = [];
    for (const sha of shas) {
      const c = await this.reader.commit(dir, sha);
      if (c) commits.push(commitOut(c));
    }
    return { commits, count: commits.length, offset, limit, total, order, selector, next_commit: next };
  }

  /** A file (base64 content) or a folder listing at `rev` (default: the default branch). */
  async contents(p: Principal, repo: string, rawPath: string, rev?: string) {
    const { row, dir } = await this.open(p, repo);
    const path = normaliseRepoPath(rawPath);
    if (path === undefined) throw invalid(`Invalid path: ${rawPath.slice(0, 200)}`, 'INVALID_FILE_PATH');
    const r = requireRevision(rev || row.default_branch);
    const name = path === '' ? `${r}^{tree}` : `${r}:${path}`;
    const o = await this.reader.object(dir, name);
    const base = path.split('/').pop() ?? '';
    if (!o) {
      if (!(await this.reader.resolveCommit(dir, r))) throw notFound(`Revision not found: ${r}`, 'REFERENCE_NOT_FOUND');
      throw notFound(`Path not found: ${path}`, 'PATH_NOT_FOUND');
    }
    if (o.type === 'blob') return { type: 'file' as const, name: base, path, sha: o.oid, size: o.size, content: o.content.toString('base64') };
    if (o.type !== 'tree') throw notFound(`Path not found: ${path}`, 'PATH_NOT_FOUND');
    const t = await this.reader.tree(dir, o.oid);
    const entries = t!.entries.filter((e) => e.mode !== '160000');
    const sizes = await this.sizes(p, dir, entries.filter((e) => e.mode !== '40000').map((e) => e.oid));
    return {
      type: 'dir' as const,
      name: base,
      path,
      sha: o.oid,
      entries: entries.map((e) => {
        const full = path ? `${path}/${e.name}` : e.name;
        return e.mode === '40000' ? { type: 'dir' as const, name: e.name, path: full, sha: e.oid, entries: [] } : { type: 'file' as const, name: e.name, path: full, sha: e.oid, size: sizes.get(e.oid) ?? 0 };
      }),
    };
  }

  /**
   * Streams `git archive` of `rev` as tar.gz or zip; the child is killed if
   * the caller aborts. Throws before streaming when the revision is unknown.
   */
  async archive(p: Principal, repo: string, format: 'tar.gz' | 'zip', rev: string | undefined, signal: AbortSignal): Promise<{ stream: Readable; filename: string }> {
    const { row, dir } = await this.open(p, repo);
    const r = requireRevision(rev || row.default_branch);
    const oid = await this.reader.resolveCommit(dir, r);
    if (!oid) throw notFound(`Revision not found: ${r}`, 'REFERENCE_NOT_FOUND');
    // The slot is held for as long as the archive streams.
    const slot = await this.slots.acquire(p, signal);
    const stream = streamGit(this.reader.g, slot, ['--git-dir', dir, 'archive', `--format=${format}`, oid], { timeoutMs: 30 * 60_000, signal }, [oid]);
    const name = (row.name ?? row.id).replaceAll('/', '-');
    return { stream, filename: `${name}-${oid.slice(0, 12)}.${format}` };
  }

  /** How `head` relates to `base`: ahead/behind counts and the files changed since their merge base. */
  async compare(p: Principal, repo: string, baseRev: string, headRev: string) {
    const { dir } = await this.open(p, repo);
    const base = await this.reader.resolveCommit(dir, requireRevision(baseRev));
    const head = await this.reader.resolveCommit(dir, requireRevision(headRev));
    if (!base) throw notFound(`Commit not found: ${baseRev}`, 'COMMIT_NOT_FOUND');
    if (!head) throw notFound(`Commit not found: ${headRev}`, 'COMMIT_NOT_FOUND');
    const counts = await this.git(p, dir, ['rev-list', '--left-right', '--count', `${base}...${head}`], [`${base}...${head}`]);
    const [behind, ahead] = counts.stdout.toString().trim().split(/\s+/).map(Number) as [number, number];
    const status = ahead === 0 && behind === 0 ? 'identical' : behind === 0 ? 'ahead' : ahead === 0 ? 'behind' : 'diverged';
    const mb = await this.git(p, dir, ['merge-base', base, head], [base, head]);
    const from = mb.stdout.toString().trim() || base;
    const raw = await this.git(p, dir, ['diff', '--raw', '-z', '-M', '--abbrev=40', '--no-ext-diff', from, head], [from, head]);
    const num = await this.git(p, dir, ['diff', '--numstat', '-z', '-M', '--no-ext-diff', from, head], [from, head]);
    const files = parseRawDiff(raw.stdout.toString('utf8'));
    const stats = parseNumstat(num.stdout.toString('utf8'));
    return {
      status,
      ahead_by: ahead,
      behind_by: behind,
      total_commits: ahead,
      files: files.map((f) => {
        const s = stats.get(f.filename) ?? { additions: 0, deletions: 0 };
        return { ...f, additions: s.additions, deletions: s.deletions, changes: s.additions + s.deletions };
      }),
    };
  }
}

const STATUS: Record<string, 'added' | 'removed' | 'modified' | 'renamed' | 'copied' | 'changed'> = { A: 'added', D: 'removed', M: 'modified', R: 'renamed', C: 'copied', T: 'changed' };

function parseRawDiff(out: string) {
  const parts = out.split('\0');
  const files: { filename: string; status: (typeof STATUS)[string]; sha: string | null; previous_filename: string | null }[] = [];
  for (let i = 0; i < parts.length; ) {
    const meta = parts[i++];
    if (!meta || !meta.startsWith(':')) continue;
    const [, , , dst, st] = meta.slice(1).split(' ') as [string, string, string, string, string];
    const letter = st[0]!;
    if (letter === 'R' || letter === 'C') {
      const prev = parts[i++]!;
      const name = parts[i++]!;
      files.push({ filename: name, status: STATUS[letter]!, sha: dst, previous_filename: prev });
    } else {
      const name = parts[i++]!;
      files.push({ filename: name, status: STATUS[letter] ?? 'changed', sha: letter === 'D' ? null : dst, previous_filename: null });
    }
  }
  return files;
}

function parseNumstat(out: string): Map<string, { additions: number; deletions: number }> {
  const m = new Map<string, { additions: number; deletions: number }>();
  const parts = out.split('\0');
  for (let i = 0; i < parts.length; ) {
    const head = parts[i++];
    if (!head) continue;
    const [a, d, name] = head.split('\t') as [string, string, string | undefined];
    const stat = { additions: a === '-' ? 0 : Number(a), deletions: d === '-' ? 0 : Number(d) };
    if (name === '' || name === undefined) {
      i++; // previous name of a rename
      m.set(parts[i++]!, stat);
    } else m.set(name, stat);
  }
  return m;
}
