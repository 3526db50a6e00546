import type { Principal } from '../domain/access.ts';
import { invalid } from '../domain/errors.ts';
import { requireRevision } from '../domain/validate.ts';
import { checkPattern, grepFlags, grepLines, type MatchMode } from '../git/grep.ts';
import type { GitReader } from '../git/read.ts';
import { repoDir } from '../git/repo-path.ts';
import type { ProcessSlots } from './process-slots.ts';
import type { Repos } from './repos.ts';
import type { RepoRow } from './types.ts';

/**
 * A search as the route's schema checked it: `query` at most 1000 NUL-free characters, path
 * patterns at most 300, `maxResults` and `offset` within each kind's bounds.
 */
export interface SearchQuery {
  query: string;
  /** default: the default branch */
  rev?: string;
  isRegex?: boolean;
  caseSensitive?: boolean;
  wholeWord?: boolean;
  /** comma-separated globs (content and diff search) */
  pathPattern?: string;
  excludePattern?: string;
  /** 0 or absent: the kind's default page */
  maxResults?: number;
  offset?: number;
}

const TIMEOUT_MS = 5000;
const MAX_LINE = 500;

function pathspec(pattern: string | undefined, exclude: boolean): string[] {
  if (!pattern) return [];
  // a line break would start another pathspec, a leading ':' pathspec magic of the caller's choosing
  if (pattern.includes('\n') || pattern.startsWith(':')) throw invalid(`Invalid path pattern: ${pattern.slice(0, 100)}`, 'INVALID_PATH_PATTERN');
  return pattern.split(',').map((p) => `:(${exclude ? 'exclude,' : ''}glob)${p.trim()}`);
}
const ext = (p: string) => {
  const base = p.split('/').pop() ?? '';
  const dot = base.lastIndexOf('.');
  return dot > 0 ? base.slice(dot + 1) : null;
};

type Opened = Awaited<ReturnType<Search['open']>>;

/**
 * Search in a repository: file contents (git grep), file names, commit
 * messages and diffs. Patterns run in git or GNU grep child processes with a
 * time limit, never as JavaScript regular expressions, so a hostile pattern
 * cannot pin the server's core; and one search holds one slot of the process
 * pool for all its children, so a flood of them cannot start more than the
 * pool allows (`unavailable` when no slot frees up in time).
 */
export class Search {
  constructor(
    private readonly repos: Repos,
    private readonly reader: GitReader,
    private readonly dataDir: string,
    private readonly slots: ProcessSlots,
  ) {}

  /** Authorizes (read), then runs `fn` holding one process slot: every child of one search shares it. */
  private async slotted<T>(p: Principal, repo: string, q: SearchQuery, fn: (o: Opened) => Promise<T>): Promise<T> {
    const row = await this.repos.getGit(p, repo, 'repo:read');
    return this.slots.run(p, async () => fn(await this.open(row, q)));
  }

  private async open(row: RepoRow, q: SearchQuery) {
    const dir = repoDir(this.dataDir, row.id);
    const rev = q.rev || row.default_branch;
    requireRevision(rev);
    const query = q.query;
    if (query === '') throw invalid('Query must not be empty', 'COMMIT_EMPTY_QUERY');
    // a line break would make git grep read two patterns
    if (query.includes('\n')) throw invalid('query must be one line');
    const mode: MatchMode = { isRegex: q.isRegex ?? false, caseSensitive: q.caseSensitive ?? false, wholeWord: q.wholeWord ?? false };
    const problem = await checkPattern(query, mode);
    if (problem) throw invalid(`Invalid regex pattern: ${problem}`, 'INVALID_REGEX');
    const commit = await this.reader.resolveCommit(dir, rev);
    return { dir, rev, commit, query, mode };
  }

