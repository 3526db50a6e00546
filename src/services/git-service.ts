import type { Readable, Writable } from 'node:stream';
import type { Principal } from '../domain/access.ts';
import { PushCommandReader } from '../git/push-commands.ts';
import { repoDirs, sweepQuarantine } from '../git/quarantine.ts';
import { readRef } from '../git/refs.ts';
import { repoDir } from '../git/repo-path.ts';
import type { GitEnv } from '../git/runner.ts';
import { advertiseRefs, type GitCommandName, type ServeOptions, serveStateful, serviceRpc } from '../git/smart-http.ts';
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
}

/** How a git child ended, for the transport to log and to decide whether to keep the connection. */
export interface GitRunResult {
  code: number | null;
  stderr: string;
  /** killed because the client's input went quiet: the transport should drop the connection */
  idle: boolean;
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
}

const ZERO = /^0+$/;

/**
 * The transport-independent git service that smart HTTP (and SSH next) call:
 * resolve the repository by id or full name, decide (read for upload-pack,
 * write for receive-pack) before any process starts, take a process slot,
 * run git with streams in and out, and report the refs a push moved. The
 * transports only move bytes and map the errors it throws: `AccessDenied`
 * (unauthenticated, notFound for hidden or missing, forbidden for a visible
 * repository the caller may not push to) and `unavailable` (no process slot
 * in time).
 */
export class GitService {
  /** receive-pack runs in this process, per repository: a quarantine is only swept when none runs */
  private readonly pushing = new Map<string, number>();

  constructor(
    private readonly repos: Repos,
    private readonly slots: ProcessSlots,
    private readonly events: RefEvents,
    private readonly o: GitServiceOptions,
  ) {}

  async open(p: Principal, repoRef: string, service: GitCommandName, opts: OpenOptions): Promise<GitSession> {
    // Decide before any process starts (AccessDenied: missing and hidden look the same).
    const repo = await this.repos.getGit(p, repoRef, service === 'git-receive-pack' ? 'repo:write' : 'repo:read');
    // Only an authorized caller may wait for, or hold, a process slot.
    const slot = await this.slots.acquire(p, opts.signal);
    const dir = repoDir(this.o.dataDir, repo.id);
    const serve: ServeOptions = { git: this.o.git, dir, service, protocol: opts.protocol, timeoutMs: this.o.timeoutMs, signal: opts.signal, idleTimeoutMs: this.o.idleTimeoutMs };
    let used = false;
    const once = () => {
      if (used) throw new Error('a git session runs once');
      used = true;
    };
    return {
      repoId: repo.id,
      service,
      advertise: async (output) => {
        once();
        try {
          return await advertiseRefs(serve, output);
        } finally {
          slot.release();
        }
      },
      rpc: async (input, output) => {
        once();
        if (service === 'git-upload-archive') throw new Error('git-upload-archive runs only statefully');
        try {
          return service === 'git-receive-pack' ? await this.push(repo.id, serve, input, (i) => serviceRpc(serve, i, output)) : await serviceRpc(serve, input, output);
        } finally {
          slot.release();
        }
      },
      serve: async (input, output, errOutput) => {
        once();
        try {
          return service === 'git-receive-pack' ? await this.push(repo.id, serve, input, (i) => serveStateful(serve, i, output, errOutput)) : await serveStateful(serve, input, output, errOutput);
        } finally {
          slot.release();
        }
      },
      close: () => slot.release(),
    };
  }

  /** Runs a push through `runGit`, reading its commands as they pass, then reports the refs that moved. */
  private async push(repoId: string, serve: ServeOptions, input: Readable, runGit: (input: Readable) => Promise<GitRunResult>): Promise<GitRunResult> {
    const commands = new PushCommandReader();
    input.on('error', (e) => commands.destroy(e));
    input.pipe(commands);
    this.pushing.set(repoId, (this.pushing.get(repoId) ?? 0) + 1);
    let result: GitRunResult | undefined;
    try {
      result = await runGit(commands);
    } finally {
      const left = (this.pushing.get(repoId) ?? 1) - 1;
      if (left === 0) this.pushing.delete(repoId);
      else this.pushing.set(repoId, left);
      // A push killed (client gone, limits) or failed may leave its quarantine behind.
      if (left === 0 && (result?.code !== 0 || serve.signal.aborted)) void sweepQuarantine(serve.dir, () => this.pushing.has(repoId)).catch(() => undefined);
    }
    if (result.code === 0) {
      // Of the refs the client asked to move, those now at their new value moved.
      const changes: RefChange[] = [];
      for (const c of commands.commands) {
        if (c.oldOid === c.newOid) continue;
        const deleted = ZERO.test(c.newOid);
        const now = readRef(serve.dir, c.ref);
        if (deleted ? now === undefined : now === c.newOid) changes.push({ ref: c.ref, before: ZERO.test(c.oldOid) ? null : c.oldOid, after: deleted ? null : c.newOid });
      }
      if (changes.length) this.events.refsChanged(repoId, changes);
    }
    return result;
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
      removed += await sweepQuarantine(dir, () => this.pushing.has(id));
    }
    return removed;
  }
}
