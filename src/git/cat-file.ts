import type { ChildProcess } from 'node:child_process';
import { type GitEnv, spawnGit } from './runner.ts';

export interface GitObject {
  oid: string;
  type: string;
  size: number;
  content: Buffer;
}

interface Pending {
  name: string;
  resolve: (o: GitObject | undefined) => void;
  reject: (e: Error) => void;
}

/**
 * One long-lived `git cat-file --batch` for a repository: requests are
 * written to its stdin and answered in order, so reading an object costs a
 * pipe round trip, not a process start.
 */
class BatchReader {
  private readonly child: ChildProcess;
  private readonly queue: Pending[] = [];
  private buf: Buffer = Buffer.alloc(0);
  dead = false;
  lastUsed = Date.now();

  constructor(g: GitEnv, dir: string) {
    this.child = spawnGit(g, ['--git-dir', dir, 'cat-file', '--batch'], { timeoutMs: 24 * 3600 * 1000 });
    this.child.stdout!.on('data', (d: Buffer) => this.onData(d));
    this.child.stderr!.resume();
    this.child.stdin!.on('error', () => undefined);
    const fail = () => {
      this.dead = true;
      for (const p of this.queue.splice(0)) p.reject(new Error('git cat-file exited'));
    };
    this.child.on('close', fail);
    this.child.on('error', fail);
  }

  private onData(d: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
    for (;;) {
      const p = this.queue[0];
      if (!p) return;
      const nl = this.buf.indexOf(0x0a);
      if (nl < 0) return;
      const header = this.buf.toString('utf8', 0, nl);
      if (header.endsWith(' missing') || header.endsWith(' ambiguous')) {
        this.buf = this.buf.subarray(nl + 1);
        this.queue.shift();
        p.resolve(undefined);
        continue;
      }
      const [oid, type, sizeStr] = header.split(' ');
      const size = Number(sizeStr);
      if (this.buf.length < nl + 1 + size + 1) return;
      const content = Buffer.from(this.buf.subarray(nl + 1, nl + 1 + size));
      this.buf = this.buf.subarray(nl + 1 + size + 1);
      this.queue.shift();
      p.resolve({ oid: oid!, type: type!, size, content });
    }
  }

  read(name: string): Promise<GitObject | undefined> {
    this.lastUsed = Date.now();
    if (/[\n\r\0]/.test(name)) return Promise.resolve(undefined);
    return new Promise((resolve, reject) => {
      if (this.dead) return reject(new Error('git cat-file exited'));
      this.queue.push({ name, resolve, reject });
      this.child.stdin!.write(`${name}\n`);
    });
  }

  close(): void {
    this.dead = true;
    this.child.stdin!.end();
  }
}

/**
 * Readers per repository, kept warm and closed after a minute unused or when
 * more than `max` are open (least recently used first).
 */
export class CatFilePool {
  private readonly readers = new Map<string, BatchReader>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly g: GitEnv,
    private readonly max = 32,
    private readonly idleMs = 60_000,
  ) {
    this.timer = setInterval(() => this.sweep(), 10_000);
    this.timer.unref();
  }

  private sweep(): void {
    const now = Date.now();
    for (const [dir, r] of this.readers) if (r.dead || now - r.lastUsed > this.idleMs) this.drop(dir);
  }

  private drop(dir: string): void {
    this.readers.get(dir)?.close();
    this.readers.delete(dir);
  }

  /** Reads an object by any name cat-file accepts (`oid`, `rev:path`, `rev^{tree}`); undefined when missing. */
  async read(dir: string, name: string): Promise<GitObject | undefined> {
    let r = this.readers.get(dir);
    if (!r || r.dead) {
      if (this.readers.size >= this.max) {
        const oldest = [...this.readers.entries()].sort((a, b) => a[1].lastUsed - b[1].lastUsed)[0];
        if (oldest) this.drop(oldest[0]);
      }
      r = new BatchReader(this.g, dir);
      this.readers.set(dir, r);
    }
    // refresh LRU order
    this.readers.delete(dir);
    this.readers.set(dir, r);
    return r.read(name);
  }

  /** Closes the reader of one repository (it was deleted) or all of them (shutdown). */
  close(dir?: string): void {
    if (dir) return this.drop(dir);
    clearInterval(this.timer);
    for (const d of [...this.readers.keys()]) this.drop(d);
  }
}
