import http from 'node:http';
import { Socket } from 'node:net';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { restErrorHandler } from './rest-errors.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** the route streams the request body into a process that watches it for idleness itself */
    streamsBody?: boolean;
  }
}

export interface RootOptions {
  /** drop a request whose body brings no byte for this long */
  bodyIdleTimeoutMs: number;
}

/**
 * What every request goes through, whatever its surface; register before the
 * surfaces so that their routes inherit it:
 * - an idle timeout while a request body is being received;
 * - a refusal sent before the body was read closes the connection, so the
 *   server never reads (or waits for) a body it refused;
 * - the root's own error mapper (JSON `{code, message}`, details only in the log).
 */
export function registerRoot(app: FastifyInstance, opts: RootOptions): void {
  app.addHook('onRequest', (req, _reply, done) => {
    // A body still arriving: the socket may not go quiet for longer than the idle timeout.
    // (Routes that stream into git watch their own input, where git's backpressure is visible.)
    // (an injected request, app.inject in tests, has no socket to watch)
    if (!req.raw.complete && !req.routeOptions.config?.streamsBody && req.raw.socket instanceof Socket) {
      const socket = req.raw.socket;
      socket.setTimeout(opts.bodyIdleTimeoutMs);
      req.raw.once('end', () => socket.setTimeout(0));
    }
    done();
  });
  app.addHook('onSend', async (req, reply) => {
    if (req.raw.complete || !(req.raw.socket instanceof Socket)) return;
    // The body was not (fully) read: answer, then drop the connection instead of
    // draining the rest of it (Node would read it all to reach the next request).
    void reply.header('Connection', 'close');
    const socket = req.raw.socket;
    reply.raw.once('finish', () => socket.destroy());
  });
  app.setErrorHandler(restErrorHandler);
}

/**
 * Answers what Node's HTTP parser refuses (headers too large, malformed
 * requests, header timeout) with a status line and no body: the method may
 * be HEAD, where a body would be read as the start of the next response.
 */
export function clientErrorHandler(err: NodeJS.ErrnoException, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
  if (socket.writable) socket.write(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
  socket.destroy();
}

/**
 * Answers the errors Fastify meets before routing (a malformed URL encoding,
 * a failed route constraint) in the root's shape, without echoing the URL.
 */
export function frameworkErrorHandler(err: FastifyError, _req: FastifyRequest, reply: FastifyReply): void {
  const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 400;
  void reply.status(status).send({ code: 'BAD_REQUEST', message: err.code === 'FST_ERR_BAD_URL' ? 'Malformed URL' : 'Bad request' });
}
