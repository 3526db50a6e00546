import type { Readable } from 'node:stream';
import type { Access } from '../access/index.ts';
import type { Principal } from '../domain/access.ts';
import { invalid, notFound } from '../domain/errors.ts';
import { isObjectId, isRevision } from '../domain/validate.ts';
import type { CommitInfo } from '../git/objects.ts';
import type { GitReader } from '../git/read.ts';
import { readRefs } from '../git/refs.ts';
import { repoDir } from '../git/repo-path.ts';
import { streamGit } from '../git/runner.ts';
import { normaliseRepoPath } from '../git/tree.ts';
import type { RepoRow, Store } from '../store/index.ts';
import type { ProcessSlots } from './process-slots.ts';
import type { Repos } from './repos.ts';

/** One entry of a folder listing. */
export interface TreeItem {
  name: string;
  kind: 'dir' | 'file' | 'symlink' | 'submodule';
  oid: string;
  executable: boolean;
}

/** A commit as a history line shows it. */
export interface LogEntry {
  sha: string;
  parents: string[];
  authorName: string;
  authorEmail: string;
  /** seconds since the epoch */
  authorTime: number;
  subject: string;
  /** the message after the subject (feeds only) */
  body?: string;
}

/** One line of a diff hunk. */
export interface DiffLine {
  kind: 'add' | 'del' | 'ctx' | 'hunk' | 'note';
  text: string;
  oldNo?: number;
  newNo?: number;
}

/** One file of a diff. */
export interface DiffFile {
  oldPath: string | null;
  newPath: string | null;
  status: 'added' | 'deleted' | 'modified' | 'renamed' | 'copied' | 'mode';
  binary: boolean;
  additions: number;
  deletions: number;
  lines: DiffLine[];
}

/** A diff as a page shows it: bounded, with whether anything was left out. */
export interface Diff {
  files: DiffFile[];
  truncated: boolean;
}

/** A branch or tag with the commit it points at (when that is a commit this repository has). */
export interface RefItem {
  name: string;
  oid: string;
  commit: CommitInfo | undefined;
  isDefault: boolean;
}

/** Where a `<rev>/<path>` URL tail points. */
export interface Resolved {
  row: RepoRow;
  dir: string;
  /** the revision as written (a branch, tag or commit id) */
  rev: string;
  commit: string;
  path: string;
}

export interface BrowseLimits {
  /** largest diff text read from git, in bytes; the rest is left out */
  maxDiffBytes: number;
  /** diff lines a page shows at most */
  maxDiffLines: number;
  /** files of a diff a page shows at most */
  maxDiffFiles: number;
}

const README_RE = /^readme(\.(md|markdown|mkd|txt|rst))?$/i;

/**
 * The reading side of the web pages: repository listings from the database, folders, files,
 * history, commits with their diffs, comparisons, branches and tags, feeds. Every method
 * resolves the repository through `Repos.get` (read, decided by the one decision point: a
 * hidden repository is not found) and bounds what it reads; git children started for a page
 * take a slot of the process pool.
 */
/** What the pages say of a Mercurial repository's files and history. */
export const MERCURIAL_NOT_BROWSABLE = 'Mercurial repositories are not shown in the web pages yet: clone it with hg';

export class Browse {
  constructor(
    private readonly store: Store,
    private readonly access: Access,
    private readonly repos: Repos,
    private readonly reader: GitReader,
    private readonly dataDir: string,
    private readonly slots: ProcessSlots,
    private readonly limits: BrowseLimits = { maxDiffBytes: 1 << 20, maxDiffLines: 3000, maxDiffFiles: 300 },
  ) {}

  /**
   * One page of the repositories `p` may see, searched by name and description: answered from
   * the database alone (no git per row), each row also passed through the decision point.
   */
  async list(p: Principal, q: { text?: string; limit: number; offset: number }): Promise<{ rows: RepoRow[]; total: number }> {
    const admin = await this.access.isServerAdmin(p);
    const who = admin ? ({ all: true } as const) : { userId: p.kind === 'user' && p.active ? p.userId : null };
    const { rows, total } = await this.store.searchRepos(this.store.db, who, q);
    if (admin) return { rows, total };
    const allowed = await Promise.all(rows.map(async (r) => (await this.access.authorize(p, 'repo:read', { kind: 'repo', repoId: r.id })).allowed));
    return { rows: rows.filter((_, i) => allowed[i]), total };
  }

