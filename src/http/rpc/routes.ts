import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isAccessDenied, isDomainError, isRateLimited } from '../../domain/errors.ts';
import { checkEnvelope, CompiledArgs } from './args.ts';
import { METHOD_ALIASES, METHODS, type RpcDeps } from './methods.ts';
import { RpcResponse, rpcRequestDoc } from './schemas.ts';

/** True for an `id` that can be echoed: scalars, and arrays/objects at most 16 deep and 4 KiB as JSON. */
function echoable(v: unknown, depth = 0): boolean {
  if (v === null || v === undefined || typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return depth > 0 || typeof v !== 'string' || v.length <= 4096;
  if (depth >= 16 || typeof v !== 'object') return false;
  const values = Array.isArray(v) ? v : Object.values(v as object);
  if (!values.every((x) => echoable(x, depth + 1))) return false;
  // measured only once the depth is known to be small (stringify recurses too)
  return depth > 0 || JSON.stringify(v).length <= 4096;
}

/** A request that failed before its id was known answers with `id: null`. */
class RpcFailure extends Error {}

/**
 * The JSON-RPC surface's one error mapper: always HTTP 200, `result: null`,
 * `error` a clear string. Unknown failures are logged with the request id and
 * answered generically.
 */
function answerError(req: FastifyRequest, reply: FastifyReply, id: unknown, err: unknown): void {
  let message: string;
  if (isAccessDenied(err)) {
    // a hidden repository reads as a missing one; a refused action names the right it needs
    message = err.kind === 'forbidden' ? `no permission for ${err.action} on ${err.subject}` : err.message;
  } else if (isDomainError(err) || err instanceof RpcFailure) message = err.message;
  else if ((err as FastifyError).code === 'FST_ERR_CTP_BODY_TOO_LARGE') message = 'request body is too large';
  else {
    req.log.error({ err }, 'unhandled JSON-RPC error');
    message = `internal error (request ${req.id})`;
  }
  // The protocol answers 200 whatever happens, but for brute force: 429 with Retry-After, so
  // that clients and proxies back off (the body keeps the protocol's shape).
  if (isRateLimited(err)) void reply.status(429).header('Retry-After', String(err.retryAfterSeconds));
  else void reply.status(200);
  void reply.send({ id: id ?? null, result: null, error: message });
}

/**
 * `POST /_admin/api`: seed 002's protocol. The body is JSON whatever the
 * Content-Type (the seed's curl sends text/plain); `id` is echoed as sent.
 * Fastify does not validate this body: the handler checks the envelope, the
 * caller's key and rights, then the method's `args` against its schema
 * (compiled once, below), in that order, so every failure is an HTTP 200
 * with the id echoed. The same schemas describe the body in /openapi.json.
 */
export async function rpcRoutes(app: FastifyInstance, deps: RpcDeps): Promise<void> {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => done(null, body));
  app.setErrorHandler((err, req, reply) => answerError(req, reply, null, err));
  const compiled = new Map(Object.entries(METHODS).map(([name, m]) => [name, new CompiledArgs(m.args)]));

  const schema = { summary: "RhodeCode's admin API: {id, api_key, method, args} in, {id, result, error} out", consumes: ['application/json', 'text/plain'], response: { 200: RpcResponse } };
  // '' (not '/'): the API lives at /_admin/api exactly
  app.post('', { schema, config: { openapiBody: rpcRequestDoc(METHODS, METHOD_ALIASES) } }, async (req, reply) => {
    const text = typeof req.body === 'string' ? req.body : '';
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      return answerError(req, reply, null, new RpcFailure('JSON parse error: the request body must be a JSON object {id, api_key, method, args}'));
    }
    if (typeof body !== 'object' || body === null || Array.isArray(body)) return answerError(req, reply, null, new RpcFailure('the request body must be a JSON object {id, api_key, method, args}'));
    const b = body as Record<string, unknown>;
    // `id` is echoed as sent, whatever its JSON type, but within reason: a value nested deeper
    // than a caller could mean (or that would not serialise back) is refused with id null.
    if (!echoable(b.id)) return answerError(req, reply, null, new RpcFailure('"id" must be a string, a number, null, or a small JSON value'));
    const id = b.id ?? null;
    try {
      const { api_key, method: asked, args } = checkEnvelope(b);
      const principal = await deps.users.principalForToken(api_key, req.ip);
      if (!principal || !(await deps.access.authorize(principal, 'account:use', { kind: 'server' })).allowed) throw new RpcFailure('Invalid API KEY');
      const name = (Object.hasOwn(METHOD_ALIASES, asked) ? METHOD_ALIASES[asked] : undefined) ?? asked;
      const method = Object.hasOwn(METHODS, name) ? METHODS[name] : undefined;
      if (!method) throw new RpcFailure(`Unknown method: ${asked.slice(0, 100)}`);
      if (method.admin) {
        const d = await deps.access.authorize(principal, 'server:admin', { kind: 'server' });
        if (!d.allowed) throw new RpcFailure(`method ${name} requires admin rights`);
      }
      const result = await method.run(deps, principal, compiled.get(name)!.parse(args));
      return reply.send({ id, result: result ?? null, error: null });
    } catch (err) {
      return answerError(req, reply, id, err);
    }
  });
}
