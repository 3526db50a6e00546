import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import type { Principal } from '../domain/access.ts';
import { DomainError, invalid } from '../domain/errors.ts';
import { branchNameProblem, isObjectId, isRevision, isSignaturePart } from '../domain/validate.ts';
import { formatCommit, ZERO_OID } from '../git/objects.ts';
import { writePack } from '../git/pack.ts';
import type { GitReader } from '../git/read.ts';
import { fetchMirror, fetchRefspecs, remoteHeadBranch } from '../git/remote.ts';
import { repoDir } from '../git/repo-path.ts';
import { normaliseRepoPath } from '../git/tree.ts';
import { casRef } from '../git/update-ref.ts';
import { type ArchiveLimits, importTooLarge, readTar, readZip } from './archive.ts';
import { importArchive } from './archive-import.ts';
import type { Commits } from './commits.ts';
import type { Outbound, OutboundTarget } from './outbound.ts';
import type { ProcessSlots } from './process-slots.ts';
import { type CreateRepoInput, fetchFailure, type Repos } from './repos.ts';
import type { RepoRow } from './types.ts';

/** A clone with history, as the route's schema checked it (url at most 4096, depth 1-1,000,000). */
export interface SourceSpec {
  url: string;
  rev?: string | null;
  branch?: string | null;
  depth?: number | null;
  allBranches?: boolean | null;
}

/** What every import has: the message (at most 100,000 characters) and author (at most 200 each) of its one commit. */
interface ImportCommon {
  commitMessage: string;
  authorName?: string | null;
  authorEmail?: string | null;
}
/** Path -> UTF-8 content, 1-2000 of them (the schema bounds the paths and the count). */
export interface FilesImport extends ImportCommon {
  type: 'files';
  files: Record<string, string>;
}
export interface ArchiveImport extends ImportCommon {
  type: 'tar' | 'zip';
  url: string;
  dir?: string | null;
}
export interface GitTreeImport extends ImportCommon {
  type: 'git';
  url: string;
  rev?: string | null;
  branch?: string | null;
  dir?: string | null;
}
/** Content for one first commit, without history, told apart by `type` (as the route's schema is). */
export type ImportSpec = FilesImport | ArchiveImport | GitTreeImport;

export interface ImportOptions {
  /** the one guard for URLs the server fetches */
  outbound: Outbound;
  fetchTimeoutMs: number;
  /** largest tar/zip download (compressed bytes) */
  maxArchiveBytes: number;
  /** what an archive may unpack to: bytes, entries, one entry's bytes, ratio */
  archiveLimits: ArchiveLimits;
  /** the process pool: an import holds one slot of its account's budget while it fetches */
  slots: ProcessSlots;
  /** zip downloads are held in memory (up to maxArchiveBytes): a few at once, one per account */
  zipBuffers: ProcessSlots;
}

/**
 * Creating a repository with content: `source` (clone any git URL, with or
 * without history) or `import` (files, a tar or zip archive, or a git tree
 * without history, as one commit). Every URL passes the SSRF guard; a failure
 * removes the half-made repository and says why.
 */
export class RepoImport {
  constructor(
    private readonly repos: Repos,
    private readonly commits: Commits,
    private readonly reader: GitReader,
    private readonly dataDir: string,
    private readonly opts: ImportOptions,
  ) {}

  /**
   * Creates the repository and fills it. The fetching holds a slot of the caller's account in
   * the process pool, and stops (the half-made repository removed) when `signal` fires: the
   * client went away.
   */
  async create(p: Principal, input: CreateRepoInput, source: SourceSpec | undefined, imp: ImportSpec | undefined, signal?: AbortSignal): Promise<RepoRow> {
    if (source && imp) throw invalid('Source and import are mutually exclusive', 'SOURCE_IMPORT_CONFLICT');
    const src = source ? this.checkSource(source) : undefined;
    const im = imp ? this.checkImport(imp) : undefined;
    const url = src?.url ?? (im && im.type !== 'files' ? im.url : undefined);
    // Checked as the caller before anything is created: file:// only for admins, this
    // server's own repositories only if the caller may read them.
    const target = url ? await this.opts.outbound.target(p, url, im?.type === 'tar' || im?.type === 'zip' ? 'archive' : 'git') : undefined;
    const row = await this.repos.create(p, input);
    try {
      const fill = async () => {
        if (src) await this.fromSource(p, row, src, target!, input.defaultBranch ?? undefined, signal);
        else if (im) await this.fromImport(p, row, im, target, signal);
      };
      // files are written in process; anything fetched runs git or a download: one slot of the pool
      if (im?.type === 'files') await fill();
      else await this.opts.slots.run(p, fill, signal);
      return await this.repos.getGit(p, row.id);
    } catch (e) {
      // the caller's own new repository: it owns it, so it may remove it
      await this.repos.delete(p, row.id);
      if (e instanceof DomainError) throw e;
      // an archive's failures are ours to word: no engine message, path or command line
      if (im?.type === 'tar' || im?.type === 'zip') throw invalid('Could not import the archive', 'SOURCE_NOT_FOUND');
      const where = target ? ` ${target.shown}` : '';
      throw invalid(`Could not import from${where}: ${fetchFailure(e)}`, 'SOURCE_NOT_FOUND');
    }
  }

