import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { type ErrorKind, invalid, isDomainError } from '../domain/errors.ts';

const STATUS: Record<ErrorKind, number> = {
  invalid: 400,
  unauthenticated: 401,
  forbidden: 403,
  notFound: 404,
  conflict: 409,
  tooLarge: 413,
  unavailable: 503,
};

/**
 * The REST surfaces' one error mapper: domain errors become their status and
 * `{code, message}` (the Freestyle SDK picks its typed error by `code`),
 * `unavailable` with `Retry-After`;
 * Fastify's own client errors (bad JSON, body too large) keep their status;
 * anything else is logged with the request id and answered as a generic 500.
 */
export function restErrorHandler(this: FastifyInstance, err: FastifyError, req: FastifyRequest, reply: FastifyReply): void {
  if (isDomainError(err)) {
    if (err.kind === 'unavailable') void reply.header('Retry-After', String(err.retryAfterSeconds ?? 1));
    void reply.status(STATUS[err.kind]).send({ code: err.code ?? 'BAD_REQUEST', message: err.message });
    return;
  }
  const status = err.statusCode ?? 500;
  if (status >= 400 && status < 500) {
    const message = err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE' ? 'Unsupported Content-Type' : err.code === 'FST_ERR_CTP_BODY_TOO_LARGE' ? 'Request body is too large' : err.validation ? `Invalid request: ${err.message}` : err.message;
    void reply.status(status).send({ code: status === 413 ? 'PAYLOAD_TOO_LARGE' : 'BAD_REQUEST', message });
    return;
  }
  req.log.error({ err }, 'unhandled error');
  void reply.status(500).send({ code: 'INTERNAL_ERROR', message: `Internal error (request ${req.id})` });
}

/**
 * JSON body parser for the REST surfaces: an empty body is `undefined` (the SDK
 * POSTs some endpoints without one), invalid JSON is a 400 with a clear message.
 */
export function registerJsonParser(app: FastifyInstance): void {
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => {
    const text = (body as string).trim();
    if (text === '') return done(null, undefined);
    try {
      done(null, JSON.parse(text));
    } catch {
      const e = new Error('Invalid JSON in request body') as FastifyError;
      e.statusCode = 400;
      done(e, undefined);
    }
  });
}

/** The JSON body of a REST request as an object: none is `{}`, anything but an object is a 400. */
export function objectBody(req: FastifyRequest): Record<string, unknown> {
  const b = req.body;
  if (b === undefined || b === null) return {};
  if (typeof b !== 'object' || Array.isArray(b)) throw invalid('Request body must be a JSON object');
  return b as Record<string, unknown>;
}
