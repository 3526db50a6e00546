import { PassThrough, type Readable } from 'node:stream';
import { pktLine } from './smart-http.ts';

/** One `<old> <new> <ref>` command of a push; a side all zeros means created or deleted. */
export interface PushCommand {
  oldOid: string;
  newOid: string;
  ref: string;
}

/** The command list at the head of a receive-pack request, and how reading it ended. */
export interface PushHead {
  commands: PushCommand[];
  /** the capabilities the client asked for (after the NUL of its first command) */
  capabilities: string[];
  /** every byte read from the input so far: the head, and the start of what follows it */
  buffered: Buffer;
  /**
   * complete: the flush after the commands was read; malformed: something receive-pack might
   * read as a command that this reader could not (refuse the push: it cannot be decided);
   * ended: the input ended first; aborted: the input failed or went quiet (`idle`) or the
   * signal fired
   */
  status: 'complete' | 'malformed' | 'ended' | 'aborted';
  idle?: boolean;
  /** for `malformed`: what was wrong */
  problem?: string;
}

const OID = '(?:[0-9a-fA-F]{40}|[0-9a-fA-F]{64})';
/** receive-pack's own reading of a command: two object ids and the rest of the line as the ref */
const COMMAND_RE = new RegExp(`^(${OID}) (${OID}) (.+)$`, 's');
const SHALLOW_RE = new RegExp(`^shallow ${OID}$`);
const MAX_PKT = 65520;

/**
 * Reads the command list at the head of a receive-pack request, strictly: every pkt-line
 * before the flush must be a `shallow` line or a command (`<old> <new> <ref>`, capabilities
 * after a NUL on the first), or a push certificate whose commands are read the same way. A
 * line receive-pack could take for a command but this reader cannot is `malformed`, so that no
 * ref can reach git without having been decided. Object ids come back in lowercase.
 */
export class PushHeadParser {
  readonly commands: PushCommand[] = [];
  capabilities: string[] = [];
  problem: string | undefined;
  done = false;
  private pending = Buffer.alloc(0);
  private capsRead = false;
  private inCert = false;
  private certBody = false;

  /** Feeds bytes; true once the head is over (complete, or malformed with `problem` set). */
  feed(chunk: Buffer): boolean {
    if (this.done) return true;
    const buf = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    let off = 0;
    while (buf.length - off >= 4) {
      const head = buf.toString('latin1', off, off + 4);
      if (!/^[0-9a-f]{4}$/i.test(head)) return this.fail('not a pkt-line');
      const len = parseInt(head, 16);
      if (len === 0) {
        if (this.inCert) return this.fail('push certificate without its end');
        this.done = true;
        return true;
      }
      if (len < 4 || len > MAX_PKT) return this.fail('bad pkt-line length');
      if (buf.length - off < len) break;
      this.line(buf.subarray(off + 4, off + len));
      if (this.problem) return true;
      off += len;
    }
    this.pending = Buffer.from(buf.subarray(off));
    return false;
  }

  private fail(problem: string): true {
    this.problem = problem;
    this.done = true;
    return true;
  }

  private line(raw: Buffer): void {
    let s = raw.toString('latin1');
    const nul = s.indexOf('\0');
    if (nul >= 0) {
      // the first command (or push-cert) line carries them; shallow lines come before it
      if (!this.capsRead) this.capabilities = s.slice(nul + 1).replace(/\n$/, '').split(' ').filter(Boolean);
      this.capsRead = true;
      s = s.slice(0, nul);
    }
    if (s.endsWith('\n')) s = s.slice(0, -1);
    if (this.inCert) {
      if (s === 'push-cert-end') this.inCert = false;
      else if (s === '') this.certBody = true;
      else if (this.certBody && !s.startsWith('-----')) this.command(s);
      return;
    }
    if (s === 'push-cert') {
      this.inCert = true;
      this.certBody = false;
      return;
    }
    if (SHALLOW_RE.test(s)) return;
    this.command(s);
  }

  private command(s: string): void {
    const m = COMMAND_RE.exec(s);
    if (!m) {
      this.problem = 'a line of the command list is not a command';
      return;
    }
    this.commands.push({ oldOid: m[1]!.toLowerCase(), newOid: m[2]!.toLowerCase(), ref: Buffer.from(m[3]!, 'latin1').toString('utf8') });
  }
}

export interface ReadHeadOptions {
  /** the most bytes the head may take */
  maxBytes: number;
  /** give up when the input brings no byte for this long (0: never) */
  idleMs: number;
  signal: AbortSignal;
}

/** How a head read ended: `step`'s or `atEnd`'s verdict, or `aborted` (failed, quiet, aborted). */
export interface HeadRead<S extends string> {
  status: S | 'aborted';
  /** every byte read: `prefixed(buffered, input)` is the whole request again */
  buffered: Buffer;
  /** the input went quiet for idleMs */
  idle?: boolean;
  /** the input has ended: `buffered` is the whole body */
  ended: boolean;
}

/**
 * Reads the start of a request body without handing anything on: each chunk goes to `step`,
 * which says when enough has been seen; the input's end is judged by `atEnd`; a failure, the
 * input going quiet for `idleMs` (0: never) or the call being aborted is `aborted`. The input
 * is left paused. The one reader behind a push's command list and a v2 ls-refs request.
 */
