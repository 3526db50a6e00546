import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { type Readable, Transform, type TransformCallback } from 'node:stream';
import zlib from 'node:zlib';
import type { FastifyBaseLogger, FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isAccessDenied, isDomainError, isRateLimited } from '../../domain/errors.ts';
import { drain } from '../../git/push-commands.ts';
import { advertisementPreamble, type GitServiceName, isGitService, safeGitProtocol } from '../../git/smart-http.ts';
import type { GitService } from '../../services/git-service.ts';
import type { HgService } from '../../services/hg-service.ts';
import type { Users } from '../../services/users.ts';
import { gitPrincipal } from '../credentials.ts';

export interface SmartHttpDeps {
  users: Users;
  /** resolves, authorizes and runs git; this surface only moves bytes */
  git: GitService;
  /** the same for Mercurial's wire protocol (`/<repo>?cmd=…`) */
  hg: HgService;
  /** a refused anonymous Mercurial push is drained (see hgHandler) until it goes quiet this long */
  bodyIdleTimeoutMs: number;
  maxPackBytes: number;
}

const PATH_RE = /^\/(.+?)(?:\.git)?\/(info\/refs|git-upload-pack|git-receive-pack)$/;
const REALM = 'Basic realm="Palisade", charset="UTF-8"';

/** An answer git prints: status + plain text, `WWW-Authenticate` on 401. */
function fail(reply: FastifyReply, status: number, text: string): FastifyReply {
  if (status === 401) void reply.header('WWW-Authenticate', REALM);
  return reply.status(status).header('Content-Type', 'text/plain; charset=utf-8').header('Cache-Control', 'no-cache').send(`${text}\n`);
}

/**
 * The same answer written on the raw response (the git handler runs outside the framework's
 * reply): a request whose body was not read to its end is answered with `Connection: close`
 * and the connection dropped, as the root does for every other surface (root.ts).
 */
function answer(req: IncomingMessage, res: ServerResponse, a: Answer): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  // what was set for the answer that will not come goes; a `Connection: close` (the server is draining) stays
  const connection = res.getHeader('connection');
  for (const h of res.getHeaderNames()) res.removeHeader(h);
  if (connection !== undefined) res.setHeader('Connection', connection);
  if (a.status === 401) res.setHeader('WWW-Authenticate', REALM);
  if (a.retryAfter !== undefined) res.setHeader('Retry-After', String(a.retryAfter));
  res.setHeader('Content-Type', 'text/plain; charset=utf-8');
  res.setHeader('Cache-Control', 'no-cache');
  if (!req.complete) {
    res.setHeader('Connection', 'close');
    res.once('finish', () => req.socket.destroy());
  }
  res.statusCode = a.status;
  res.end(`${a.text}\n`);
}

const STATUS = { invalid: 400, unauthenticated: 401, forbidden: 403, notFound: 404, conflict: 409, tooLarge: 413, unavailable: 503, rateLimited: 429 } as const;

/** What git prints for a refused decision: nothing about whether a hidden repository exists. */
const DENIED = {
  unauthenticated: 'Authentication required',
  notFound: 'Repository not found',
  forbidden: 'Permission denied: write access to this repository is required to push',
} as const;

/** A refusal or failure as git is told it: a status, one line of text, when to try again. */
interface Answer {
  status: number;
  text: string;
  retryAfter?: number;
}

/**
 * Smart HTTP's one error mapper: a domain error becomes its status and its
 * (safe) message as plain text; a framework client error keeps its status with
 * a generic text; anything else is logged with the request id and answered
 * as a generic 500, so no exception's internals reach git's terminal.
 */
function mapError(err: unknown, req: IncomingMessage, meta: RequestMeta): Answer {
  if (isAccessDenied(err)) return { status: STATUS[err.kind], text: DENIED[err.kind as keyof typeof DENIED] ?? 'Permission denied' };
  if (isRateLimited(err)) return { status: 429, text: 'Too many failed authentication attempts; try again later', retryAfter: err.retryAfterSeconds };
  if (isDomainError(err)) {
    if (err.kind === 'unauthenticated') return { status: 401, text: 'Authentication failed' };
    return { status: STATUS[err.kind], text: err.message, ...(err.kind === 'unavailable' ? { retryAfter: err.retryAfterSeconds ?? 1 } : {}) };
  }
  // the client left while waiting (for a process slot): nobody to answer, nothing to log
  if (req.destroyed) return { status: 503, text: 'Client went away' };
  const status = (err as FastifyError | undefined)?.statusCode ?? 500;
  if (status >= 400 && status < 500) return { status, text: 'Bad request' };
  meta.log.error({ err }, 'unhandled error');
  return { status: 500, text: `Internal error (request ${meta.id})` };
}

function smartHttpErrorHandler(err: FastifyError, req: FastifyRequest, reply: FastifyReply): void {
  const a = mapError(err, req.raw, req);
  if (a.retryAfter !== undefined) void reply.header('Retry-After', String(a.retryAfter));
  void fail(reply, a.status, a.text);
}

/** What a request brings besides its raw message: a logger and an id for the log (the framework's, or the fast path's). */
export interface RequestMeta {
  readonly log: FastifyBaseLogger;
  readonly id: string;
}

