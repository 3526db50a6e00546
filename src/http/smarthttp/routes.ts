import { Transform, type TransformCallback } from 'node:stream';
import zlib from 'node:zlib';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Access } from '../../access/index.ts';
import { ANONYMOUS, type Principal } from '../../domain/access.ts';
import { isAccessDenied, isDomainError, isRateLimited } from '../../domain/errors.ts';
import type { GitEnv } from '../../git/runner.ts';
import { readRefs } from '../../git/refs.ts';
import { repoDir } from '../../git/repo-path.ts';
import { advertisementPreamble, advertiseRefs, type GitService, isGitService, safeGitProtocol, serviceRpc } from '../../git/smart-http.ts';
import type { RefChange, RefEvents } from '../../services/events.ts';
import type { Repos } from '../../services/repos.ts';
import type { Users } from '../../services/users.ts';
import { gitPrincipal } from '../credentials.ts';

export interface SmartHttpDeps {
  users: Users;
  repos: Repos;
  access: Access;
  git: GitEnv;
  dataDir: string;
  maxPackBytes: number;
  gitTimeoutMs: number;
  /** told which refs a successful push moved (webhooks) */
  events: RefEvents;
}

async function allRefs(dir: string): Promise<Map<string, string>> {
  const [h, t] = await Promise.all([readRefs(dir, 'refs/heads/'), readRefs(dir, 'refs/tags/')]);
  return new Map([...h, ...t]);
}

function diffRefs(before: Map<string, string>, after: Map<string, string>): RefChange[] {
  const out: RefChange[] = [];
  for (const [ref, oid] of after) if (before.get(ref) !== oid) out.push({ ref, before: before.get(ref) ?? null, after: oid });
  for (const [ref, oid] of before) if (!after.has(ref)) out.push({ ref, before: oid, after: null });
  return out;
}

const PATH_RE = /^\/(.+?)(?:\.git)?\/(info\/refs|git-upload-pack|git-receive-pack)$/;
const REALM = 'Basic realm="Palisade", charset="UTF-8"';

/** Smart HTTP's error mapper: status + plain text that git prints, `WWW-Authenticate` on 401. */
function fail(reply: FastifyReply, status: number, text: string): FastifyReply {
  if (status === 401) void reply.header('WWW-Authenticate', REALM);
  return reply.status(status).header('Content-Type', 'text/plain; charset=utf-8').header('Cache-Control', 'no-cache').send(`${text}\n`);
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

/**
 * Git smart HTTP at `/<repo id or full name>[.git]/{info/refs,git-upload-pack,git-receive-pack}`.
 * Access is decided before any git process starts (read for upload-pack,
 * write for receive-pack), so a refused push writes nothing. Bodies stream
 * both ways; the child is killed when the client goes away or time runs out.
 */
export async function smartHttpRoutes(app: FastifyInstance, deps: SmartHttpDeps): Promise<void> {
  // Leave git's request bodies unread: the handler streams them into the child.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_req, _payload, done) => done(null, undefined));

  const handler = async (req: FastifyRequest, reply: FastifyReply) => {
    const q = req.url.indexOf('?');
    const path = q < 0 ? req.url : req.url.slice(0, q);
    const m = PATH_RE.exec(path);
    // Not a git URL: the server's one 404 for unknown routes.
    if (!m || path.includes('%') || path.includes('//')) return reply.callNotFound();
    const repoRef = m[1]!;
    const endpoint = m[2]!;

    let service: GitService;
    if (endpoint === 'info/refs') {
      if (req.method !== 'GET' && req.method !== 'HEAD') return fail(reply, 405, 'Method not allowed');
      const s = (req.query as { service?: string }).service;
      if (!isGitService(s)) return fail(reply, 403, 'Only the smart HTTP protocol is served: ask for service=git-upload-pack or git-receive-pack');
      service = s;
    } else {
      if (req.method !== 'POST') return fail(reply, 405, 'Method not allowed');
      service = endpoint as GitService;
      if (req.headers['content-type'] !== `application/x-${service}-request`) return fail(reply, 415, `Content-Type must be application/x-${service}-request`);
    }

    let principal: Principal = ANONYMOUS;
    try {
      principal = await gitPrincipal(req, deps.users);
    } catch (e) {
      if (isRateLimited(e)) return fail(reply.header('Retry-After', String(e.retryAfterSeconds)), 429, 'Too many failed authentication attempts; try again later');
      if (isDomainError(e) && e.kind === 'unauthenticated') return fail(reply, 401, 'Authentication failed');
      throw e;
    }

    // Decide before any process starts. Missing and hidden repositories get the same answer.
    const action = service === 'git-upload-pack' ? 'repo:read' : 'repo:write';
    let repo;
    try {
      repo = await deps.repos.get(principal, repoRef, action);
    } catch (e) {
      if (!isAccessDenied(e)) throw e;
      if (e.kind === 'unauthenticated') return fail(reply, 401, 'Authentication required');
      if (e.kind === 'notFound') return fail(reply, 404, 'Repository not found');
      return fail(reply, 403, 'Permission denied: write access to this repository is required to push');
    }

    const protocol = safeGitProtocol(req.headers['git-protocol']);
    const ac = new AbortController();
    const opts = { git: deps.git, dir: repoDir(deps.dataDir, repo.id), service, protocol, timeoutMs: deps.gitTimeoutMs, signal: ac.signal };
    const kind = endpoint === 'info/refs' ? 'advertisement' : 'result';

    reply.hijack();
    const res = reply.raw;
    res.on('close', () => {
      if (!res.writableFinished) ac.abort();
    });
    res.writeHead(200, {
      'Content-Type': `application/x-${service}-${kind}`,
      'Cache-Control': 'no-cache, max-age=0, must-revalidate',
      Pragma: 'no-cache',
      Expires: 'Fri, 01 Jan 1980 00:00:00 GMT',
    });

    try {
      let result;
      if (endpoint === 'info/refs') {
        res.write(advertisementPreamble(service, protocol));
        result = await advertiseRefs(opts, res);
      } else {
        // The refs before and after a push tell which moved: that is where push events come from.
        const before = service === 'git-receive-pack' ? await allRefs(opts.dir) : undefined;
        const limit = new ByteLimit(deps.maxPackBytes);
        const raw = req.raw;
        const enc = String(req.headers['content-encoding'] ?? '').toLowerCase();
        const source = enc === 'gzip' || enc === 'x-gzip' ? raw.pipe(zlib.createGunzip()) : raw;
        source.on('error', () => limit.destroy(new Error('bad request body')));
        source.pipe(limit);
        result = await serviceRpc(opts, limit, res);
        if (limit.exceeded) req.log.warn({ repo: repo.id }, 'git request body over the limit; child killed');
        if (before) {
          const changes = diffRefs(before, await allRefs(opts.dir));
          if (changes.length) deps.events.refsChanged(repo.id, changes);
        }
      }
      if (result.code !== 0 && !ac.signal.aborted) req.log.warn({ repo: repo.id, service, code: result.code, stderr: result.stderr.slice(0, 2000) }, 'git exited with an error');
    } catch (err) {
      req.log.error({ err }, 'git service failed');
    } finally {
      res.end();
    }
  };

  app.route({ method: ['GET', 'POST'], url: '/*', bodyLimit: deps.maxPackBytes, handler });
}
