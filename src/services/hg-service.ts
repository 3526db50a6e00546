import crypto from 'node:crypto';
import fs from 'node:fs';
import type { OutgoingHttpHeaders } from 'node:http';
import path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import type { Principal } from '../domain/access.ts';
import { invalid } from '../domain/errors.ts';
import { type HgEnv, killHg, spawnHg } from '../hg/runner.ts';
import type { HgState, HgWebWorker } from '../hg/web.ts';
import type { RefChange, RefEvents } from './events.ts';
import type { ProcessSlots, Slot } from './process-slots.ts';
import type { Repos } from './repos.ts';

/**
 * Mercurial's wire-protocol commands over HTTP (`?cmd=`), and what each needs: everything reads
 * but `unbundle` (push) and `pushkey` (bookmarks, phases). Only these are forwarded; hgweb's web
 * pages, archives and debug commands are not served.
 */
const HG_COMMANDS: Record<string, 'read' | 'write'> = {
  capabilities: 'read',
  heads: 'read',
  known: 'read',
  getbundle: 'read',
  listkeys: 'read',
  lookup: 'read',
  branchmap: 'read',
  batch: 'read',
  between: 'read',
  branches: 'read',
  changegroup: 'read',
  changegroupsubset: 'read',
  clonebundles: 'read',
  clonebundles_manifest: 'read',
  protocaps: 'read',
  stream_out: 'read',
  unbundle: 'write',
  pushkey: 'write',
};

/** The permission a wire command needs, or undefined for anything that is not one Palisade serves. */
export const hgCommandAccess = (cmd: string): 'read' | 'write' | undefined => (Object.hasOwn(HG_COMMANDS, cmd) ? HG_COMMANDS[cmd] : undefined);

export interface HgHttpRequest {
  cmd: string;
  method: string;
  /** `/?cmd=…` and the rest of the query, as sent */
  url: string;
  headers: OutgoingHttpHeaders;
  body: Readable | undefined;
  signal: AbortSignal;
}

/** Which heads and bookmarks a push moved, as ref changes (`refs/heads/<branch or bookmark>`). */
export function hgChanges(before: HgState, after: HgState): RefChange[] {
  const out: RefChange[] = [];
  const branches = new Set([...Object.keys(before.heads), ...Object.keys(after.heads)]);
  for (const b of branches) {
    const was = new Set(before.heads[b] ?? []);
    for (const head of after.heads[b] ?? []) if (!was.has(head)) out.push({ ref: `refs/heads/${b}`, before: before.heads[b]?.[0] ?? null, after: head });
  }
  const marks = new Set([...Object.keys(before.bookmarks), ...Object.keys(after.bookmarks)]);
  for (const m of marks) {
    const a = before.bookmarks[m] ?? null;
    const b = after.bookmarks[m] ?? null;
    if (a !== b) out.push({ ref: `refs/heads/${m}`, before: a, after: b });
  }
  return out;
}

/**
 * Mercurial over HTTP, behind the one decision point: resolve the repository (an hg one),
 * decide (read, or write for `unbundle`/`pushkey`) before anything runs, take a slot of the
 * caller's account in the process pool, hand the request to Mercurial's own hgweb (configured
 * to the same decision), and report the heads and bookmarks a push moved.
 */
export class HgService {
  constructor(
    private readonly repos: Repos,
    private readonly slots: ProcessSlots,
    private readonly events: RefEvents,
    private readonly worker: HgWebWorker,
    private readonly opts: { timeoutMs: number; hg: HgEnv; runDir: string },
  ) {}

  /**
   * Mercurial over SSH (`hg -R <repo> serve --stdio`): one conversation, reads and pushes alike.
   * Read is decided before hg starts; a caller who may not write runs it with hooks that refuse
   * every incoming changegroup and pushkey (bookmarks, phases), so hg itself turns a push away
   * ("abort: … hook exited with status 1") and nothing is written. The heads and bookmarks a
   * writer's push moved are push events.
   */
  /** The hgrc of an SSH session: never interactive; for a caller who may not write, hooks that refuse every push. */
  private sshConfig(canPush: boolean): string {
    const file = path.join(this.opts.runDir, canPush ? 'ssh-write.hgrc' : 'ssh-read.hgrc');
    if (!fs.existsSync(file)) {
      const text = canPush
        ? '[ui]\ninteractive = false\n'
        : '[ui]\ninteractive = false\n[hooks]\n# a reader\'s push is turned away by hg itself, before anything is written\nprechangegroup.palisade = false\nprepushkey.palisade = false\npretxnopen.palisade = false\n';
      fs.mkdirSync(this.opts.runDir, { recursive: true, mode: 0o700 });
      // a private name per writer (nodes on one folder may share a pid), then renamed into place
      const tmp = `${file}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.tmp`;
      fs.writeFileSync(tmp, text, { mode: 0o600 });
      fs.renameSync(tmp, file);
    }
    return file;
  }

