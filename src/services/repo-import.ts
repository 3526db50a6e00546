import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Principal } from '../domain/access.ts';
import { DomainError, invalid } from '../domain/errors.ts';
import { branchNameProblem, isObjectId, isRevision } from '../domain/validate.ts';
import { formatCommit, ZERO_OID } from '../git/objects.ts';
import { writePack } from '../git/pack.ts';
import type { GitReader } from '../git/read.ts';
import { fetchMirror, fetchRefspecs, remoteHeadBranch } from '../git/remote.ts';
import { repoDir } from '../git/repo-path.ts';
import { normaliseRepoPath } from '../git/tree.ts';
import { casRef } from '../git/update-ref.ts';
import type { Commits } from './commits.ts';
import { checkOutboundUrl } from './outbound-url.ts';
import { type CreateRepoInput, type Repos, redact } from './repos.ts';
import type { RepoRow } from './types.ts';

const execFileP = promisify(execFile);

export interface SourceSpec {
  url: string;
  rev?: string | null;
  branch?: string | null;
  depth?: number | null;
  allBranches?: boolean | null;
}

export interface ImportSpec {
  type: 'files' | 'tar' | 'zip' | 'git';
  files?: Record<string, string>;
  url?: string;
  rev?: string | null;
  branch?: string | null;
  dir?: string | null;
  commitMessage: string;
  authorName?: string | null;
  authorEmail?: string | null;
}

export interface ImportOptions {
  allowPrivateUrls: boolean;
  fetchTimeoutMs: number;
  /** largest tar/zip download */
  maxArchiveBytes: number;
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

  async create(p: Principal, input: CreateRepoInput, source: unknown, imp: unknown): Promise<RepoRow> {
    if (source && imp) throw invalid('Source and import are mutually exclusive', 'SOURCE_IMPORT_CONFLICT');
    const src = source ? this.checkSource(source) : undefined;
    const im = imp ? this.checkImport(imp) : undefined;
    const url = src?.url ?? (im?.type !== 'files' ? im?.url : undefined);
    if (url) await checkOutboundUrl(url, this.opts.allowPrivateUrls);
    const row = await this.repos.create(p, input);
    try {
      if (src) await this.fromSource(row, src, input.defaultBranch ?? undefined);
      else if (im) await this.fromImport(p, row, im);
      return (await this.repos.find(row.id)) ?? row;
    } catch (e) {
      await this.repos.removeInternal(row.id);
      if (e instanceof DomainError) throw e;
      const where = url ? ` ${redact(url)}` : '';
      throw invalid(`Could not import from${where}: ${(e as Error).message}`, 'SOURCE_NOT_FOUND');
    }
  }

  private checkSource(v: unknown): SourceSpec {
    const s = v as SourceSpec;
    if (typeof s !== 'object' || s === null || typeof s.url !== 'string') throw invalid('source.url must be a URL', 'INVALID_GIT_REPO_SPEC_ERROR');
    for (const r of [s.rev, s.branch]) if (r !== undefined && r !== null && !isRevision(r)) throw invalid('source.rev is not a valid revision', 'INVALID_REVISION');
    if (s.depth !== undefined && s.depth !== null && (!Number.isInteger(s.depth) || s.depth < 1 || s.depth > 1_000_000)) throw invalid('source.depth must be a positive integer');
    return s;
  }

  private checkImport(v: unknown): ImportSpec {
    const im = v as ImportSpec;
    if (typeof im !== 'object' || im === null || !['files', 'tar', 'zip', 'git'].includes(im.type)) throw invalid('import.type must be files, tar, zip or git');
    if (typeof im.commitMessage !== 'string' || im.commitMessage.trim() === '') throw invalid('import.commitMessage is required');
    if (im.type === 'files') {
      if (typeof im.files !== 'object' || im.files === null || Array.isArray(im.files)) throw invalid('import.files must be a map of paths to contents');
    } else if (typeof im.url !== 'string') throw invalid('import.url must be a URL');
    if (im.dir !== undefined && im.dir !== null && (typeof im.dir !== 'string' || normaliseRepoPath(im.dir) === undefined)) throw invalid('import.dir is not a valid folder path');
    for (const r of [im.rev, im.branch]) if (r !== undefined && r !== null && !isRevision(r)) throw invalid('import.rev is not a valid revision', 'INVALID_REVISION');
    return im;
  }

  private fetchOpts() {
    return { allowFile: this.opts.allowPrivateUrls, timeoutMs: this.opts.fetchTimeoutMs };
  }