/** Counts bytes through and fails the stream once `max` is passed. */
class ByteLimit extends Transform {
  private seen = 0;
  exceeded = false;
  constructor(private readonly max: number) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.seen += chunk.length;
    if (this.seen > this.max) {
      this.exceeded = true;
      cb(new Error('request body too large'));
      return;
    }
    cb(null, chunk);
  }
}

/** A git request: the repository as named and the endpoint, when `path` (no query) is one of git's URLs. */
export function gitEndpoint(path: string): { repoRef: string; endpoint: 'info/refs' | GitServiceName } | undefined {
  // the router cuts a path at `#` (and answers encoded ones its own way): not a git URL here
  if (path.includes('%') || path.includes('//') || path.includes('#')) return undefined;
  const m = PATH_RE.exec(path);
  return m ? { repoRef: m[1]!, endpoint: m[2] as 'info/refs' | GitServiceName } : undefined;
}

/**
 * Answers one git smart HTTP request on the raw request and response: method and content type
 * checked, the caller authenticated, the repository resolved and decided (read for
 * upload-pack, write for receive-pack) before any git process starts, so a refused push writes
 * nothing; bodies stream both ways; the child is killed when the client goes away or time
 * runs out. Every refusal and failure goes through mapError. Runs from the fast path
 * (fast-path.ts) and from the framework's catch-all route alike.
 */
export function gitHandler(deps: SmartHttpDeps): (req: IncomingMessage, res: ServerResponse, meta: RequestMeta, e: { repoRef: string; endpoint: 'info/refs' | GitServiceName }) => Promise<void> {
  const serve = async (req: IncomingMessage, res: ServerResponse, meta: RequestMeta, { repoRef, endpoint }: { repoRef: string; endpoint: 'info/refs' | GitServiceName }) => {
    let service: GitServiceName;
    if (endpoint === 'info/refs') {
      if (req.method !== 'GET' && req.method !== 'HEAD') return answer(req, res, { status: 405, text: 'Method not allowed' });
      const q = req.url!.indexOf('?');
      const asked = q < 0 ? [] : new URLSearchParams(req.url!.slice(q + 1)).getAll('service');
      const s = asked.length === 1 ? asked[0] : undefined;
      if (!isGitService(s)) return answer(req, res, { status: 403, text: 'Only the smart HTTP protocol is served: ask for service=git-upload-pack or git-receive-pack' });
      service = s;
    } else {
      if (req.method !== 'POST') return answer(req, res, { status: 405, text: 'Method not allowed' });
      service = endpoint;
      if (req.headers['content-type'] !== `application/x-${service}-request`) return answer(req, res, { status: 415, text: `Content-Type must be application/x-${service}-request` });
    }

    const principal = await gitPrincipal(req, deps.users);
    const protocol = safeGitProtocol(req.headers['git-protocol']);
    const ac = new AbortController();
    res.on('close', () => {
      if (!res.writableFinished) ac.abort();
    });
    // Resolves and decides before any process starts; refusals go to the error mapper.
    const session = await deps.git.open(principal, repoRef, service, { protocol, signal: ac.signal, call: endpoint === 'info/refs' ? 'advertise' : 'rpc' });
    const kind = endpoint === 'info/refs' ? 'advertisement' : 'result';

    // Sent with the first byte of the answer: a v2 upload-pack request may still be refused
    // (no process slot free) once it is known that git has to run.
    res.statusCode = 200;
    res.setHeader('Content-Type', `application/x-${service}-${kind}`);
    res.setHeader('Cache-Control', 'no-cache, max-age=0, must-revalidate');
    res.setHeader('Pragma', 'no-cache');
    res.setHeader('Expires', 'Fri, 01 Jan 1980 00:00:00 GMT');

    try {
      let result;
      if (endpoint === 'info/refs') {
        res.write(advertisementPreamble(service, protocol));
        result = await session.advertise(res);
      } else {
        const limit = new ByteLimit(deps.maxPackBytes);
        const enc = String(req.headers['content-encoding'] ?? '').toLowerCase();
        const source = enc === 'gzip' || enc === 'x-gzip' ? req.pipe(zlib.createGunzip()) : req;
        source.on('error', () => limit.destroy(new Error('bad request body')));
        source.pipe(limit);
        result = await session.rpc(limit, res);
        if (limit.exceeded) meta.log.warn({ repo: session.repoId }, 'git request body over the limit; child killed');
        if (result.idle) meta.log.warn({ repo: session.repoId, service }, 'git request body idle too long; child killed');
      }
      if (result.refused) meta.log.info({ repo: session.repoId, refused: result.refused }, 'push refused by the decision point (git was told in its protocol)');
      else if (result.code !== 0 && !ac.signal.aborted && !result.idle) meta.log.warn({ repo: session.repoId, service, code: result.code, stderr: result.stderr.slice(0, 2000) }, 'git exited with an error');
    } catch (err) {
      if (!res.headersSent && isDomainError(err) && err.kind === 'unavailable') {
        // refused before any byte of the answer: the status and text the error mapper gives
        answer(req, res, mapError(err, req, meta));
      } else if (!res.headersSent && req.destroyed) {
        // the client left while waiting for a process slot: nobody to answer
      } else meta.log.error({ err }, 'git service failed');
    } finally {
      session.close();
      // A body git did not read to its end (killed: idle, too large, failed) is not drained:
      // the connection is dropped once the answer is out (or soon, if the client does not read it).
      if (!req.complete) {
        const drop = () => req.socket.destroy();
        res.once('finish', drop);
        setTimeout(drop, 5000).unref();
      }
      res.end();
    }
  };
  return async (req, res, meta, e) => {
    try {
      await serve(req, res, meta, e);
    } catch (err) {
      answer(req, res, mapError(err, req, meta));
    }
  };
}

