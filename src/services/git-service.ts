import type { Readable, Writable } from 'node:stream';
import type { Access, RefDecision, RefUpdate } from '../access/index.ts';
import type { Principal } from '../domain/access.ts';
import { isAccessDenied } from '../domain/errors.ts';
import { refNameProblem } from '../domain/validate.ts';
import { fastForwardOnly, installHooks, readHookReport } from '../git/hooks.ts';
import { drain, type PushHead, prefixed, readPushHead, refusalReport } from '../git/push-commands.ts';
import { repoDirs, sweepQuarantine } from '../git/quarantine.ts';
import type { AutoGc } from './auto-gc.ts';
import type { CatFilePool } from '../git/cat-file.ts';
import { lsRefs, parseLsRefsRequest, readLsRefsHead, readUploadConfig, requestStream } from '../git/ls-refs.ts';
import { ReceiveAdvertisement } from '../git/receive-advertisement.ts';
import { UploadV0Advertisement } from '../git/upload-v0-advertisement.ts';
import { readRefsNamed } from '../git/refs.ts';
import { repoDir } from '../git/repo-path.ts';
import type { GitEnv } from '../git/runner.ts';
import { advertiseRefs, type GitCommandName, receivePack, type ServeOptions, serveStateful, serviceRpc } from '../git/smart-http.ts';
import { isV2, V2Advertisement } from '../git/v2-advertisement.ts';
import type { RepoRow } from '../store/index.ts';
import type { RefChange, RefEvents } from './events.ts';
import type { ProcessSlots } from './process-slots.ts';
import type { Repos } from './repos.ts';

export interface GitServiceOptions {
  git: GitEnv;
  dataDir: string;
  /** longest run of one git child */
  timeoutMs: number;
  /** kill a child whose input brings no byte for this long (0: never) */
  idleTimeoutMs: number;
  /**
   * a quarantine folder changed within this long is never swept: on a data folder several nodes
   * share it may be another node's push in flight (0: this node is alone with the folder)
   */
  quarantineGraceMs: number;
  /** `-c` settings and environment for upload-pack (the pack cache's hook), when it is on */
  uploadPackRun?: () => { config: string[]; env: Record<string, string> } | undefined;
  /** the long-lived cat-file readers: with them, a v2 `ls-refs` is answered without a process */
  pool?: CatFilePool;
  /**
   * `gc --auto` after a push, once it is answered: receive-pack runs with `receive.autogc=false`
   * (its own gc would hold the pusher's response until git started and counted); without one,
   * receive-pack runs gc itself as git does
   */
  autoGc?: AutoGc;
}

/** The most bytes a push's command list may take (100k refs of a mirror push fit). */
const MAX_HEAD_BYTES = 32 << 20;
/** The most of a refused push's pack read and thrown away so that the client reads the refusal. */
const MAX_DRAIN_BYTES = 64 << 20;

/** How a git child ended, for the transport to log and to decide whether to keep the connection. */
export interface GitRunResult {
  code: number | null;
  stderr: string;
  /** killed because the client's input went quiet: the transport should drop the connection */
  idle: boolean;
  /** a push refused by the decision point before receive-pack started: why (git was told in its protocol) */
  refused?: string;
}

/**
 * One authorized git call holding a process slot: run it once with
 * `advertise` or `rpc`, which release the slot when the child ends; `close`
 * releases it if the call never runs. Obtained from `GitService.open`.
 */
export interface GitSession {
  readonly repoId: string;
  readonly service: GitCommandName;
  /** Streams the ref advertisement (`--advertise-refs`) into `output`. */
  advertise(output: Writable): Promise<GitRunResult>;
  /**
   * Runs one stateless-RPC round: `input` (the request body, already decoded)
   * into git, git's answer into `output`. After a push, the refs it moved are
   * reported to the ref events.
   */
  rpc(input: Readable, output: Writable): Promise<GitRunResult>;
  /**
   * Runs the whole conversation at once (a stateful transport, SSH): `input` from the client,
   * git's answer into `output`, its messages into `errOutput`. After a push, the refs it moved
   * are reported as for `rpc`.
   */
  serve(input: Readable, output: Writable, errOutput: Writable): Promise<GitRunResult>;
  close(): void;
}