  /** The repository (read needed), of either type; its git folder only for a git one. */
  async open(p: Principal, repo: string): Promise<{ row: RepoRow; dir: string }> {
    const row = await this.repos.get(p, repo, 'repo:read');
    return { row, dir: repoDir(this.dataDir, row.id) };
  }

  /**
   * A git repository (read needed) and its folder, for the pages that read files and history:
   * a Mercurial one is a clear 404 (`UNSUPPORTED_REPOSITORY_TYPE`), never a git error.
   */
  async openGit(p: Principal, repo: string): Promise<{ row: RepoRow; dir: string }> {
    const opened = await this.open(p, repo);
    if (opened.row.type !== 'git') throw notFound(MERCURIAL_NOT_BROWSABLE, 'UNSUPPORTED_REPOSITORY_TYPE');
    return opened;
  }

  /** What `p` may do on the repository beyond reading: for showing the settings links. */
  async canAdmin(p: Principal, row: RepoRow): Promise<boolean> {
    return (await this.access.authorize(p, 'repo:admin', { kind: 'repo', repoId: row.id })).allowed;
  }

  /**
   * Splits a URL tail `<rev>/<path…>` where the revision may itself hold slashes
   * (`feature/x`): the longest leading run of segments that names a branch or tag wins,
   * else the first segment is the revision (a commit id, or a name git resolves).
   * No segments: the default branch at the root.
   */
  async resolve(p: Principal, repo: string, segments: string[]): Promise<Resolved> {
    const { row, dir } = await this.openGit(p, repo);
    let rev = row.default_branch;
    let rest = segments;
    if (segments.length > 0) {
      rev = segments[0]!;
      rest = segments.slice(1);
      if (segments.length > 1) {
        const names = new Set<string>();
        for (const [ref] of await readRefs(dir, 'refs/heads/')) names.add(ref.slice('refs/heads/'.length));
        for (const [ref] of await readRefs(dir, 'refs/tags/')) names.add(ref.slice('refs/tags/'.length));
        for (let i = segments.length; i >= 2; i--) {
          const candidate = segments.slice(0, i).join('/');
          if (names.has(candidate)) {
            rev = candidate;
            rest = segments.slice(i);
            break;
          }
        }
      }
    }
    const path = normaliseRepoPath(rest.join('/'));
    if (path === undefined) throw invalid('Invalid path');
    if (!isRevision(rev)) throw notFound(`Revision not found: ${String(rev).slice(0, 100)}`);
    const commit = await this.reader.resolveCommit(dir, rev);
    if (!commit) throw notFound(`Revision not found: ${rev.slice(0, 100)}`);
    return { row, dir, rev, commit, path };
  }

  /** The commit a resolved revision points at. */
  async commitInfo(r: { dir: string; commit: string }): Promise<CommitInfo | undefined> {
    return this.reader.commit(r.dir, r.commit);
  }

