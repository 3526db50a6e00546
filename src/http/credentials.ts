import type { IncomingHttpHeaders } from 'node:http';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { anonymousFrom, type Principal } from '../domain/access.ts';
import { unauthenticated } from '../domain/errors.ts';
import type { Users } from '../services/users.ts';

/** The parsed `Authorization` header. */
export type Credentials = { kind: 'none' } | { kind: 'bearer'; token: string } | { kind: 'basic'; username: string; password: string } | { kind: 'malformed' };

export function parseAuthorization(h: string | undefined): Credentials {
  if (!h) return { kind: 'none' };
  const sp = h.indexOf(' ');
  if (sp < 0) return { kind: 'malformed' };
  const scheme = h.slice(0, sp).toLowerCase();
  const value = h.slice(sp + 1).trim();
  if (scheme === 'bearer' && value) return { kind: 'bearer', token: value };
  if (scheme === 'basic' && value) {
    const decoded = Buffer.from(value, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) return { kind: 'malformed' };
    return { kind: 'basic', username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
  }
  return { kind: 'malformed' };
}

/**
 * REST callers: `Authorization: Bearer <API key or access token>`, or the
 * SDK's client-side header `X-Freestyle-Identity-Access-Token`. Nothing:
 * anonymous. Anything presented and not valid: unauthenticated.
 */
export async function restPrincipal(req: FastifyRequest, users: Users): Promise<Principal> {
  const c = parseAuthorization(req.headers.authorization);
  if (c.kind === 'bearer') {
    const p = await users.principalForToken(c.token, req.ip);
    if (!p) throw unauthenticated('Invalid API key or access token');
    return p;
  }
  if (c.kind === 'basic') return users.principalForBasic(c.username, c.password, req.ip);
  if (c.kind === 'malformed') throw unauthenticated('Malformed Authorization header');
  const identityToken = req.headers['x-freestyle-identity-access-token'];
  if (typeof identityToken === 'string' && identityToken) {
    const p = await users.principalForToken(identityToken, req.ip);
    if (!p) throw unauthenticated('Invalid access token');
    return p;
  }
  return anonymousFrom(req.ip);
}

/**
 * Git callers: HTTP Basic (x-access-token + token, or username + password/API key) or Bearer.
 * Takes the raw request: smart HTTP answers git before the framework's routing (fast-path.ts).
 */
export async function gitPrincipal(req: { headers: IncomingHttpHeaders; socket: { remoteAddress?: string } }, users: Users): Promise<Principal> {
  const ip = req.socket.remoteAddress ?? '';
  const c = parseAuthorization(req.headers.authorization);
  switch (c.kind) {
    case 'none':
      return anonymousFrom(ip);
    case 'malformed':
      throw unauthenticated('Malformed Authorization header');
    case 'bearer': {
      const p = await users.principalForToken(c.token, ip);
      if (!p) throw unauthenticated('Invalid credentials');
      return p;
    }
    case 'basic':
      return users.principalForBasic(c.username, c.password, ip);
  }
}

declare module 'fastify' {
  interface FastifyRequest {
    /** the caller, resolved before the body is read (REST surfaces) */
    principal?: Principal;
  }
}

/**
 * Authenticates every request of a REST surface as it arrives, before its body is read:
 * presented credentials that are wrong are a 401 then, and a request that would change
 * something (POST, PUT, PATCH, DELETE) without credentials is refused at once. The server
 * never reads, let alone parses, a 100 MiB body only to answer 401 (the root then closes the
 * connection instead of draining it).
 */
export function authenticateEarly(app: FastifyInstance, users: Users): void {
  app.addHook('onRequest', async (req) => {
    req.principal = await restPrincipal(req, users);
    if (req.principal.kind === 'anonymous' && req.method !== 'GET' && req.method !== 'HEAD') throw unauthenticated('An API key is required');
  });
}