  private async fromSource(row: RepoRow, src: SourceSpec, askedDefault: string | undefined): Promise<void> {
    const dir = repoDir(this.dataDir, row.id);
    const depth = src.depth ?? undefined;
    const rev = src.rev ?? src.branch ?? undefined;
    const { head, empty } = await remoteHeadBranch(this.reader.g, src.url, this.fetchOpts());
    if (empty) return; // an empty remote: an empty repository
    if (src.allBranches) {
      await fetchMirror(this.reader.g, dir, src.url, { ...this.fetchOpts(), depth });
      const want = askedDefault ?? (rev && !branchNameProblem(rev) ? rev : head);
      if (want && (await this.reader.heads(dir)).has(`refs/heads/${want}`)) await this.repos.setDefaultBranchInternal(row.id, want);
      else if (head) await this.repos.setDefaultBranchInternal(row.id, head);
      return;
    }
    const fetchRev = rev ?? head;
    if (!fetchRev) throw new Error('the source has no default branch; give source.rev');
    // "The given revision will be used as the new repository's default branch."
    const target = askedDefault ?? (branchNameProblem(fetchRev) || isObjectId(fetchRev) ? row.default_branch : fetchRev);
    await fetchRefspecs(this.reader.g, dir, src.url, [`+${fetchRev}:refs/heads/${target}`], { ...this.fetchOpts(), depth });
    if (target !== row.default_branch) await this.repos.setDefaultBranchInternal(row.id, target);
  }

  private async fromImport(p: Principal, row: RepoRow, im: ImportSpec): Promise<void> {
    const author = im.authorName && im.authorEmail ? { name: im.authorName, email: im.authorEmail } : undefined;
    if (im.type === 'files') {
      const files = Object.entries(im.files!).map(([p2, content]) => ({ path: p2, content }));
      await this.commits.create(p, row.id, { message: im.commitMessage, files, author });
      return;
    }
    if (im.type === 'git') return this.importGitTree(row, im, author);
    const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'palisade-import-'));
    try {
      const archive = path.join(tmp, im.type === 'tar' ? 'a.tar' : 'a.zip');
      await this.download(im.url!, archive);
      const out = path.join(tmp, 'x');
      await fs.mkdir(out);
      if (im.type === 'tar') await execFileP('tar', ['-x', '--no-same-owner', '--no-same-permissions', '-f', archive, '-C', out], { timeout: 120_000 });
      else {
        // A symbolic link in a zip could send a later entry outside the folder: refuse such archives.
        const { stdout } = await execFileP('zipinfo', ['-s', archive], { timeout: 60_000, maxBuffer: 64 << 20 });
        if (stdout.split('\n').some((l) => l.startsWith('l'))) throw invalid('zip archives with symbolic links are not imported');
        await execFileP('unzip', ['-q', '-o', archive, '-d', out], { timeout: 120_000 });
      }
      let root = out;
      if (im.dir) {
        root = path.join(out, normaliseRepoPath(im.dir)!);
        if (!(await fs.stat(root).catch(() => null))?.isDirectory()) throw invalid(`Directory not found in ${im.type}: ${im.dir}`, 'IMPORT_SUBDIR_NOT_FOUND');
      }
      const files: { path: string; content: string; encoding: 'base64' }[] = [];
      const walk = async (d: string, rel: string): Promise<void> => {
        for (const e of await fs.readdir(d, { withFileTypes: true })) {
          const r = rel ? `${rel}/${e.name}` : e.name;
          // Only regular files and folders: a symlink in an archive must not read outside it.
          if (e.isDirectory()) await walk(path.join(d, e.name), r);
          else if (e.isFile()) files.push({ path: r, content: (await fs.readFile(path.join(d, e.name))).toString('base64'), encoding: 'base64' });
        }
      };
      await walk(root, '');
      if (files.length === 0) throw invalid('The archive holds no files');
      await this.commits.create(p, row.id, { message: im.commitMessage, files, author });
    } finally {
      await fs.rm(tmp, { recursive: true, force: true });
    }
  }

  /** Downloads with the SSRF guard, no redirects, a size bound and a time bound. */
  private async download(url: string, file: string): Promise<void> {
    await checkOutboundUrl(url, this.opts.allowPrivateUrls);
    const u = new URL(url);
    if (u.protocol === 'file:') {
      const st = await fs.stat(u.pathname);
      if (st.size > this.opts.maxArchiveBytes) throw invalid('The archive is too large');
      await fs.copyFile(u.pathname, file);
      return;
    }
    const res = await fetch(url, { redirect: 'manual', signal: AbortSignal.timeout(this.opts.fetchTimeoutMs) });
    if (res.status !== 200 || !res.body) throw new Error(`download answered HTTP ${res.status}`);
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
      size += chunk.length;
      if (size > this.opts.maxArchiveBytes) throw invalid('The archive is too large');
      chunks.push(Buffer.from(chunk));
    }
    await fs.writeFile(file, Buffer.concat(chunks));
  }

  /** One commit whose tree is the source's tree at `rev` (or its `dir`), without history. */
  private async importGitTree(row: RepoRow, im: ImportSpec, author: { name: string; email: string } | undefined): Promise<void> {
    const dir = repoDir(this.dataDir, row.id);
    const tmpRef = `refs/heads/palisade-import-tmp`;
    const rev = im.rev ?? im.branch ?? (await remoteHeadBranch(this.reader.g, im.url!, this.fetchOpts())).head;
    if (!rev) throw new Error('the source has no default branch; give import.rev');
    await fetchRefspecs(this.reader.g, dir, im.url!, [`+${rev}:${tmpRef}`], { ...this.fetchOpts(), depth: 1 });
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