  /**
   * A folder at a resolved revision: folders first, then files, by name; `offset`/`limit` page
   * it; `readme` is the folder's README blob, if any. undefined when the path is not a folder.
   */
  async tree(r: Resolved, page: { offset: number; limit: number }): Promise<{ items: TreeItem[]; total: number; readme: { name: string; oid: string } | undefined } | undefined> {
    const name = r.path === '' ? `${r.commit}^{tree}` : `${r.commit}:${r.path}`;
    const t = await this.reader.tree(r.dir, name);
    if (!t) return undefined;
    const items: TreeItem[] = t.entries.map((e) => ({
      name: e.name,
      oid: e.oid,
      kind: e.mode === '40000' ? 'dir' : e.mode === '160000' ? 'submodule' : e.mode === '120000' ? 'symlink' : 'file',
      executable: e.mode === '100755',
    }));
    items.sort((a, b) => (a.kind === 'dir') !== (b.kind === 'dir') ? (a.kind === 'dir' ? -1 : 1) : a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
    const readmes = items.filter((i) => i.kind === 'file' && README_RE.test(i.name)).sort((a, b) => rank(a.name) - rank(b.name));
    return { items: items.slice(page.offset, page.offset + page.limit), total: items.length, readme: readmes[0] && { name: readmes[0].name, oid: readmes[0].oid } };
  }

  /** What a resolved path is: a folder, a file (blob), or nothing. */
  async kindOf(r: Resolved): Promise<'tree' | 'blob' | undefined> {
    if (r.path === '') return 'tree';
    const o = await this.reader.object(r.dir, `${r.commit}:${r.path}`);
    return o?.type === 'tree' ? 'tree' : o?.type === 'blob' ? 'blob' : undefined;
  }

  /** A file's bytes at a resolved revision, at most `max` of them; undefined when not a file. */
  async blob(r: Resolved, max: number): Promise<{ oid: string; size: number; content: Buffer; truncated: boolean } | undefined> {
    const o = await this.reader.object(r.dir, `${r.commit}:${r.path}`);
    if (!o || o.type !== 'blob') return undefined;
    return { oid: o.oid, size: o.size, content: o.size > max ? o.content.subarray(0, max) : o.content, truncated: o.size > max };
  }

  /** A blob by id (a README found in a listing). */
  async blobById(dir: string, oid: string, max: number): Promise<Buffer | undefined> {
    const o = await this.reader.object(dir, oid);
    if (!o || o.type !== 'blob') return undefined;
    return o.size > max ? o.content.subarray(0, max) : o.content;
  }

  /**
   * Streams a file's bytes (`git cat-file blob`), holding a process slot while it runs; the
   * child dies when `signal` aborts. undefined when the path is not a file.
   */
  async rawStream(p: Principal, r: Resolved, signal: AbortSignal): Promise<{ stream: Readable; oid: string; head: Buffer } | undefined> {
    const o = await this.reader.object(r.dir, `${r.commit}:${r.path}`);
    if (!o || o.type !== 'blob') return undefined;
    const slot = await this.slots.acquire(p, signal);
    const stream = streamGit(this.reader.g, slot, ['--git-dir', r.dir, 'cat-file', 'blob', o.oid], { timeoutMs: 30 * 60_000, signal }, [o.oid]);
    return { stream, oid: o.oid, head: o.content.subarray(0, 8000) };
  }

  /**
   * History from a resolved revision, newest first, optionally only commits touching `path`;
   * `offset`/`limit` page it and `more` says whether another page follows (no count of the
   * whole history: that walk is what makes big histories slow).
   */
  async log(p: Principal, r: { dir: string; commit: string; path: string }, page: { offset: number; limit: number }, withBody = false): Promise<{ entries: LogEntry[]; more: boolean }> {
    const format = `--format=%x1e%H%x1f%P%x1f%an%x1f%ae%x1f%at%x1f%s${withBody ? '%x1f%b' : ''}`;
    const args = ['log', '--no-color', format, `--max-count=${page.limit + 1}`, `--skip=${page.offset}`, r.commit];
    const user = [r.commit];
    if (r.path) {
      const spec = `:(literal)${r.path}`;
      args.push('--', spec);
      user.push(spec);
    }
    const out = await this.slots.run(p, () => this.reader.run(r.dir, args, user, undefined, 16 << 20));
    const entries = parseLog(out.stdout.toString('utf8'), withBody);
    const more = entries.length > page.limit;
    return { entries: entries.slice(0, page.limit), more };
  }

  /** A commit by id or revision in a repository `p` may read, with its diff against its first parent. */
  async commit(p: Principal, repo: string, rev: string): Promise<{ row: RepoRow; dir: string; commit: CommitInfo; diff: Diff }> {
    const { row, dir } = await this.openGit(p, repo);
    const c = isRevision(rev) ? await this.reader.commit(dir, rev) : undefined;
    if (!c) throw notFound(`Commit not found: ${rev.slice(0, 100)}`);
    const args = c.parents.length === 0 ? ['diff-tree', '-p', '--root', '-M', '--no-color', '--no-ext-diff', '--no-textconv', c.sha] : ['diff', '-M', '--no-color', '--no-ext-diff', '--no-textconv', c.parents[0]!, c.sha];
    const diff = await this.diff(p, dir, args, c.parents.length === 0 ? [c.sha] : [c.parents[0]!, c.sha]);
    return { row, dir, commit: c, diff };
  }

  /** The whole patch of a commit, streamed as git writes it (the page's diff is bounded; this is not). */
  async patchStream(p: Principal, repo: string, rev: string, signal: AbortSignal): Promise<{ stream: Readable; sha: string }> {
    const { dir } = await this.openGit(p, repo);
    const c = isRevision(rev) ? await this.reader.commit(dir, rev) : undefined;
    if (!c) throw notFound(`Commit not found: ${rev.slice(0, 100)}`);
    const slot = await this.slots.acquire(p, signal);
    const stream = streamGit(this.reader.g, slot, ['--git-dir', dir, 'format-patch', '--stdout', '-1', '--no-color', '--no-ext-diff', '--no-textconv', c.sha], { timeoutMs: 30 * 60_000, signal }, [c.sha]);
    return { stream, sha: c.sha };
  }

  /**
   * How `head` differs from `base`: the commits in head and not in base (at most 100, and
   * whether there are more), and the diff from their merge base to head (bounded).
   */
  async compare(p: Principal, repo: string, baseRev: string, headRev: string) {
    const { row, dir } = await this.openGit(p, repo);
    const base = await this.reader.resolveCommit(dir, baseRev);
    const head = await this.reader.resolveCommit(dir, headRev);
    if (!base) throw notFound(`Revision not found: ${baseRev.slice(0, 100)}`);
    if (!head) throw notFound(`Revision not found: ${headRev.slice(0, 100)}`);
    const range = `${base}..${head}`;
    const out = await this.slots.run(p, () => this.reader.run(dir, ['log', '--no-color', '--format=%x1e%H%x1f%P%x1f%an%x1f%ae%x1f%at%x1f%s', '--max-count=101', range], [range]));
    const commits = parseLog(out.stdout.toString('utf8'), false);
    const mb = await this.slots.run(p, () => this.reader.run(dir, ['merge-base', base, head], [base, head]));
    const from = mb.stdout.toString().trim();
    const diff = isObjectId(from) ? await this.diff(p, dir, ['diff', '-M', '--no-color', '--no-ext-diff', '--no-textconv', from, head], [from, head]) : { files: [], truncated: false };
    return { row, dir, base, head, commits: commits.slice(0, 100), more: commits.length > 100, diff, unrelated: !isObjectId(from) };
  }

  /** Branches (default first, then newest) or tags (newest first), with their commits; `offset`/`limit` page them. */
  async refs(p: Principal, repo: string, kind: 'branches' | 'tags', page: { offset: number; limit: number }): Promise<{ row: RepoRow; items: RefItem[]; total: number }> {
    const { row, dir } = await this.openGit(p, repo);
    const prefix = kind === 'branches' ? 'refs/heads/' : 'refs/tags/';
    const refs = [...(await readRefs(dir, prefix))].map(([ref, oid]) => ({ name: ref.slice(prefix.length), oid }));
    // dates come from the commits; beyond a few thousand refs, sort by name and read only the page
    const byDate = refs.length <= 2000;
    const items: RefItem[] = [];
    const load = async (r: { name: string; oid: string }): Promise<RefItem> => ({ ...r, commit: await this.reader.commit(dir, r.oid), isDefault: kind === 'branches' && r.name === row.default_branch });
    if (byDate) {
      for (const r of refs) items.push(await load(r));
      const time = (i: RefItem) => (i.commit ? Date.parse(i.commit.committer.date) : 0);
      items.sort((a, b) => Number(b.isDefault) - Number(a.isDefault) || time(b) - time(a) || (a.name < b.name ? -1 : 1));
      return { row, items: items.slice(page.offset, page.offset + page.limit), total: items.length };
    }
    refs.sort((a, b) => (a.name < b.name ? -1 : 1));
    for (const r of refs.slice(page.offset, page.offset + page.limit)) items.push(await load(r));
    return { row, items, total: refs.length };
  }

  /** How many branches and tags the repository has (read from its refs, no git process). */
  async refCounts(p: Principal, repo: string): Promise<{ branches: number; tags: number }> {
    const { dir } = await this.openGit(p, repo);
    return { branches: (await readRefs(dir, 'refs/heads/')).size, tags: (await readRefs(dir, 'refs/tags/')).size };
  }

  /** Runs a diff command and parses its output, bounded in bytes and lines. */
  private async diff(p: Principal, dir: string, args: string[], userArgs: string[]): Promise<Diff> {
    const out = await this.slots.run(p, () => this.reader.run(dir, args, userArgs, undefined, this.limits.maxDiffBytes));
    const text = out.stdout.toString('utf8');
    const d = parseDiff(text, this.limits.maxDiffLines, this.limits.maxDiffFiles);
    if (out.stdout.length >= this.limits.maxDiffBytes) d.truncated = true;
    return d;
  }
}

const rank = (name: string) => (/\.(md|markdown|mkd)$/i.test(name) ? 0 : /\./.test(name) ? 2 : 1);

/** Parses `git log --format=%x1e%H%x1f%P%x1f%an%x1f%ae%x1f%at%x1f%s[%x1f%b]`. */
export function parseLog(out: string, withBody: boolean): LogEntry[] {
  const entries: LogEntry[] = [];
  for (const rec of out.split('\x1e')) {
    if (!rec.trim()) continue;
    const f = rec.split('\x1f');
    if (f.length < 6) continue;
    const e: LogEntry = { sha: f[0]!.trim(), parents: f[1] ? f[1].split(' ').filter(Boolean) : [], authorName: f[2]!, authorEmail: f[3]!, authorTime: Number(f[4]) || 0, subject: f[5]!.replace(/\n$/, '') };
    if (withBody) e.body = (f[6] ?? '').trim();
    entries.push(e);
  }
  return entries;
}

/** Reads a C-quoted path as git writes one ("a\tb", octal escapes for other bytes). */
function unquote(s: string): string {
  if (!s.startsWith('"')) return s;
  const bytes: number[] = [];
  for (let i = 1; i < s.length - 1; i++) {
    const ch = s[i]!;
    if (ch !== '\\') {
      for (const b of Buffer.from(ch, 'utf8')) bytes.push(b);
      continue;
    }
    const n = s[++i]!;
    if (/[0-7]/.test(n)) {
      bytes.push(parseInt(s.slice(i, i + 3), 8));
      i += 2;
    } else bytes.push(({ n: 10, t: 9, r: 13, a: 7, b: 8, f: 12, v: 11 } as Record<string, number>)[n] ?? n.charCodeAt(0));
  }
  return Buffer.from(bytes).toString('utf8');
}

const stripPrefix = (s: string, prefix: string) => {
  const u = unquote(s);
  return u === '/dev/null' ? null : u.startsWith(prefix) ? u.slice(prefix.length) : u;
};

/**
 * Parses unified diff text (`git diff`, `git diff-tree -p`) into files and lines, keeping at
 * most `maxLines` lines and `maxFiles` files in all; `truncated` tells when some were left out.
 */
export function parseDiff(text: string, maxLines: number, maxFiles = Infinity): Diff {
  const files: DiffFile[] = [];
  let cur: DiffFile | undefined;
  let oldNo = 0;
  let newNo = 0;
  let shown = 0;
  let truncated = false;
  let inHunk = false;
  const lines = text.split('\n');
  if (lines.length && lines[lines.length - 1] === '') lines.pop();
  for (const line of lines) {
    if (line.startsWith('diff --git ')) {
      if (files.length >= maxFiles) {
        truncated = true;
        break;
      }
      const m = /^diff --git ("(?:[^"\\]|\\.)*"|\S+) ("(?:[^"\\]|\\.)*"|\S+)$/.exec(line);
      cur = { oldPath: m ? stripPrefix(m[1]!, 'a/') : null, newPath: m ? stripPrefix(m[2]!, 'b/') : null, status: 'modified', binary: false, additions: 0, deletions: 0, lines: [] };
      files.push(cur);
      inHunk = false;
      continue;
    }
    if (!cur) continue;
    if (!inHunk) {
      if (line.startsWith('new file mode')) cur.status = 'added';
      else if (line.startsWith('deleted file mode')) cur.status = 'deleted';
      else if (line.startsWith('rename from ')) cur.status = 'renamed';
      else if (line.startsWith('copy from ')) cur.status = 'copied';
      else if (line.startsWith('old mode ') && cur.status === 'modified') cur.status = 'mode';
      else if (line.startsWith('Binary files ')) cur.binary = true;
      else if (line.startsWith('--- ')) {
        cur.oldPath = stripPrefix(line.slice(4), 'a/');
        continue;
      } else if (line.startsWith('+++ ')) {
        cur.newPath = stripPrefix(line.slice(4), 'b/');
        continue;
      }
      if (cur.status === 'added') cur.oldPath = null;
      if (cur.status === 'deleted') cur.newPath = null;
    }
    if (line.startsWith('@@')) {
      inHunk = true;
      const m = /^@@ -(\d+)(?:,\d+)? \+(\d+)(?:,\d+)? @@/.exec(line);
      oldNo = m ? Number(m[1]) : 0;
      newNo = m ? Number(m[2]) : 0;
      if (shown < maxLines) {
        cur.lines.push({ kind: 'hunk', text: line });
        shown++;
      } else truncated = true;
      continue;
    }
    if (!inHunk) continue;
    const c = line[0];
    if (c === '+') cur.additions++;
    else if (c === '-') cur.deletions++;
    if (shown >= maxLines) {
      truncated = true;
      continue;
    }
    shown++;
    if (c === '+') cur.lines.push({ kind: 'add', text: line.slice(1), newNo: newNo++ });
    else if (c === '-') cur.lines.push({ kind: 'del', text: line.slice(1), oldNo: oldNo++ });
    else if (c === '\\') cur.lines.push({ kind: 'note', text: line });
    else cur.lines.push({ kind: 'ctx', text: line.slice(1), oldNo: oldNo++, newNo: newNo++ });
  }
  return { files, truncated };
}
