import type { Readable, Writable } from 'node:stream';
import { type GitEnv, killGit, spawnGit } from './runner.ts';

/** The two git services of smart HTTP, by the names git's protocols use for them. */
export type GitServiceName = 'git-upload-pack' | 'git-receive-pack';

export const isGitService = (s: unknown): s is GitServiceName => s === 'git-upload-pack' || s === 'git-receive-pack';

/** What a stateful transport (SSH) may run: the two services, and `git-upload-archive`. */
export type GitCommandName = GitServiceName | 'git-upload-archive';

export const isGitCommand = (s: unknown): s is GitCommandName => isGitService(s) || s === 'git-upload-archive';

const PROTOCOL_RE = /^[A-Za-z0-9-]+=[A-Za-z0-9.-]+(:[A-Za-z0-9-]+=[A-Za-z0-9.-]+)*$/;

/** Returns the `Git-Protocol` header value if it is a plain key=value list, else undefined (dropped). */
export function safeGitProtocol(v: unknown): string | undefined {
  return typeof v === 'string' && v.length <= 256 && PROTOCOL_RE.test(v) ? v : undefined;
}

/** pkt-line encoding of one line. */
export function pktLine(s: string): Buffer {
  const body = Buffer.from(s, 'utf8');
  return Buffer.concat([Buffer.from((body.length + 4).toString(16).padStart(4, '0')), body]);
}

export interface ServeOptions {
  git: GitEnv;
  dir: string;
  service: GitCommandName;
  /** the validated `Git-Protocol` header, passed to git as GIT_PROTOCOL */
  protocol: string | undefined;
  timeoutMs: number;
  signal: AbortSignal;
  /** kill the child when its input brings no byte for this long while git waits for it (0: never) */
  idleTimeoutMs?: number;
  /** `-c key=value` settings for this run only (the server's, never a caller's) */
  config?: readonly string[];
  /** more environment for the child (and its hooks) */
  env?: Record<string, string>;
}

export interface ServeResult {
  code: number | null;
  stderr: string;
  /** the child was killed because its input went quiet */
  idle: boolean;
}

/** The preamble of an info/refs answer: present for protocol v0/v1, absent for v2 (as git http-backend does). */
export function advertisementPreamble(service: GitServiceName, protocol: string | undefined): Buffer {
  if (protocol && /(^|:)version=2(:|$)/.test(protocol)) return Buffer.alloc(0);
  return Buffer.concat([pktLine(`# service=${service}\n`), Buffer.from('0000')]);
}

/**
 * Calls `onIdle` when `input` has brought no byte for `ms` while its consumer
 * was ready for more. Time spent paused by backpressure (git busy, not
 * reading) does not count: only a quiet sender does. Returns the stopper.
 */
function watchIdle(input: Readable, ms: number, onIdle: () => void): () => void {
  let timer: NodeJS.Timeout | undefined;
  const arm = () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      if (input.isPaused() || input.readableLength > 0) arm();
      else onIdle();
    }, ms);
    timer.unref();
  };
  const stop = () => {
    clearTimeout(timer);
    input.off('data', arm);
  };
  input.on('data', arm);
  input.once('end', stop);
  input.once('close', stop);
  arm();
  return stop;
}

/**
 * Calls `onIdle` when nothing moved either way (the client's input, git's output and
 * progress) for `ms`: for a stateful session, where a client legitimately sends nothing while
 * a pack streams to it, but a session where neither side speaks holds a process for nothing.
 */
function watchSilence(streams: Readable[], ms: number, onIdle: () => void): () => void {
  let timer: NodeJS.Timeout | undefined;
  const arm = () => {
    clearTimeout(timer);
    timer = setTimeout(onIdle, ms);
    timer.unref();
  };
  for (const s of streams) s.on('data', arm);
  arm();
  return () => {
    clearTimeout(timer);
    for (const s of streams) s.off('data', arm);
  };
}

interface RunIo {
  input: Readable | undefined;
  output: Writable;
  /** git's stderr, passed on (SSH's extended data); collected either way */
  errOutput?: Writable;
  /** a stateful session: watch for silence both ways instead of an idle input */
  stateful?: boolean;
}

function run(o: ServeOptions, args: string[], io: RunIo): Promise<ServeResult> {
  const { input, output } = io;
  return new Promise((resolve, reject) => {
    const env: Record<string, string> = { ...o.env };
    if (o.protocol) env.GIT_PROTOCOL = o.protocol;
    const child = spawnGit(o.git, [...(o.config ?? []).flatMap((c) => ['-c', c]), ...args], { env, timeoutMs: o.timeoutMs, signal: o.signal });
    let stderr = '';
    let idle = false;
    let stopWatch = () => undefined as void;
    child.stderr!.on('data', (d: Buffer) => {
      if (stderr.length < 8192) stderr += d.toString('utf8');
    });
    if (io.errOutput) child.stderr!.pipe(io.errOutput, { end: false });
    child.stdin!.on('error', () => undefined);
    const kill = () => {
      idle = true;
      killGit(child);
    };
    if (input) {
      input.on('error', () => killGit(child));
      input.pipe(child.stdin!);
      if (o.idleTimeoutMs) stopWatch = io.stateful ? watchSilence([input, child.stdout!, child.stderr!], o.idleTimeoutMs, kill) : watchIdle(input, o.idleTimeoutMs, kill);
    } else child.stdin!.end();
    child.stdout!.pipe(output, { end: false });
    child.on('error', (e) => {
      stopWatch();
      reject(e);
    });
    child.on('close', (code) => {
      stopWatch();
      resolve({ code, stderr, idle });
    });
  });
}

/** Streams the ref advertisement (`--advertise-refs`) of `service` into `output`. */
export function advertiseRefs(o: ServeOptions, output: Writable): Promise<ServeResult> {
  const cmd = o.service === 'git-upload-pack' ? 'upload-pack' : 'receive-pack';
  return run(o, [cmd, '--stateless-rpc', '--advertise-refs', o.dir], { input: undefined, output });
}

/** Runs one stateless RPC round of `service`: `input` (already gunzipped) to its stdin, its stdout to `output`. */
export function serviceRpc(o: ServeOptions, input: Readable, output: Writable): Promise<ServeResult> {
  const cmd = o.service === 'git-upload-pack' ? 'upload-pack' : 'receive-pack';
  return run(o, [cmd, '--stateless-rpc', o.dir], { input, output });
}

/**
 * Runs receive-pack on a request whose head was read and decided before: `--stateless-rpc`,
 * so that it reads the commands and the pack without advertising again. Over a stateful
 * transport (SSH: `errOutput` given) the advertisement was sent before, and the session is
 * watched for silence both ways, as `serveStateful` does.
 */
export function receivePack(o: ServeOptions, input: Readable, output: Writable, errOutput?: Writable): Promise<ServeResult> {
  return run(o, ['receive-pack', '--stateless-rpc', o.dir], { input, output, errOutput, stateful: !!errOutput });
}

/**
 * Runs `service` as a whole stateful conversation (SSH): the advertisement, the negotiation and
 * the pack over one pair of streams, git's stderr to `errOutput`. A session where nothing moves
 * either way for `idleTimeoutMs` is killed.
 */
export function serveStateful(o: ServeOptions, input: Readable, output: Writable, errOutput: Writable): Promise<ServeResult> {
  const cmd = o.service === 'git-upload-pack' ? 'upload-pack' : o.service === 'git-receive-pack' ? 'receive-pack' : 'upload-archive';
  return run(o, [cmd, o.dir], { input, output, errOutput, stateful: true });
}