  /** What the source's values mean: revisions git may be handed (the URL is the guard's). */
  private checkSource(s: SourceSpec): SourceSpec {
    for (const r of [s.rev, s.branch]) if (r !== undefined && r !== null && !isRevision(r)) throw invalid('source.rev is not a valid revision', 'INVALID_REVISION');
    return s;
  }

  /** What the import's values mean: a message, author parts git can write, a folder path, revisions. */
  private checkImport(im: ImportSpec): ImportSpec {
    if (im.commitMessage.trim() === '') throw invalid('import.commitMessage is required');
    for (const [v, what] of [[im.authorName, 'authorName'], [im.authorEmail, 'authorEmail']] as const) {
      if (v !== undefined && v !== null && !isSignaturePart(v)) throw invalid(`import.${what} must be 1-200 characters without <, > or line breaks`);
    }
    if (im.type === 'files') {
      // Commits.create wants at least one file. Not the schema's to refuse: a body with both
      // source and import (whatever its files) is answered SOURCE_IMPORT_CONFLICT above.
      if (Object.keys(im.files).length === 0) throw invalid('import.files must not be empty');
      return im;
    }
    if (im.dir !== undefined && im.dir !== null && normaliseRepoPath(im.dir) === undefined) throw invalid('import.dir is not a valid folder path');
    if (im.type === 'git') for (const r of [im.rev, im.branch]) if (r !== undefined && r !== null && !isRevision(r)) throw invalid('import.rev is not a valid revision', 'INVALID_REVISION');
    return im;
  }

  private fetchOpts(signal?: AbortSignal) {
    return { timeoutMs: this.opts.fetchTimeoutMs, signal };
  }

  private async fromSource(p: Principal, row: RepoRow, src: SourceSpec, target: OutboundTarget, askedDefault: string | undefined, signal?: AbortSignal): Promise<void> {
    const dir = repoDir(this.dataDir, row.id);
    const depth = src.depth ?? undefined;
    const rev = src.rev ?? src.branch ?? undefined;
    const remote = this.opts.outbound.gitRemote(target);
    const { head, empty } = await remoteHeadBranch(this.reader.g, remote, this.fetchOpts(signal));
    if (empty) return; // an empty remote: an empty repository
    if (src.allBranches) {
      await fetchMirror(this.reader.g, dir, remote, { ...this.fetchOpts(signal), depth });
      const want = askedDefault ?? (rev && !branchNameProblem(rev) ? rev : head);
      if (want && (await this.reader.heads(dir)).has(`refs/heads/${want}`)) await this.repos.setDefaultBranch(p, row.id, want);
      else if (head) await this.repos.setDefaultBranch(p, row.id, head);
      return;
    }
    const fetchRev = rev ?? head;
    if (!fetchRev) throw new Error('the source has no default branch; give source.rev');
    // "The given revision will be used as the new repository's default branch."
    const branch = askedDefault ?? (branchNameProblem(fetchRev) || isObjectId(fetchRev) ? row.default_branch : fetchRev);
    await fetchRefspecs(this.reader.g, dir, remote, [`+${fetchRev}:refs/heads/${branch}`], { ...this.fetchOpts(signal), depth });
    if (branch !== row.default_branch) await this.repos.setDefaultBranch(p, row.id, branch);
  }

