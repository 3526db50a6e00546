import type { Readable, Writable } from 'node:stream';
import { type GitEnv, spawnGit } from './runner.ts';

/** The two git services, by the names git's protocols use for them. */
export type GitServiceName = 'git-upload-pack' | 'git-receive-pack';

export const isGitService = (s: unknown): s is GitServiceName => s === 'git-upload-pack' || s === 'git-receive-pack';

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
  service: GitServiceName;
  /** the validated `Git-Protocol` header, passed to git as GIT_PROTOCOL */
  protocol: string | undefined;
  timeoutMs: number;
  signal: AbortSignal;
  /** kill the child when its input brings no byte for this long while git waits for it (0: never) */
  idleTimeoutMs?: number;
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

function run(o: ServeOptions, args: string[], input: Readable | undefined, output: Writable): Promise<ServeResult> {
  return new Promise((resolve, reject) => {
    const env: Record<string, string> = {};
    if (o.protocol) env.GIT_PROTOCOL = o.protocol;
    const child = spawnGit(o.git, args, { env, timeoutMs: o.timeoutMs, signal: o.signal });
    let stderr = '';
    let idle = false;
    let stopWatch = () => undefined as void;
    child.stderr!.on('data', (d: Buffer) => {
      if (stderr.length < 8192) stderr += d.toString('utf8');
    });
    child.stdin!.on('error', () => undefined);
    if (input) {
      input.on('error', () => child.kill('SIGKILL'));
      input.pipe(child.stdin!);
      if (o.idleTimeoutMs) {
        stopWatch = watchIdle(input, o.idleTimeoutMs, () => {
          idle = true;
          child.kill('SIGKILL');
        });
      }
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
  return run(o, [cmd, '--stateless-rpc', '--advertise-refs', o.dir], undefined, output);
}

/** Runs one stateless RPC round of `service`: `input` (already gunzipped) to its stdin, its stdout to `output`. */
export function serviceRpc(o: ServeOptions, input: Readable, output: Writable): Promise<ServeResult> {
  const cmd = o.service === 'git-upload-pack' ? 'upload-pack' : 'receive-pack';
  return run(o, [cmd, '--stateless-rpc', o.dir], input, output);
}