export interface OpenOptions {
  /** the validated `Git-Protocol` value, passed to git as GIT_PROTOCOL */
  protocol?: string;
  /** fires when the client went away: stops waiting for a slot, kills the child */
  signal: AbortSignal;
  /**
   * What the session will run, when the transport knows (smart HTTP). An `advertise` (v2
   * capabilities, upload-pack's v0 refs, receive-pack's refs) is written from memory and the
   * refs on disk when it can be, with no process and no slot; a v2 upload-pack `rpc` takes a
   * process slot only when git has to run (an ls-refs answered from disk needs none), so it
   * may fail with `unavailable` from `rpc` itself, before anything was written to its output.
   * Undefined (SSH): git runs, and a slot is taken at once.
   */
  call?: 'advertise' | 'rpc';
}

const ZERO = /^0+$/;

/** A push refused whole: the ref that was refused (if one was) and why. */
interface PushRefusal {
  ref?: string;
  reason: string;
}

/**
 * The transport-independent git service that smart HTTP and SSH call:
 * resolve the repository by id or full name, decide (read for upload-pack,
 * write for receive-pack) before any process starts, take a process slot,
 * run git with streams in and out, and report the refs a push moved. A push
 * is decided again per ref from its command list before receive-pack starts:
 * a refused ref refuses the whole push, answered in git's protocol, with
 * nothing written. The transports only move bytes and map the errors it
 * throws: `AccessDenied` (unauthenticated, notFound for hidden or missing,
 * forbidden for a visible repository the caller may not push to) and
 * `unavailable` (no process slot in time).
 */
export class GitService {
  /** receive-pack runs in this process, per repository: a quarantine is only swept when none runs */
  private readonly pushing = new Map<string, number>();
  private readonly hooksDir: string;
  private readonly v2: V2Advertisement;
  private readonly receiveAdvertisement: ReceiveAdvertisement;
  private readonly v0: UploadV0Advertisement;

  constructor(
    private readonly repos: Repos,
    private readonly slots: ProcessSlots,
    private readonly events: RefEvents,
    private readonly o: GitServiceOptions,
    private readonly access: Access,
  ) {
    this.hooksDir = installHooks(o.git);
    this.v2 = new V2Advertisement(o.git);
    this.receiveAdvertisement = new ReceiveAdvertisement(o.git);
    this.v0 = new UploadV0Advertisement(o.git);
  }

  async open(p: Principal, repoRef: string, service: GitCommandName, opts: OpenOptions): Promise<GitSession> {
    // Decide before any process starts (AccessDenied: missing and hidden look the same).
    const repo = await this.repos.getGit(p, repoRef, service === 'git-receive-pack' ? 'repo:write' : 'repo:read');
    const dir = repoDir(this.o.dataDir, repo.id);
    const v2 = service === 'git-upload-pack' && isV2(opts.protocol);
    // the texts computed once, and which git they were compared with (SSH, no call: git runs)
    if (opts.call) await this.v2.ready();
    if (v2 && opts.call === 'advertise') {
      // Decided above; the answer is static text: no process, no slot.
      const bytes = this.v2.get(readUploadConfig(dir));
      if (bytes) return this.fromMemory(repo.id, service, bytes);
    }
    // The ref listings written here were compared with git 2.37-2.39's; another git answers itself.
    const tested = this.v2.testedGit;
    if (tested && service === 'git-upload-pack' && opts.call === 'advertise' && opts.protocol === undefined && this.o.pool) {
      // A v0 client's first request: the refs from disk, peeled through the cat-file readers.
      await this.v0.ready();
      const bytes = await this.v0.get(dir, readUploadConfig(dir), this.o.pool);
      if (bytes) return this.fromMemory(repo.id, service, bytes);
    }
    if (tested && service === 'git-receive-pack' && opts.call === 'advertise' && opts.protocol === undefined) {
      // A push's first request (decided above, write access): the refs from disk, no process.
      await this.receiveAdvertisement.ready();
      const bytes = this.receiveAdvertisement.get(dir);
      if (bytes) return this.fromMemory(repo.id, service, bytes);
    }
    // A v2 upload-pack request takes its slot once it is known that git must run.
    const lazy = v2 && opts.call === 'rpc' && !!this.o.pool && tested;
    // Only an authorized caller may wait for, or hold, a process slot.
    const slot = lazy ? undefined : await this.slots.acquire(p, opts.signal);
    const extra = service === 'git-upload-pack' ? this.o.uploadPackRun?.() : undefined;
    const serve: ServeOptions = { git: this.o.git, dir, service, protocol: opts.protocol, timeoutMs: this.o.timeoutMs, signal: opts.signal, idleTimeoutMs: this.o.idleTimeoutMs, config: extra?.config, env: extra?.env };
    let used = false;
    const once = (call: 'advertise' | 'rpc' | 'serve') => {
      if (used) throw new Error('a git session runs once');
      if (lazy && call !== 'rpc') throw new Error('this session was opened for rpc');
      used = true;
    };
    return {
      repoId: repo.id,
      service,
      advertise: async (output) => {
        once('advertise');
        try {
          return await advertiseRefs(serve, output);
        } finally {
          slot?.release();
        }
      },
      rpc: async (input, output) => {
        once('rpc');
        if (service === 'git-upload-archive') throw new Error('git-upload-archive runs only statefully');
        try {
          if (service === 'git-receive-pack') return await this.push(p, repo, serve, input, output);
          if (lazy) return await this.uploadV2(p, serve, input, output);
          return await serviceRpc(serve, input, output);
        } finally {
          slot?.release();
        }
      },
      serve: async (input, output, errOutput) => {
        once('serve');
        try {
          if (service !== 'git-receive-pack') return await serveStateful(serve, input, output, errOutput);
          // A stateful push is an advertisement, then a request decided as smart HTTP's is.
          const adv = await advertiseRefs(serve, output);
          if (adv.code !== 0) return adv;
          return await this.push(p, repo, serve, input, output, errOutput);
        } finally {
          slot?.release();
        }
      },
      close: () => slot?.release(),
    };
  }

