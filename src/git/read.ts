import { existsSync } from 'node:fs';
import { CatFilePool, type GitObject } from './cat-file.ts';
import { isObjectId, isRevision } from '../domain/validate.ts';
import { type CommitInfo, parseCommit, parseTag, parseTree, type TagInfo, type TreeEntry } from './objects.ts';
import { readRefs } from './refs.ts';
import { type GitEnv, runGit } from './runner.ts';

/**
 * Read access to a repository's objects and refs, through the warm
 * `cat-file --batch` pool where one object is needed and plumbing commands
 * where git walks history. Every revision string is checked by `isRevision`
 * before it reaches git; undefined means "not found".
 */
export class GitReader {
  /** Parsed trees and commits by id: objects never change, so this cache needs no invalidation. */
  private readonly trees = new Map<string, TreeEntry[]>();
  private readonly commits = new Map<string, CommitInfo>();

  private static remember<V>(m: Map<string, V>, k: string, v: V): void {
    if (m.size >= 20_000) m.delete(m.keys().next().value as string);
    m.set(k, v);
  }

  /** Objects this process wrote, per repository folder: present without asking the disk. */
  private readonly present = new Map<string, Set<string>>();

  /** Notes that `dir` holds `oid`, after the write that put it there succeeded. */
  markPresent(dir: string, oid: string): void {
    let set = this.present.get(dir);
    if (!set) {
      if (this.present.size > 1000) this.present.clear();
      set = new Set();
      this.present.set(dir, set);
    }
    if (set.size > 50_000) set.clear();
    set.add(oid);
  }

  /** Tells the cache about a tree this process just wrote. */
  rememberTree(oid: string, entries: TreeEntry[]): void {
    GitReader.remember(this.trees, oid, entries);
  }

  /** Tells the cache about a commit this process just wrote. */
  rememberCommit(c: CommitInfo): void {
    GitReader.remember(this.commits, c.sha, c);
  }

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
    if (!isRevision(rev)) return undefined;
    const o = await this.pool.read(dir, `${rev}^{commit}`);
    return o?.oid;
  }

  async commit(dir: string, rev: string): Promise<CommitInfo | undefined> {
    if (!isRevision(rev)) return undefined;
    // The cache is keyed by id and shared by repositories: only an object that this
    // repository really has may be answered from it, so ids are checked on disk first.
    const o = await this.pool.read(dir, `${rev}^{commit}`);
    if (!o) return undefined;
    const c = parseCommit(o.oid, o.content);
    GitReader.remember(this.commits, c.sha, c);
    return c;
  }

  /** A commit's tree id, from the cache when this repository has the commit. */
  async commitTree(dir: string, oid: string): Promise<string | undefined> {
    const hit = this.commits.get(oid);
    if (hit && (await this.has(dir, oid))) return hit.tree;
    return (await this.commit(dir, oid))?.tree;
  }

  /** True when the repository holds the object (a loose object file, else a cat-file probe). */
  async has(dir: string, oid: string): Promise<boolean> {
    if (!isObjectId(oid)) return false;
    if (this.present.get(dir)?.has(oid)) return true;
    // one synchronous stat: cheaper than a thread-pool round trip for a file that is almost always there
    if (existsSync(`${dir}/objects/${oid.slice(0, 2)}/${oid.slice(2)}`)) return true;
    return !!(await this.pool.read(dir, oid));
  }

  async tree(dir: string, name: string): Promise<{ oid: string; entries: TreeEntry[] } | undefined> {
    if (isObjectId(name)) {
      const hit = this.trees.get(name);
      if (hit && (await this.has(dir, name))) return { oid: name, entries: hit };
    }
    const o = await this.pool.read(dir, name);
    if (!o || o.type !== 'tree') return undefined;
    const entries = parseTree(o.content);
    GitReader.remember(this.trees, o.oid, entries);
    return { oid: o.oid, entries };
  }

  async tag(dir: string, oid: string): Promise<TagInfo | undefined> {
    if (!isObjectId(oid)) return undefined;
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
      if (oid && size && isObjectId(oid)) out.set(oid, Number(size));
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