  private async fromImport(p: Principal, row: RepoRow, im: ImportSpec, target: OutboundTarget | undefined, signal?: AbortSignal): Promise<void> {
    const author = im.authorName && im.authorEmail ? { name: im.authorName, email: im.authorEmail } : undefined;
    if (im.type === 'files') {
      const files = Object.entries(im.files).map(([p2, content]) => ({ path: p2, content }));
      await this.commits.create(p, row.id, { message: im.commitMessage, files, author });
      return;
    }
    if (im.type === 'git') return this.importGitTree(row, im, target!, author, signal);
    const who = author ?? { name: p.kind === 'user' ? p.username : 'Palisade', email: p.kind === 'user' ? `${p.username}@users.palisade.invalid` : 'identity@users.palisade.invalid' };
    const run = async () => {
      const download = limitBytes(await this.openArchive(target!, signal), this.opts.maxArchiveBytes);
      // tar streams from the response into git; zip needs its central directory (at the end), so
      // its compressed bytes are held (bounded by maxArchiveBytes) while entries stream out of them.
      const entries = im.type === 'tar' ? readTar(Readable.from(download), this.opts.archiveLimits) : readZip(await collect(download), this.opts.archiveLimits);
      await importArchive(this.reader.g, repoDir(this.dataDir, row.id), {
        entries,
        subdir: im.dir ? normaliseRepoPath(im.dir)! : '',
        commit: { message: im.commitMessage, author: who, date: new Date() },
        ref: `refs/heads/${row.default_branch}`,
        timeoutMs: this.opts.fetchTimeoutMs,
        signal,
      });
    };
    // a zip's download is held in memory: only a few at once server-wide, one per account
    if (im.type === 'zip') await this.opts.zipBuffers.run(p, run, signal);
    else await run();
  }

  /**
   * Opens a checked archive target as a byte stream: the one place an archive is fetched.
   * http(s) goes through the guard's pinned client (no redirects, the fetch time limit);
   * `file://` (an admin's path outside the data folder, see Outbound) is read as is.
   */
  private async openArchive(target: OutboundTarget, signal?: AbortSignal): Promise<Readable> {
    if (target.kind === 'file') {
      const stream = createReadStream(target.path);
      signal?.addEventListener('abort', () => stream.destroy(new Error('aborted')), { once: true });
      return stream;
    }
    let res;
    try {
      res = await this.opts.outbound.request(target, { method: 'GET', timeoutMs: this.opts.fetchTimeoutMs, signal });
    } catch {
      throw invalid('Could not download the archive', 'SOURCE_NOT_FOUND');
    }
    if (res.statusCode !== 200) {
      await res.body.dump({ limit: 64 * 1024 }).catch(() => undefined);
      throw invalid(`Could not download the archive: the server answered HTTP ${res.statusCode}`, 'SOURCE_NOT_FOUND');
    }
    return res.body;
  }

  /** One commit whose tree is the source's tree at `rev` (or its `dir`), without history. */
  private async importGitTree(row: RepoRow, im: GitTreeImport, target: OutboundTarget, author: { name: string; email: string } | undefined, signal?: AbortSignal): Promise<void> {
    const dir = repoDir(this.dataDir, row.id);
    const tmpRef = `refs/heads/palisade-import-tmp`;
    const remote = this.opts.outbound.gitRemote(target);
    const rev = im.rev ?? im.branch ?? (await remoteHeadBranch(this.reader.g, remote, this.fetchOpts(signal))).head;
    if (!rev) throw new Error('the source has no default branch; give import.rev');
    await fetchRefspecs(this.reader.g, dir, remote, [`+${rev}:${tmpRef}`], { ...this.fetchOpts(signal), depth: 1 });
    try {
      const sub = im.dir ? normaliseRepoPath(im.dir)! : '';
      const tree = await this.reader.object(dir, sub ? `${tmpRef}:${sub}` : `${tmpRef}^{tree}`);
      if (!tree || tree.type !== 'tree') throw invalid(`Directory not found in git: ${im.dir}`, 'IMPORT_SUBDIR_NOT_FOUND');
      const who = author ?? { name: 'Palisade', email: 'import@palisade.invalid' };
      const buf = formatCommit({ tree: tree.oid, parents: [], author: who, committer: who, message: im.commitMessage, date: new Date() });
      const [oid] = writePack(dir, [{ type: 'commit', content: buf }]);
      if (!(await casRef(this.reader.g, dir, `refs/heads/${row.default_branch}`, oid!, ZERO_OID))) throw new Error('the repository changed during the import');
    } finally {
      const tip = (await this.reader.heads(dir)).get(tmpRef);
      if (tip) await casRef(this.reader.g, dir, tmpRef, ZERO_OID, tip);
      await fs.rm(path.join(dir, 'shallow'), { force: true });
    }
  }
}

/** The download's bytes, at most `max` of them; its failures become one fixed sentence. */
async function* limitBytes(src: Readable, max: number): AsyncGenerator<Buffer> {
  let size = 0;
  try {
    for await (const chunk of src as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > max) throw importTooLarge(`The archive is larger than ${max} bytes`);
      yield chunk;
    }
  } catch (e) {
    if (e instanceof DomainError) throw e;
    throw invalid('Could not download the archive', 'SOURCE_NOT_FOUND');
  } finally {
    src.destroy();
  }
}

async function collect(chunks: AsyncIterable<Buffer>): Promise<Buffer[]> {
  const parts: Buffer[] = [];
  for await (const c of chunks) parts.push(c);
  return parts;
}