  /** A session answered from memory: `advertise` writes `bytes`, nothing else runs. */
  private fromMemory(repoId: string, service: GitCommandName, bytes: Buffer): GitSession {
    let used = false;
    return {
      repoId,
      service,
      advertise: async (output) => {
        if (used) throw new Error('a git session runs once');
        used = true;
        output.write(bytes);
        return { code: 0, stderr: '', idle: false };
      },
      rpc: () => Promise.reject(new Error('this session only advertises')),
      serve: () => Promise.reject(new Error('this session only advertises')),
      close: () => undefined,
    };
  }

  /**
   * One protocol v2 upload-pack request: an `ls-refs` this code parses strictly is answered
   * from the refs on disk (the same bytes git sends, see git/ls-refs.ts); anything else (a
   * fetch, an ls-refs it is not sure of) goes to git whole, the bytes read so far first, once
   * a process slot is free (`unavailable` otherwise, before any output).
   */
  private async uploadV2(p: Principal, serve: ServeOptions, input: Readable, output: Writable): Promise<GitRunResult> {
    const head = await readLsRefsHead(input, { idleMs: this.o.idleTimeoutMs, signal: serve.signal });
    if (head.status === 'aborted') return { code: null, stderr: '', idle: !!head.idle };
    if (head.status === 'complete') {
      const args = parseLsRefsRequest(head.buffered);
      const cfg = args && readUploadConfig(serve.dir);
      const bytes = args && cfg ? await lsRefs(serve.dir, cfg, this.o.pool!, args) : undefined;
      if (bytes) {
        output.write(bytes);
        return { code: 0, stderr: '', idle: false };
      }
    }
    const slot = await this.slots.acquire(p, serve.signal);
    try {
      return await serviceRpc(serve, requestStream(head, input), output);
    } finally {
      slot.release();
    }
  }

