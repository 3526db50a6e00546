import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { h } from 'preact';
import { webPrincipalOf } from './session.ts';
import { type ErrorKind, isAccessDenied, isDomainError } from '../domain/errors.ts';
import { csrfTokenOf } from '../services/sessions.ts';
import { MessagePage } from './pages/layout.tsx';
import { html } from './reply.ts';

const STATUS: Record<ErrorKind, number> = { invalid: 400, unauthenticated: 401, forbidden: 403, notFound: 404, conflict: 409, tooLarge: 413, unavailable: 503, rateLimited: 429 };

const TITLE: Record<number, string> = { 400: 'Bad request', 401: 'Sign-in required', 403: 'Forbidden', 404: 'Not found', 409: 'Conflict', 413: 'Too large', 429: 'Too many attempts', 500: 'Server error', 503: 'Busy' };

/** Renders a message page with the request's principal in its header. */
export function messagePage(req: FastifyRequest, reply: FastifyReply, status: number, message: string, signInLink = false): FastifyReply {
  const principal = webPrincipalOf(req);
  const ctx = { principal, csrf: req.webSessionToken ? csrfTokenOf(req.webSessionToken) : '', here: req.url };
  const link = signInLink ? h('p', null, h('a', { href: `/-/login?next=${encodeURIComponent(req.url)}` }, 'Sign in')) : null;
  return html(reply.status(status), h(MessagePage, { ctx, title: TITLE[status] ?? 'Error', status, message }, link));
}

/**
 * The web surface's one error mapper. A refused decision on a repository is the same 404 page
 * as a missing repository (to an anonymous visitor too, with a sign-in link): a page never
 * tells that a hidden repository exists. Other refusals: 403 (a page that needs more than the
 * caller holds), 401 only for sign-in failures. Domain errors show their safe message; anything
 * else is logged with the request id and shown as a generic 500.
 */
export function webErrorHandler(err: FastifyError, req: FastifyRequest, reply: FastifyReply): void {
  if (isAccessDenied(err)) {
    // the decision point says `forbidden` only about what the caller may see: anything else looks missing
    if (err.kind === 'forbidden' && req.webPrincipal?.kind === 'user') void messagePage(req, reply, 403, 'You may not do this.');
    else void messagePage(req, reply, 404, 'There is nothing here, or you may not see it.', req.webPrincipal?.kind !== 'user');
    return;
  }
  if (isDomainError(err)) {
    if (err.retryAfterSeconds !== undefined) void reply.header('Retry-After', String(err.retryAfterSeconds));
    void messagePage(req, reply, STATUS[err.kind], err.message);
    return;
  }
  if (req.raw.destroyed) {
    void reply.status(503).send();
    return;
  }
  const status = err.statusCode ?? 500;
  if (status >= 400 && status < 500) {
    void messagePage(req, reply, status, status === 413 ? 'The request is too large.' : err.validation ? 'The request is not valid.' : 'Bad request.');
    return;
  }
  req.log.error({ err }, 'unhandled error');
  void messagePage(req, reply, 500, `Something went wrong (request ${req.id}).`);
}