/**
 * Git smart HTTP at `/<repo id or full name>[.git]/{info/refs,git-upload-pack,git-receive-pack}`
 * (gitHandler; most of these requests are taken before routing by fast-path.ts, the rest come
 * here), and Mercurial's wire protocol at `/<repo>?cmd=…`.
 */
export async function smartHttpRoutes(app: FastifyInstance, deps: SmartHttpDeps): Promise<void> {
  // Leave git's request bodies unread: the handler streams them into the child.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_req, _payload, done) => done(null, undefined));
  const git = gitHandler(deps);

  const handler = async (req: FastifyRequest, reply: FastifyReply) => {
    const q = req.url.indexOf('?');
    const path = q < 0 ? req.url : req.url.slice(0, q);
    const e = gitEndpoint(path);
    if (e) {
      reply.hijack();
      return git(req.raw, reply.raw, req, e);
    }
    // Not a git URL: the server's one 404 for unknown routes.
    if (path.includes('%') || path.includes('//')) return reply.callNotFound();
    // Mercurial's wire protocol at the repository's own URL: /<repo>?cmd=<command>
    if (q >= 0 && /^\/[^?]+$/.test(path) && typeof (req.query as { cmd?: unknown }).cmd === 'string') return hgHandler(req, reply, path.slice(1).replace(/\/+$/, ''));
    return reply.callNotFound();
  };

  /**
   * Mercurial over HTTP: the same credentials and 401 challenge as git; decided before anything
   * runs (read, or write for unbundle and pushkey); the request then goes to Mercurial's own
   * hgweb, which answers in its protocol. Bodies stream both ways, bounded like git's.
   */
  const hgHandler = async (req: FastifyRequest, reply: FastifyReply, repoRef: string) => {
    const cmd = (req.query as { cmd: string }).cmd;
    if (req.method !== 'GET' && req.method !== 'POST') return fail(reply, 405, 'Method not allowed');
    const principal = await gitPrincipal(req.raw, deps.users);
    const ac = new AbortController();
    const res = reply.raw;
    res.on('close', () => {
      if (!res.writableFinished) ac.abort();
    });
    // hg's own headers travel (X-HgArg-*, X-HgProto-*, Content-Type, Content-Length); Palisade's are set by the worker call
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string' && (/^x-hg/i.test(k) || k === 'content-type' || k === 'content-length' || k === 'accept-encoding' || k === 'accept')) headers[k] = v;
    let body: Readable | undefined;
    if (req.method === 'POST') {
      const limit = new ByteLimit(deps.maxPackBytes);
      req.raw.on('error', () => limit.destroy(new Error('bad request body')));
      req.raw.pipe(limit);
      body = limit;
    }
    // decided (and a slot taken) before the answer starts; refusals go to the error mapper
    let started = false;
    const out = (status: number, h: OutgoingHttpHeaders) => {
      started = true;
      reply.hijack();
      res.writeHead(status, h);
      return res;
    };
    try {
      await deps.hg.serveHttp(principal, repoRef, { cmd, method: req.method, url: `/${req.url.slice(req.url.indexOf('?'))}`, headers, body, signal: ac.signal }, out);
    } catch (e) {
      // hg sends credentials only after a 401, and a push of a public repository starts with
      // an anonymous POST of the whole bundle: its client can retry with credentials only if it
      // reads the 401, which it does once the body is through. So an anonymous refused push of
      // a public hg repository is read (and thrown away: never parsed, never stored), bounded by
      // the pack size limit, the body idle timeout and a process slot of its address, before the
      // 401; every other refusal closes without reading (root.ts).
      if (!started && body && isAccessDenied(e) && e.kind === 'unauthenticated') {
        const slot = await deps.hg.slotToDrainRefusedPush(principal, repoRef, cmd, ac.signal);
        if (slot)
          try {
            await drain(body, deps.maxPackBytes, deps.bodyIdleTimeoutMs);
          } finally {
            slot.release();
          }
      }
      if (!started) throw e;
      req.log.warn({ err: e }, 'hg request failed after its answer started');
      res.destroy();
    }
  };

  app.setErrorHandler(smartHttpErrorHandler);
  // The body is streamed to git, which watches it for idleness (see GitService).
  app.route({ method: ['GET', 'POST'], url: '/*', bodyLimit: deps.maxPackBytes, config: { streamsBody: true }, handler });
}