  /** Content search: files with matching lines, each match with its columns and two lines of context. */
  content(p: Principal, repo: string, q: SearchQuery) {
    return this.slotted(p, repo, q, (o) => this.contentIn(o, q));
  }
  private async contentIn({ dir, commit, query, mode }: Opened, q: SearchQuery) {
    const maxResults = q.maxResults || 50;
    const offset = q.offset ?? 0;
    const empty = { totalFiles: 0, totalMatches: 0, hasMore: false, offset, files: [] };
    if (!commit) return empty;
    const args = ['grep', '-I', '-n', '-z', '--no-color', '--max-count=1000', ...grepFlags(mode), '-e', query, commit, '--', ...pathspec(q.pathPattern, false), ...pathspec(q.excludePattern, true)];
    const r = await this.reader.run(dir, args, [commit], undefined, 32 << 20, TIMEOUT_MS);
    if (r.code !== 0 && r.code !== 1) throw invalid(r.code === null ? 'search took too long' : 'search failed');
    const byFile = new Map<string, number[]>();
    for (const row of r.stdout.toString('utf8').split('\n')) {
      const [name, line] = row.split('\0');
      if (!name || !line) continue;
      const path = name.slice(commit.length + 1);
      if (!byFile.has(path)) byFile.set(path, []);
      byFile.get(path)!.push(Number(line));
    }
    const paths = [...byFile.keys()].sort();
    const totalMatches = [...byFile.values()].reduce((n, l) => n + l.length, 0);
    const page = paths.slice(offset, offset + maxResults);
    const files = [];
    for (const path of page) {
      const blob = await this.reader.object(dir, `${commit}:${path}`);
      if (!blob) continue;
      const lines = blob.content.toString('utf8').split('\n');
      const wanted = byFile.get(path)!;
      const found = await grepLines(wanted.map((n) => (lines[n - 1] ?? '').slice(0, 4000)), query, mode, TIMEOUT_MS);
      files.push({
        path,
        extension: ext(path),
        size: blob.size,
        matches: found.map((m) => {
          const n = wanted[m.index]!;
          return {
            lineNumber: n,
            line: (lines[n - 1] ?? '').slice(0, MAX_LINE),
            startColumn: m.start + 1,
            endColumn: m.start + 1 + m.length,
            contextBefore: lines.slice(Math.max(0, n - 3), n - 1).map((l) => l.slice(0, MAX_LINE)),
            contextAfter: lines.slice(n, n + 2).map((l) => l.slice(0, MAX_LINE)),
          };
        }),
      });
    }
    return { totalFiles: paths.length, totalMatches, hasMore: offset + maxResults < paths.length, offset, files };
  }

  /** File name search. */
  files(p: Principal, repo: string, q: SearchQuery) {
    return this.slotted(p, repo, { ...q, wholeWord: false }, (o) => this.filesIn(o, q));
  }
  private async filesIn({ dir, commit, query, mode }: Opened, q: SearchQuery) {
    const maxResults = q.maxResults || 50;
    if (!commit) return { totalFiles: 0, hasMore: false, files: [] };
    const r = await this.reader.run(dir, ['ls-tree', '-r', '-l', '-z', commit], [commit], undefined, 128 << 20, TIMEOUT_MS);
    const entries = r.stdout
      .toString('utf8')
      .split('\0')
      .filter(Boolean)
      .map((e) => {
        const tab = e.indexOf('\t');
        const meta = e.slice(0, tab).split(/\s+/);
        return { path: e.slice(tab + 1), size: Number(meta[3]) || 0, type: meta[1] };
      })
      .filter((e) => e.type === 'blob');
    const hits = await grepLines(entries.map((e) => e.path), query, mode, TIMEOUT_MS);
    const seen = new Set<number>();
    const matched = hits.filter((h) => !seen.has(h.index) && seen.add(h.index)).map((h) => entries[h.index]!);
    const offset = q.offset ?? 0;
    return { totalFiles: matched.length, hasMore: matched.length > offset + maxResults, files: matched.slice(offset, offset + maxResults).map((e) => ({ path: e.path, extension: ext(e.path), size: e.size })) };
  }

  /** Commit message search. */
  commits(p: Principal, repo: string, q: SearchQuery) {
    return this.slotted(p, repo, { ...q, wholeWord: false }, (o) => this.commitsIn(o, q));
  }
  private async commitsIn({ dir, commit, query, mode }: Opened, q: SearchQuery) {
    const maxResults = q.maxResults || 50;
    if (!commit) return { totalCommits: 0, hasMore: false, commits: [] };
    const flags = [mode.isRegex ? '--extended-regexp' : '--fixed-strings', ...(mode.caseSensitive ? [] : ['--regexp-ignore-case'])];
    const r = await this.reader.run(dir, ['log', '--format=%H%x00%an%x00%ae%x00%aI%x00%s%x00%B%x1e', ...flags, `--grep=${query}`, commit], [commit], undefined, 64 << 20, TIMEOUT_MS);
    if (r.code !== 0) throw invalid(r.code === null ? 'search took too long' : 'search failed');
    const all = r.stdout
      .toString('utf8')
      .split('\x1e')
      .map((x) => x.replace(/^\n/, ''))
      .filter(Boolean)
      .map((x) => {
        const [sha, authorName, authorEmail, timestamp, message, fullMessage] = x.split('\0') as string[];
        return { sha: sha!, message: message!, fullMessage: fullMessage!, authorName: authorName!, authorEmail: authorEmail!, timestamp: timestamp! };
      });
    const offset = q.offset ?? 0;
    return { totalCommits: all.length, hasMore: all.length > offset + maxResults, commits: all.slice(offset, offset + maxResults) };
  }

