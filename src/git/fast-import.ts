import type { ChildProcess } from 'node:child_process';
import { isObjectId } from '../domain/validate.ts';
import { ZERO_OID } from './objects.ts';
import { type GitEnv, killGit, spawnGit } from './runner.ts';

/** The modes a file of an imported tree may have. */
export type FileMode = '100644' | '100755' | '120000';

export interface ImportedFile {
  /** normalised path inside the repository ("a/b.txt"), checked by the caller */
  path: string;
  mode: FileMode;
  /** what `blob()` returned */
  mark: number;
}

export interface ImportCommit {
  message: string;
  /** name and email without `<`, `>` or line breaks (checked by the caller) */
  author: { name: string; email: string };
  date: Date;
}

/** Where fast-import puts the commit; deleted in the same stream, so it is never written. */
const SCRATCH_REF = 'refs/palisade-import/scratch';

/** A path as fast-import reads it: always C-quoted, so spaces and a leading `"` are plain. */
function quotePath(p: string): string {
  return `"${p.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/**
 * One `git fast-import` writing into a repository: blobs streamed in one at a
 * time (never held whole in memory here; git streams blobs above 1 MiB into its
 * pack as well), then one root commit over them. The commit's id is returned;
 * no ref is written (the caller moves its branch with a compare-and-swap).
 * On any failure `abort()` kills git; objects it wrote are garbage in a
 * repository the caller removes.
 */
export class BlobImporter {
  private readonly child: ChildProcess;
  private nextMark = 1;
  private stdout = '';
  private stderr = '';
  private readonly closed: Promise<number | null>;
  private exited = false;

  constructor(g: GitEnv, gitDir: string, opts: { timeoutMs: number; signal?: AbortSignal }) {
    // --done: a stream cut short (we died, or were killed) is an error for git, not a commit.
    // pack.compression=1: as the API's own packs (pack.ts); gc recompresses later, the import is not kept waiting
    this.child = spawnGit(g, ['-c', 'pack.compression=1', '--git-dir', gitDir, 'fast-import', '--quiet', '--done', '--date-format=raw', '--big-file-threshold=1m'], { timeoutMs: opts.timeoutMs, signal: opts.signal });
    this.child.stdout!.on('data', (d: Buffer) => {
      if (this.stdout.length < 4096) this.stdout += d.toString('latin1');
    });
    this.child.stderr!.on('data', (d: Buffer) => {
      if (this.stderr.length < 16384) this.stderr += d.toString('utf8');
    });
    this.child.stdin!.on('error', () => undefined); // EPIPE when git died: reported by the exit below
    this.closed = new Promise((resolve) => {
      this.child.once('error', () => resolve(null));
      this.child.once('close', (code) => resolve(code));
    });
    void this.closed.then(() => {
      this.exited = true;
    });
  }

  /** Writes to git's stdin, waiting while its pipe is full; throws when git is gone. */
  private async write(chunk: Buffer | string): Promise<void> {
    if (this.exited) throw this.failure();
    if (this.child.stdin!.write(chunk)) return;
    await new Promise<void>((resolve, reject) => {
      const done = () => {
        this.child.stdin!.off('drain', done);
        if (this.exited) reject(this.failure());
        else resolve();
      };
      this.child.stdin!.once('drain', done);
      void this.closed.then(done);
    });
  }

  private failure(): Error {
    return new Error(`git fast-import failed: ${this.stderr.trim().slice(0, 500) || 'exited'}`);
  }

  /**
   * Streams one blob of exactly `size` bytes from `body`; returns its mark.
   * Throws when `body` yields more or fewer bytes than `size`.
   */
  async blob(size: number, body: AsyncIterable<Buffer> | Buffer): Promise<number> {
    const mark = this.nextMark++;
    await this.write(`blob\nmark :${mark}\ndata ${size}\n`);
    let seen = 0;
    for await (const chunk of Buffer.isBuffer(body) ? [body] : body) {
      seen += chunk.length;
      if (seen > size) throw new Error('blob longer than announced');
      await this.write(chunk);
    }
    if (seen !== size) throw new Error('blob shorter than announced');
    await this.write('\n');
    return mark;
  }

  /**
   * Writes the root commit of `files` with `c`, ends git and returns the
   * commit id once git has written every object and exited cleanly.
   */
  async commit(files: Iterable<ImportedFile>, c: ImportCommit): Promise<string> {
    const msg = Buffer.from(c.message.endsWith('\n') ? c.message : `${c.message}\n`);
    const who = `${c.author.name} <${c.author.email}> ${Math.floor(c.date.getTime() / 1000)} +0000`;
    const mark = this.nextMark++;
    await this.write(`commit ${SCRATCH_REF}\nmark :${mark}\nauthor ${who}\ncommitter ${who}\ndata ${msg.length}\n`);
    await this.write(msg);
    for (const f of files) await this.write(`M ${f.mode} :${f.mark} ${quotePath(f.path)}\n`);
    // get-mark answers on stdout; then the scratch branch is dropped before git writes refs.
    await this.write(`\nget-mark :${mark}\nreset ${SCRATCH_REF}\nfrom ${ZERO_OID}\n\ndone\n`);
    this.child.stdin!.end();
    const code = await this.closed;
    const oid = this.stdout.trim();
    if (code !== 0 || !isObjectId(oid)) throw this.failure();
    return oid;
  }

  /** Kills git (a failed import); safe to call more than once. */
  abort(): void {
    killGit(this.child);
  }
}