  /**
   * One push: read its command list (nothing reaches git yet), decide every ref, then run
   * receive-pack on the whole request, or refuse it whole in git's protocol (report-status
   * `ng` for every ref, the reason on side-band 2; over SSH also an `ERROR:` line on stderr
   * and status 1), without starting receive-pack. Refs allowed only as fast-forwards are
   * checked by the pre-receive hook once the objects are there. Then the refs that moved are
   * reported to the ref events.
   */
  private async push(p: Principal, repo: RepoRow, serve: ServeOptions, input: Readable, output: Writable, errOutput?: Writable): Promise<GitRunResult> {
    // The input may fail at any time (a size limit, the client gone), also while the decision
    // awaits the database and nothing else listens: noted here, so it never goes unhandled.
    let failed = false;
    input.on('error', () => {
      failed = true;
    });
    const head = await readPushHead(input, { maxBytes: MAX_HEAD_BYTES, idleMs: this.o.idleTimeoutMs, signal: serve.signal });
    if (head.status === 'aborted') return { code: null, stderr: '', idle: !!head.idle };
    // the client closed without asking anything
    if (head.status === 'ended' && head.buffered.length === 0) return { code: 0, stderr: '', idle: false };
    const decided = await this.decidePush(p, repo, head);
    if (!Array.isArray(decided)) {
      const message = decided.ref ? `${decided.ref}: ${decided.reason}` : decided.reason;
      output.write(refusalReport(head, (ref) => (ref === decided.ref ? decided.reason : 'push refused: another ref of it is not allowed'), `palisade: push refused: ${message}`));
      errOutput?.write(`ERROR: push refused: ${message}\n`);
      await drain(input, MAX_DRAIN_BYTES, Math.min(this.o.idleTimeoutMs || 5000, 5000));
      return { code: 1, stderr: message, idle: false, refused: message };
    }
    if (failed || input.destroyed) return { code: null, stderr: '', idle: false };
    const ff = decided.filter((d) => d.fastForwardOnly).map((d) => ({ ref: d.ref, reason: d.fastForwardReason ?? 'fast-forward only' }));
    const hook = ff.length ? fastForwardOnly(this.o.git, this.hooksDir, ff) : undefined;
    const config = [...(serve.config ?? []), ...(this.o.autoGc ? ['receive.autogc=false'] : []), ...(hook?.config ?? [])];
    const run: ServeOptions = { ...serve, config, env: hook ? { ...serve.env, ...hook.env } : serve.env };
    this.pushing.set(repo.id, (this.pushing.get(repo.id) ?? 0) + 1);
    let result: GitRunResult | undefined;
    try {
      result = await receivePack(run, prefixed(head.buffered, input), output, errOutput);
    } finally {
      const left = (this.pushing.get(repo.id) ?? 1) - 1;
      if (left === 0) this.pushing.delete(repo.id);
      else this.pushing.set(repo.id, left);
      // A push killed (client gone, limits) or failed may leave its quarantine behind.
      if (left === 0 && (result?.code !== 0 || serve.signal.aborted)) void sweepQuarantine(serve.dir, () => this.pushing.has(repo.id), this.o.quarantineGraceMs).catch(() => undefined);
      // Refs the hook found forced: refused after the decision, recorded as the decision's are.
      if (hook) for (const r of readHookReport(hook.report)) await this.access.recordRefRefused(p, repo, r.ref, r.reason);
    }
    if (result.code === 0) {
      // Of the refs the client asked to move, those now at their new value moved.
      // Only the refs named, each read once (packed-refs at most once): no snapshot of all refs.
      const changes: RefChange[] = [];
      const moved = head.commands.filter((c) => c.oldOid !== c.newOid);
      const values = readRefsNamed(serve.dir, moved.map((c) => c.ref));
      for (const c of moved) {
        const deleted = ZERO.test(c.newOid);
        const now = values.get(c.ref);
        if (deleted ? now === undefined : now === c.newOid) changes.push({ ref: c.ref, before: ZERO.test(c.oldOid) ? null : c.oldOid, after: deleted ? null : c.newOid });
      }
      if (changes.length) this.events.refsChanged(repo.id, changes);
      this.o.autoGc?.request(repo.id, serve.dir);
    }
    return result;
  }

  /**
   * Decides every command of a push before anything reaches git: the decisions, or why the
   * whole push is refused. A head this service cannot read is refused: a ref that was not
   * decided must not reach receive-pack.
   */
  private async decidePush(p: Principal, repo: RepoRow, head: PushHead): Promise<RefDecision[] | PushRefusal> {
    if (head.status === 'malformed') return { reason: `malformed push request (${head.problem ?? 'unreadable command list'})` };
    if (head.status === 'ended') return { reason: 'the push request ended before its command list did' };
    const updates: RefUpdate[] = [];
    for (const c of head.commands) {
      const problem = refNameProblem(c.ref);
      if (problem) return { ref: c.ref, reason: problem };
      if (c.oldOid === c.newOid) continue;
      updates.push({ ref: c.ref, op: ZERO.test(c.oldOid) ? 'create' : ZERO.test(c.newOid) ? 'delete' : 'update' });
    }
    if (!updates.length) return [];
    try {
      return await this.access.requireRefs(p, repo, updates);
    } catch (e) {
      // requireRefs names the refused ref as the subject and says `<ref>: <reason>`
      if (isAccessDenied(e)) return e.message.startsWith(`${e.subject}: `) ? { ref: e.subject, reason: e.message.slice(e.subject.length + 2) } : { reason: e.message };
      throw e;
    }
  }

  /**
   * Removes the quarantine folders that pushes killed with the server left in
   * every repository (run at start, in the background). Returns the count.
   */
  async sweepAll(shouldStop: () => boolean = () => false): Promise<number> {
    let removed = 0;
    for await (const dir of repoDirs(this.o.dataDir)) {
      if (shouldStop()) break;
      const id = dir.slice(dir.lastIndexOf('/') + 1, -'.git'.length);
      removed += await sweepQuarantine(dir, () => this.pushing.has(id), this.o.quarantineGraceMs);
    }
    return removed;
  }
}