  /** Diff search: commits whose added or removed lines match, with those lines. */
  diffs(p: Principal, repo: string, q: SearchQuery) {
    return this.slotted(p, repo, q, (o) => this.diffsIn(o, q));
  }
  private async diffsIn({ dir, commit, query, mode }: Opened, q: SearchQuery) {
    const maxResults = q.maxResults || 20;
    const offset = q.offset ?? 0;
    if (!commit) return { totalCommits: 0, hasMore: false, commits: [] };
    // -G wants a regex: a fixed string is escaped for POSIX ERE.
    const re = mode.isRegex ? query : query.replace(/[.[\]{}()*+?^$|\\]/g, '\\$&');
    const args = ['log', '--format=%x1e%H%x00%an%x00%ae%x00%aI%x00%s', '-p', '-U0', '--no-color', '--no-ext-diff', '--no-renames', `-G${re}`, ...(mode.caseSensitive ? [] : ['--regexp-ignore-case']), `--max-count=${offset + maxResults + 1}`, commit, '--', ...pathspec(q.pathPattern, false), ...pathspec(q.excludePattern, true)];
    const r = await this.reader.run(dir, args, [commit], undefined, 64 << 20, TIMEOUT_MS);
    if (r.code !== 0) throw invalid(r.code === null ? 'search took too long' : 'search failed');
    const blocks = r.stdout.toString('utf8').split('\x1e').filter((b) => b.includes('\0'));
    const page = blocks.slice(offset, offset + maxResults);
    const commits = [];
    for (const b of page) {
      const nl = b.indexOf('\n');
      const [sha, authorName, authorEmail, timestamp, message] = b.slice(0, nl).split('\0') as string[];
      const candidates: { path: string; line: string; lineNumber: number; isAddition: boolean }[] = [];
      let path = '';
      let oldLine = 0;
      let newLine = 0;
      for (const line of b.slice(nl + 1).split('\n')) {
        if (line.startsWith('diff --git ')) path = '';
        else if (line.startsWith('+++ ')) path = line === '+++ /dev/null' ? path : line.slice(6);
        else if (line.startsWith('--- ')) path = line === '--- /dev/null' ? '' : line.slice(6);
        else if (line.startsWith('@@')) {
          const m = /^@@ -(\d+)(?:,\d+)? \+(\d+)/.exec(line);
          oldLine = Number(m?.[1] ?? 0);
          newLine = Number(m?.[2] ?? 0);
        } else if (line.startsWith('+')) candidates.push({ path, line: line.slice(1), lineNumber: newLine++, isAddition: true });
        else if (line.startsWith('-')) candidates.push({ path, line: line.slice(1), lineNumber: oldLine++, isAddition: false });
      }
      const hits = await grepLines(candidates.map((c) => c.line.slice(0, 4000)), query, mode, TIMEOUT_MS);
      const files = new Map<string, { path: string; matches: object[] }>();
      for (const h of hits) {
        const c = candidates[h.index]!;
        if (!files.has(c.path)) files.set(c.path, { path: c.path, matches: [] });
        files.get(c.path)!.matches.push({ line: c.line.slice(0, MAX_LINE), lineNumber: c.lineNumber, startColumn: h.start + 1, endColumn: h.start + 1 + h.length, isAddition: c.isAddition });
      }
      commits.push({ sha: sha!, message: message!, authorName: authorName!, authorEmail: authorEmail!, timestamp: timestamp!, files: [...files.values()] });
    }
    return { totalCommits: blocks.length, hasMore: blocks.length > offset + maxResults, commits };
  }
}

