import { CatFilePool, type GitObject } from './cat-file.ts';
import { type CommitInfo, isOid, parseCommit, parseTag, parseTree, type TagInfo, type TreeEntry } from './objects.ts';
import { readRefs } from './refs.ts';
import { type GitEnv, runGit } from './runner.ts';
import { isSafeRev } from './tree.ts';

/**
 * Read access to a repository's objects and refs, through the warm
 * `cat-file --batch` pool where one object is needed and plumbing commands
 * where git walks history. Every revision string is checked by `isSafeRev`
 * before it reaches git; undefined means "not found".
 */
export class GitReader {
  constructor(
    readonly g: GitEnv,
    readonly pool: CatFilePool,
    private readonly timeoutMs = 60_000,
  ) {}

  object(dir: string, name: string): Promise<GitObject | undefined> {
    return this.pool.read(dir, name);
  }

  /** Resolves a revision to a commit id (peeling tags), or undefined. */
  async resolveCommit(dir: string, rev: string): Promise<string | undefined> {
    if (!isSafeRev(rev)) return undefined;
    const o = await this.pool.read(dir, `${rev}^{commit}`);
    return o?.oid;
  }

  async commit(dir: string, rev: string): Promise<CommitInfo | undefined> {
    if (!isSafeRev(rev)) return undefined;
    const o = await this.pool.read(dir, `${rev}^{commit}`);
    return o ? parseCommit(o.oid, o.content) : undefined;
  }

  async tree(dir: string, name: string): Promise<{ oid: string; entries: TreeEntry[] } | undefined> {
    const o = await this.pool.read(dir, name);
    if (!o || o.type !== 'tree') return undefined;
    return { oid: o.oid, entries: parseTree(o.content) };
  }

  async tag(dir: string, oid: string): Promise<TagInfo | undefined> {
    if (!isOid(oid)) return undefined;
    const o = await this.pool.read(dir, oid);
    return o && o.type === 'tag' ? parseTag(o.oid, o.content) : undefined;
  }

  /** Sizes of several objects at once (one batch-check run). */
  async sizes(dir: string, oids: string[]): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    if (oids.length === 0) return out;
    const r = await runGit(this.g, ['--git-dir', dir, 'cat-file', '--batch-check=%(objectname) %(objectsize)'], { timeoutMs: this.timeoutMs, input: `${oids.join('\n')}\n` });
    for (const line of r.stdout.toString('utf8').split('\n')) {
      const [oid, size] = line.split(' ');
      if (oid && size && isOid(oid)) out.set(oid, Number(size));
    }
    return out;
  }

  heads(dir: string): Promise<Map<string, string>> {
    return readRefs(dir, 'refs/heads/');
  }

  tags(dir: string): Promise<Map<string, string>> {
    return readRefs(dir, 'refs/tags/');
  }

  /** Runs a read-only git command in the repository with the runner's guarantees. */
  run(dir: string, args: string[], userArgs: string[] = [], input?: string, maxOutput?: number, timeoutMs = this.timeoutMs) {
    return runGit(this.g, ['--git-dir', dir, ...args], { timeoutMs, input, maxOutput }, userArgs);
  }
}

export { CatFilePool };