  async serveSsh(p: Principal, repoRef: string, io: { input: Readable; output: Writable; errOutput: Writable; signal: AbortSignal }): Promise<{ code: number | null; repoId: string }> {
    const repo = await this.repos.get(p, repoRef, 'repo:read');
    if (repo.type !== 'hg') throw invalid('this is a git repository: use git', 'UNSUPPORTED_REPOSITORY_TYPE');
    const canPush = await this.repos.get(p, repo.id, 'repo:write').then(() => true, () => false);
    const dir = this.repos.folderOf(repo);
    return this.slots.run(
      p,
      async () => {
        const before = canPush ? await this.worker.state(dir) : undefined;
        // hg accepts exactly `hg -R <repo> serve --stdio`: its configuration comes from HGRCPATH
        const hgrc = this.sshConfig(canPush);
        const child = spawnHg(this.opts.hg, ['-R', dir, 'serve', '--stdio'], { timeoutMs: this.opts.timeoutMs, signal: io.signal, exact: true, env: { HGRCPATH: hgrc } }, [dir]);
        io.input.on('error', () => killHg(child));
        io.input.pipe(child.stdin!);
        child.stdin!.on('error', () => undefined);
        child.stdout!.pipe(io.output, { end: false });
        child.stderr!.pipe(io.errOutput, { end: false });
        const code = await new Promise<number | null>((resolve, reject) => {
          child.once('error', reject);
          child.once('close', (c) => resolve(c));
        });
        if (before) {
          const changes = hgChanges(before, await this.worker.state(dir));
          if (changes.length) this.events.refsChanged(repo.id, changes);
        }
        return { code, repoId: repo.id };
      },
      io.signal,
    );
  }

  /** True when the name is an hg repository (any caller): the transport's routing question, nothing more. */
  async isHg(p: Principal, repoRef: string): Promise<boolean> {
    try {
      return (await this.repos.get(p, repoRef, 'repo:read')).type === 'hg';
    } catch {
      return false;
    }
  }

  /**
   * hg sends credentials only after a 401, and its push to a public repository begins with an
   * anonymous POST of the whole bundle, which it must finish sending to read that 401. So such
   * a refused push may be read and thrown away, holding a process slot of the caller's address
   * meanwhile (a bound on how many one address and the server read at once). Any other refused
   * request (another command, a missing, private or git repository) is not read: undefined.
   */
  async slotToDrainRefusedPush(p: Principal, repoRef: string, cmd: string, signal: AbortSignal): Promise<Slot | undefined> {
    if (p.kind !== 'anonymous' || hgCommandAccess(cmd) !== 'write') return undefined;
    if (!(await this.isHg(p, repoRef))) return undefined;
    return this.slots.acquire(p, signal).catch(() => undefined);
  }

  async serveHttp(p: Principal, repoRef: string, r: HgHttpRequest, onHead: (status: number, headers: OutgoingHttpHeaders) => Writable): Promise<{ status: number; repoId: string }> {
    const need = hgCommandAccess(r.cmd);
    if (!need) throw invalid(`unsupported Mercurial command: ${r.cmd.slice(0, 40)}`);
    const repo = await this.repos.get(p, repoRef, need === 'write' ? 'repo:write' : 'repo:read');
    if (repo.type !== 'hg') throw invalid('this is a git repository', 'UNSUPPORTED_REPOSITORY_TYPE');
    // may this caller push here at all? (a read command of a writer runs with push allowed, so
    // that batched pushkeys, checked by hgweb itself, follow the same decision)
    const canPush = need === 'write' || (await this.repos.get(p, repo.id, 'repo:write').then(() => true, () => false));
    const dir = this.repos.folderOf(repo);
    const user = p.kind === 'user' ? p.username : p.kind === 'identity' ? `identity:${p.identityId}` : 'anonymous';
    return this.slots.run(
      p,
      async () => {
        const before = need === 'write' ? await this.worker.state(dir) : undefined;
        const { status } = await this.worker.forward({ repo: dir, push: canPush, user, method: r.method, url: r.url, headers: r.headers, body: r.body, signal: r.signal, timeoutMs: this.opts.timeoutMs }, onHead);
        if (before) {
          const changes = hgChanges(before, await this.worker.state(dir));
          if (changes.length) this.events.refsChanged(repo.id, changes);
        }
        return { status, repoId: repo.id };
      },
      r.signal,
    );
  }
}
