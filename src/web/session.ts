import crypto from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { anonymousFrom, type Principal } from '../domain/access.ts';
import { forbidden } from '../domain/errors.ts';
import { csrfTokenOf, sameToken, type Sessions } from '../services/sessions.ts';

/**
 * Credentials of the web surface -> Principal: the session cookie, nothing else. An
 * `Authorization` header or `?api_key=` is ignored here (feeds read `api_key` themselves).
 *
 * Cookies: the session (HttpOnly, SameSite=Lax, Path=/, Secure over TLS) and, for visitors not
 * signed in, a pre-session CSRF cookie the sign-in form is checked against (double submit).
 * Over TLS both take the `__Host-` prefix, which browsers only accept from a secure origin
 * for the whole host.
 */

export interface WebSessionOptions {
  /** the server is reached over TLS (PALISADE_PUBLIC_URL is https: a proxy terminates it) */
  secureCookies: boolean;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** the web's caller, from the session cookie */
    webPrincipal?: Principal;
    /** the session's secret as the cookie holds it (for sign-out and the CSRF token) */
    webSessionToken?: string;
  }
}

/** Reads a Cookie header into a map (first value of a name wins). */
export function parseCookies(header: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  if (!header || header.length > 16_384) return out;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    const name = part.slice(0, eq).trim();
    let value = part.slice(eq + 1).trim();
    if (value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
    if (name && !out.has(name)) out.set(name, value);
  }
  return out;
}

/** Whether this request came over TLS (the server's own, or the proxy named by PALISADE_PUBLIC_URL). */
const isSecure = (req: FastifyRequest, o: WebSessionOptions) => o.secureCookies || req.protocol === 'https';

const names = (secure: boolean) => (secure ? { session: '__Host-palisade_session', csrf: '__Host-palisade_csrf' } : { session: 'palisade_session', csrf: 'palisade_csrf' });

function cookie(name: string, value: string, secure: boolean, maxAgeSeconds: number | undefined): string {
  const parts = [`${name}=${value}`, 'Path=/', 'HttpOnly', 'SameSite=Lax'];
  if (secure) parts.push('Secure');
  if (maxAgeSeconds !== undefined) parts.push(`Max-Age=${maxAgeSeconds}`);
  return parts.join('; ');
}

/** Adds a Set-Cookie header (Fastify appends each `set-cookie` value to those already set). */
function addSetCookie(reply: FastifyReply, value: string): void {
  void reply.header('set-cookie', value);
}

/** The request's principal on a web page: its session's, else the anonymous caller at its address. */
export const webPrincipalOf = (req: FastifyRequest): Principal => req.webPrincipal ?? anonymousFrom(req.ip);

/** Resolves the session cookie into the request's principal (anonymous without a live session). */
export async function resolveSession(req: FastifyRequest, sessions: Sessions, o: WebSessionOptions): Promise<void> {
  const token = parseCookies(req.headers.cookie).get(names(isSecure(req, o)).session);
  req.webPrincipal = anonymousFrom(req.ip);
  if (!token) return;
  const live = await sessions.resolve(token);
  if (live) {
    req.webPrincipal = live.principal;
    req.webSessionToken = token;
  }
}

/** Sets the cookie of a session just opened (sign-in): a new secret, so any earlier one is replaced. */
export function setSessionCookie(req: FastifyRequest, reply: FastifyReply, token: string, o: WebSessionOptions): void {
  const secure = isSecure(req, o);
  addSetCookie(reply, cookie(names(secure).session, token, secure, undefined));
  addSetCookie(reply, cookie(names(secure).csrf, '', secure, 0));
}

/** Clears the session cookie (sign-out). */
export function clearSessionCookie(req: FastifyRequest, reply: FastifyReply, o: WebSessionOptions): void {
  const secure = isSecure(req, o);
  addSetCookie(reply, cookie(names(secure).session, '', secure, 0));
}

/** The session's own cookie value as presented, if any (even when it no longer resolves). */
export function presentedSessionToken(req: FastifyRequest, o: WebSessionOptions): string | undefined {
  return parseCookies(req.headers.cookie).get(names(isSecure(req, o)).session);
}

/**
 * The CSRF token forms of this request carry: bound to the session when signed in; for a
 * visitor, a random value also set as a cookie (made on first need).
 */
export function csrfFor(req: FastifyRequest, reply: FastifyReply, o: WebSessionOptions): string {
  if (req.webSessionToken) return csrfTokenOf(req.webSessionToken);
  const secure = isSecure(req, o);
  const existing = parseCookies(req.headers.cookie).get(names(secure).csrf);
  if (existing && /^[A-Za-z0-9_-]{43}$/.test(existing)) return existing;
  const fresh = crypto.randomBytes(32).toString('base64url');
  addSetCookie(reply, cookie(names(secure).csrf, fresh, secure, 3600 * 12));
  // a second call within the same request must not mint another
  req.headers.cookie = `${req.headers.cookie ? `${req.headers.cookie}; ` : ''}${names(secure).csrf}=${fresh}`;
  return fresh;
}

/**
 * Checks a form's CSRF token before anything it asks is done: the session's token when
 * signed in, else the visitor's cookie (double submit). A cross-origin `Origin` is refused too.
 * Throws `forbidden`.
 */
export function checkCsrf(req: FastifyRequest, formToken: unknown, o: WebSessionOptions): void {
  const origin = req.headers.origin;
  if (typeof origin === 'string' && origin !== 'null') {
    let host: string | undefined;
    try {
      host = new URL(origin).host;
    } catch {
      host = undefined;
    }
    if (host !== req.headers.host) throw forbidden('Cross-site form refused');
  }
  const given = typeof formToken === 'string' ? formToken : undefined;
  const expected = req.webSessionToken ? csrfTokenOf(req.webSessionToken) : parseCookies(req.headers.cookie).get(names(isSecure(req, o)).csrf);
  if (!sameToken(given, expected)) throw forbidden('The form has expired or did not come from this site: reload the page and try again');
}
