import { conflict, invalid } from '../domain/errors.ts';
import { HFS_IGNORABLE, isDotGit } from '../domain/validate.ts';
import { BlobImporter, type FileMode, type ImportCommit, type ImportedFile } from '../git/fast-import.ts';
import { ZERO_OID } from '../git/objects.ts';
import type { GitEnv } from '../git/runner.ts';
import { casRef } from '../git/update-ref.ts';
import { type ArchiveEntry, shown } from './archive.ts';

/** `.gitmodules` as a symlink: git refuses to read one, and `git fsck` reports it as an error. */
function isGitmodules(part: string): boolean {
  return /^(?:\.gitmodules|gitmod~\d+)[. ]*$/.test(part.replace(HFS_IGNORABLE, '').toLowerCase());
}

const badPath = (raw: string) => invalid(`Invalid path in the archive: ${shown(raw)}`, 'INVALID_FILE_PATH');

/**
 * An archive entry's name as a path in the repository: leading `./` and `/`
 * removed, empty and `.` parts dropped (`a//b`, `dir/`); `..`, a `.git` part,
 * control characters and backslashes are a 400 naming the entry. "" is the
 * archive's own root folder.
 */
export function entryPath(raw: string): string {
  if (/[\x00-\x1f\x7f\\]/.test(raw)) throw badPath(raw);
  const parts = raw.split('/').filter((s) => s !== '' && s !== '.');
  if (parts.some((s) => s === '..' || isDotGit(s))) throw badPath(raw);
  return parts.join('/');
}

interface Blob {
  mode: FileMode;
  mark: number;
}

export interface ArchiveImportInput {
  /** from `readTar` or `readZip` */
  entries: AsyncIterable<ArchiveEntry>;
  /** keep only what is under this folder of the archive (normalised; "" for everything) */
  subdir: string;
  commit: ImportCommit;
  /** the branch to create, e.g. refs/heads/main; it must not exist yet */
  ref: string;
  timeoutMs: number;
  /** the caller went away: fast-import is killed */
  signal?: AbortSignal;
}

/**
 * Turns an archive's entries into one root commit on `input.ref` of the
 * repository at `gitDir`, writing each kept file as a blob while it streams
 * (git fast-import), never as a file on disk. Symlinks become git symlinks
 * (their target as text, never followed); hard links take the blob of the
 * earlier entry of that name; folders are implicit. The branch is created with
 * a compare-and-swap. Throws DomainErrors (400 naming the entry, IMPORT_SUBDIR_NOT_FOUND,
 * the readers' IMPORT_TOO_LARGE) with no server detail in them.
 */
export async function importArchive(g: GitEnv, gitDir: string, input: ArchiveImportInput): Promise<string> {
  const writer = new BlobImporter(g, gitDir, { timeoutMs: input.timeoutMs, signal: input.signal });
  const sub = input.subdir;
  try {
    /** kept files by path in the repository; a later duplicate replaces an earlier one */
    const files = new Map<string, Blob>();
    /** every file-like entry by archive path, for hard links (null: outside `subdir`, not written) */
    const byName = new Map<string, Blob | null>();
    /** archive paths named as folders by an entry of their own */
    const folders = new Set<string>();
    let subdirSeen = sub === '';
    for await (const e of input.entries) {
      const name = entryPath(e.name);
      if (name === '') {
        if (e.kind !== 'dir') throw badPath(e.name);
        await e.skip();
        continue;
      }
      // Only the archive's own names decide what is under `subdir`: a symlink named like it is a file, not a folder.
      const rel = sub === '' ? name : name.startsWith(`${sub}/`) ? name.slice(sub.length + 1) : undefined;
      if (rel !== undefined || (e.kind === 'dir' && name === sub)) subdirSeen = true;
      if (e.kind === 'dir') {
        folders.add(name);
        await e.skip();
        continue;
      }
      let blob: Blob | null = null;
      if (e.kind === 'hardlink') {
        await e.skip();
        const target = entryPath(e.linkTarget ?? '');
        const earlier = byName.get(target);
        if (earlier === undefined) throw invalid(`The archive's hard link ${shown(e.name)} refers to no earlier file of the archive`, 'INVALID_FILE_PATH');
        if (earlier === null && rel !== undefined) throw invalid(`The archive's hard link ${shown(e.name)} refers to a file outside import.dir`, 'INVALID_FILE_PATH');
        blob = earlier;
      } else if (rel === undefined) {
        await e.skip();
      } else if (e.kind === 'symlink') {
        if (isGitmodules(name.slice(name.lastIndexOf('/') + 1))) throw badPath(e.name);
        const target = e.linkTarget !== undefined ? Buffer.from(e.linkTarget) : await readAll(e);
        if (target.length === 0 || target.includes(0)) throw invalid(`The archive's symbolic link ${shown(e.name)} has an empty or invalid target`, 'INVALID_FILE_PATH');
        if (e.linkTarget !== undefined) await e.skip();
        blob = { mode: '120000', mark: await writer.blob(target.length, target) };
      } else {
        blob = { mode: e.executable ? '100755' : '100644', mark: await writer.blob(e.size, e.body()) };
      }
      byName.set(name, blob);
      if (rel !== undefined) files.set(rel, blob!);
    }
    checkFileFolderClash(byName.keys(), folders);
    if (files.size === 0) {
      if (!subdirSeen) throw invalid(`Directory not found in the archive: ${shown(sub)}`, 'IMPORT_SUBDIR_NOT_FOUND');
      throw invalid('The archive holds no files');
    }
    const list: ImportedFile[] = [];
    for (const [path, b] of files) list.push({ path, mode: b.mode, mark: b.mark });
    const oid = await writer.commit(list, input.commit);
    if (!(await casRef(g, gitDir, input.ref, oid, ZERO_OID))) throw conflict('The repository changed during the import');
    return oid;
  } finally {
    writer.abort();
  }
}

/** The whole body of a small entry (a zip symlink's target, at most MAX_NAME_BYTES). */
async function readAll(e: ArchiveEntry): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of e.body()) parts.push(c);
  return Buffer.concat(parts);
}

/** A path that is a file (or link) and also a folder of another entry is contradictory: 400. */
function checkFileFolderClash(nonFolders: Iterable<string>, folders: Set<string>): void {
  const files = new Set(nonFolders);
  const clash = (p: string) => invalid(`Path is both a file and a folder in the archive: ${shown(p)}`, 'INVALID_FILE_PATH');
  for (const f of folders) if (files.has(f)) throw clash(f);
  for (const p of [...files, ...folders]) {
    for (let i = p.indexOf('/'); i >= 0; i = p.indexOf('/', i + 1)) if (files.has(p.slice(0, i))) throw clash(p.slice(0, i));
  }
}
