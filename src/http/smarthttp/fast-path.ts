import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FastifyBaseLogger } from 'fastify';
import { gitEndpoint, gitHandler, type RequestMeta, type SmartHttpDeps } from './routes.ts';

/** The levels at which the framework logs each request. */
const VERBOSE = new Set(['trace', 'debug', 'info']);

/**
 * Git's smart HTTP taken before the framework's routing. A git client's every fetch, push and
 * `ls-remote` starts with two or three small requests (the 401 that makes it send credentials,
 * the advertisement, `ls-refs`) that are answered from memory and the refs on disk; on them the
 * router, the hooks and the reply object cost as much as the answer (bench/run.ts). A request
 * this claims, `GET …/info/refs` or `POST …/git-upload-pack|git-receive-pack` at a git URL, runs
 * the same handler the catch-all route runs (gitHandler), with what the root hooks give every
 * request (root.ts): `Connection: close` on an answer sent before the body was read (in
 * gitHandler) and while the server drains; git's
 * routes stream their bodies and watch them for idleness themselves. Anything else (HEAD, other
 * methods, encoded or doubled slashes, Mercurial, and the paths the routes own (`routesOwn`: the
 * APIs' and the web's `-` namespace, as the web's dispatch keeps them) returns false and goes to
 * the framework as before.
 */
export function smartHttpFastPath(deps: SmartHttpDeps, log: FastifyBaseLogger, draining: () => boolean, routesOwn: (path: string) => boolean): (req: IncomingMessage, res: ServerResponse) => boolean {
  const git = gitHandler(deps);
  let seq = 0;
  return (req, res) => {
    if (req.method !== 'GET' && req.method !== 'POST') return false;
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    if (routesOwn(path)) return false;
    const e = gitEndpoint(path);
    if (!e || (e.endpoint === 'info/refs') !== (req.method === 'GET')) return false;
    if (draining()) res.setHeader('Connection', 'close');
    const id = `git-${(++seq).toString(36)}`;
    let child: FastifyBaseLogger | undefined;
    const meta: RequestMeta = {
      id,
      get log() {
        return (child ??= log.child({ reqId: id }));
      },
    };
    // the framework's two request lines, at the same level
    if (VERBOSE.has(log.level)) {
      const started = performance.now();
      meta.log.info({ req: { method: req.method, url, host: req.headers.host, ip: req.socket.remoteAddress, socket: req.socket } }, 'incoming request');
      res.once('finish', () => meta.log.info({ res: { statusCode: res.statusCode }, responseTime: performance.now() - started }, 'request completed'));
    }
    void git(req, res, meta, e);
    return true;
  };
}