export function readHead<S extends string>(input: Readable, o: { idleMs: number; signal: AbortSignal }, step: (d: Buffer, chunks: readonly Buffer[], size: number) => S | undefined, atEnd: (size: number) => S): Promise<HeadRead<S>> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let timer: NodeJS.Timeout | undefined;
    const finish = (status: S | 'aborted', idle = false, ended = false) => {
      clearTimeout(timer);
      input.off('data', onData);
      input.off('end', onEnd);
      input.off('error', onError);
      o.signal.removeEventListener('abort', onAbort);
      input.pause();
      resolve({ status, buffered: Buffer.concat(chunks), ended, ...(idle ? { idle } : {}) });
    };
    const arm = () => {
      if (!o.idleMs) return;
      clearTimeout(timer);
      timer = setTimeout(() => finish('aborted', true), o.idleMs);
      timer.unref();
    };
    const onData = (d: Buffer) => {
      chunks.push(d);
      size += d.length;
      const verdict = step(d, chunks, size);
      if (verdict !== undefined) return finish(verdict);
      arm();
    };
    const onEnd = () => finish(atEnd(size), false, true);
    const onError = () => finish('aborted');
    const onAbort = () => finish('aborted');
    if (o.signal.aborted) return finish('aborted');
    input.on('data', onData);
    input.once('end', onEnd);
    input.once('error', onError);
    o.signal.addEventListener('abort', onAbort, { once: true });
    arm();
  });
}

/**
 * Reads `input` until its command list is over, without handing anything to git. Returns the
 * commands and every byte read (`buffered`): `prefixed(buffered, input)` is then the whole
 * request again. The input is left paused.
 */
export async function readPushHead(input: Readable, o: ReadHeadOptions): Promise<PushHead> {
  const parser = new PushHeadParser();
  const r = await readHead<'complete' | 'malformed' | 'ended'>(
    input,
    o,
    (d, _chunks, size) => {
      if (parser.feed(d)) return parser.problem ? 'malformed' : 'complete';
      if (size > o.maxBytes) {
        parser.problem = 'the command list is too long';
        return 'malformed';
      }
      return undefined;
    },
    () => 'ended',
  );
  const problem = r.status === 'malformed' ? parser.problem : undefined;
  return { commands: parser.commands, capabilities: parser.capabilities, buffered: r.buffered, status: r.status, ...(r.idle ? { idle: r.idle } : {}), ...(problem ? { problem } : {}) };
}

/** `head` followed by the rest of `input`: the request as git should read it. */
export function prefixed(head: Buffer, input: Readable): Readable {
  const out = new PassThrough();
  input.on('error', (e) => out.destroy(e));
  if (head.length) out.write(head);
  input.pipe(out);
  input.resume();
  return out;
}

/**
 * Reads and discards what is left of `input` (a refused push's pack, git's or Mercurial's), so that the client,
 * done sending, reads the answer. Stops at its end, after `maxBytes`, or when it goes quiet.
 */
export function drain(input: Readable, maxBytes: number, idleMs: number): Promise<void> {
  return new Promise((resolve) => {
    let seen = 0;
    let timer: NodeJS.Timeout | undefined;
    const done = () => {
      clearTimeout(timer);
      input.off('data', onData);
      input.off('end', done);
      input.off('error', done);
      input.off('close', done);
      input.pause();
      resolve();
    };
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(done, idleMs);
      timer.unref();
    };
    const onData = (d: Buffer) => {
      seen += d.length;
      if (seen > maxBytes) done();
      else arm();
    };
    if (input.readableEnded || input.destroyed) return resolve();
    input.on('data', onData);
    input.once('end', done);
    input.once('error', done);
    input.once('close', done); // destroyed without an error (the client gone): nothing more comes
    arm();
    input.resume();
  });
}

/** A sideband packet of `band` (1: data, 2: progress and messages), split to fit the band's size. */
function sideband(band: 1 | 2, data: Buffer, max: number): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0; i < data.length; i += max) {
    const body = data.subarray(i, i + max);
    parts.push(Buffer.from((body.length + 5).toString(16).padStart(4, '0')), Buffer.from([band]), body);
  }
  return Buffer.concat(parts);
}

/**
 * What receive-pack would answer to a push it refused before reading any object, in the form
 * the client asked for: `unpack ok` and `ng <ref> <reason>` for every command (git prints
 * `! [remote rejected] <ref> (<reason>)`), inside side-band 1 when asked, with `message` on
 * side-band 2 (git prints `remote: <message>`). Without report-status or side-band, only what
 * the client can read.
 */
export function refusalReport(head: Pick<PushHead, 'commands' | 'capabilities'>, reasons: (ref: string) => string, message: string): Buffer {
  const caps = new Set(head.capabilities);
  const report = caps.has('report-status') || caps.has('report-status-v2');
  const clean = (s: string) => s.replace(/[\x00-\x1f\x7f]+/g, ' ').slice(0, 400);
  const lines = report ? Buffer.concat([pktLine('unpack ok\n'), ...head.commands.map((c) => pktLine(`ng ${c.ref} ${clean(reasons(c.ref))}\n`)), Buffer.from('0000')]) : Buffer.alloc(0);
  const band = caps.has('side-band-64k') ? 65515 : caps.has('side-band') ? 995 : 0;
  if (!band) return lines;
  return Buffer.concat([sideband(2, Buffer.from(`${clean(message)}\n`), band), ...(lines.length ? [sideband(1, lines, band)] : []), Buffer.from('0000')]);
}
