import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { type AccessDenied, type ErrorKind, isAccessDenied, isDomainError, isRateLimited } from '../domain/errors.ts';
import { validationMessage } from './validation.ts';

const STATUS: Record<ErrorKind, number> = {
  invalid: 400,
  unauthenticated: 401,
  forbidden: 403,
  notFound: 404,
  conflict: 409,
  tooLarge: 413,
  unavailable: 503,
  rateLimited: 429,
};

/**
 * The REST surfaces' one error mapper: domain errors become their status and
 * `{code, message}` (the Freestyle SDK picks its typed error by `code`);
 * a request that fails its route's schemas is a 400 BAD_REQUEST naming the field;
 * `unavailable` and `rateLimited` with `Retry-After`;
 * Fastify's own client errors (bad JSON, body too large) keep their status;
 * anything else is logged with the request id and answered as a generic 500.
 */
/** Freestyle's code for a refused decision, by what it was about. */
function deniedCode(e: AccessDenied): string {
  if (e.kind === 'unauthenticated') return 'UNAUTHORIZED';
  if (e.kind === 'notFound') return e.resource === 'repo' ? 'REPO_NOT_FOUND' : e.resource === 'identity' ? 'IDENTITY_NOT_FOUND' : e.resource === 'vm' ? 'VM_NOT_FOUND' : 'NOT_FOUND';
  if (e.resource === 'repo') return 'GIT_REPOSITORY_ACCESS_DENIED';
  // acting as an account (identities, repositories) with an identity token or an inactive user
  return e.action === 'account:use' || e.resource === 'identity' ? 'IDENTITY_ACCESS_DENIED' : 'FORBIDDEN';
}

/** The message for a refused decision: the decision point's own, or a plainer one for account:use. */
function deniedMessage(e: AccessDenied): string {
  if (e.kind === 'forbidden' && e.action === 'account:use') return 'An active user\'s API key is required (identity access tokens act only on what they were granted)';
  return e.message;
}

export function restErrorHandler(this: FastifyInstance, err: FastifyError, req: FastifyRequest, reply: FastifyReply): void {
  if (isAccessDenied(err)) {
    void reply.status(STATUS[err.kind]).send({ code: deniedCode(err), message: deniedMessage(err) });
    return;
  }
  if (isRateLimited(err)) void reply.header('Retry-After', String(err.retryAfterSeconds));
  if (isDomainError(err)) {
    if (err.kind === 'unavailable') void reply.header('Retry-After', String(err.retryAfterSeconds ?? 1));
    void reply.status(STATUS[err.kind]).send({ code: err.code ?? 'BAD_REQUEST', message: err.message });
    return;
  }
  const status = err.statusCode ?? 500;
  if (status >= 400 && status < 500) {
    const message = err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE' ? 'Unsupported Content-Type' : err.code === 'FST_ERR_CTP_BODY_TOO_LARGE' ? 'Request body is too large' : err.validation ? `Invalid request: ${validationMessage(err.validation, err.validationContext)}` : err.message;
    void reply.status(status).send({ code: status === 413 ? 'PAYLOAD_TOO_LARGE' : 'BAD_REQUEST', message });
    return;
  }
  req.log.error({ err }, 'unhandled error');
  void reply.status(500).send({ code: 'INTERNAL_ERROR', message: `Internal error (request ${req.id})` });
}

/**
 * JSON body parser for the REST surfaces: an empty body is `undefined` (read as `{}`
 * by `registerRestValidation`), invalid JSON is a 400 with a clear message.
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
