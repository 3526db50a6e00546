import crypto from 'node:crypto';
import type { Access } from '../access/index.ts';
import type { Principal } from '../domain/access.ts';
import { notFound, unauthenticated } from '../domain/errors.ts';
import type { Store } from '../store/index.ts';
import { hashToken, newId, newToken } from './secrets.ts';
import type { Users } from './users.ts';

export interface SessionLimits {
  /** a session unused for this long ends */
  idleMs: number;
  /** a session ends this long after sign-in, used or not */
  absoluteMs: number;
}

/** What a presented session cookie resolves to. */
export interface LiveSession {
  sessionId: string;
  principal: Extract<Principal, { kind: 'user' }>;
}

/** Sessions are touched (their idle deadline moved) at most this often: not a write per page. */
const TOUCH_EVERY_MS = 5 * 60_000;

/**
 * Web sign-in sessions, kept in the database so that any node can check them and any of them
 * can be ended: the browser holds a random secret, the table its SHA-256. Signing in goes
 * through `Users.authenticateBasic`, so the web shares the APIs' failed-login limiter; only a
 * username with its password opens a session (an API key or access token does not).
 */
export class Sessions {
  constructor(
    private readonly store: Store,
    private readonly access: Access,
    private readonly users: Users,
    private readonly limits: SessionLimits = { idleMs: 7 * 24 * 3600_000, absoluteMs: 30 * 24 * 3600_000 },
  ) {}

  /**
   * Checks a username and password from the client at `from` and opens a new session: its
   * secret is returned once, for the cookie. Throws `unauthenticated` (wrong or inactive) or
   * `RateLimited` (the shared limiter), without saying which part was wrong.
   */
  async signIn(username: string, password: string, from: string): Promise<{ token: string; principal: LiveSession['principal'] }> {
    if (username.toLowerCase() === 'x-access-token') throw unauthenticated('Invalid username or password');
    const a = await this.users.authenticateBasic(username, password, from);
    if (a.credential.kind !== 'password' || a.principal.kind !== 'user' || !a.principal.active) throw unauthenticated('Invalid username or password');
    const { token, tokenHash } = newToken();
    const t = Date.now();
    await this.store.insertWebSession(this.store.db, {
      id: newId(),
      token_hash: tokenHash,
      user_id: a.principal.userId,
      created_at: new Date(t).toISOString(),
      last_seen_at: new Date(t).toISOString(),
      expires_at: new Date(t + Math.min(this.limits.idleMs, this.limits.absoluteMs)).toISOString(),
    });
    return { token, principal: a.principal };
  }

  /**
   * The session a cookie's secret names, with its user as a principal; undefined when unknown,
   * expired, signed out, or its user is inactive. Moves the idle deadline now and then.
   */
  async resolve(token: string): Promise<LiveSession | undefined> {
    if (token.length === 0 || token.length > 200) return undefined;
    const t = Date.now();
    const found = await this.store.findWebSession(this.store.db, hashToken(token), new Date(t).toISOString());
    if (!found || found.user.active !== 1) return undefined;
    const { session, user } = found;
    if (t - Date.parse(session.last_seen_at) > TOUCH_EVERY_MS) {
      const expires = Math.min(t + this.limits.idleMs, Date.parse(session.created_at) + this.limits.absoluteMs);
      await this.store.touchWebSession(this.store.db, session.id, new Date(t).toISOString(), new Date(expires).toISOString());
    }
    return {
      sessionId: session.id,
      principal: { kind: 'user', userId: user.id, username: user.username, admin: user.admin === 1, active: true, identityId: user.identity_id },
    };
  }

  /** Ends the session a cookie's secret names (sign-out); nothing if there is none. */
  async signOut(token: string): Promise<void> {
    if (token.length === 0 || token.length > 200) return;
    await this.store.deleteWebSession(this.store.db, hashToken(token));
    // expired rows of everyone go now and then, with a sign-out: no timer per node
    if (Math.random() < 0.1) await this.store.deleteExpiredWebSessions(this.store.db, new Date().toISOString());
  }
}

/**
 * The CSRF token of a session: an HMAC of the session's secret, so it is bound to that session,
 * changes with it at sign-in, and needs no storage. Knowing it reveals nothing of the secret.
 */
export function csrfTokenOf(sessionToken: string): string {
  return crypto.createHmac('sha256', sessionToken).update('palisade web csrf v1').digest('base64url');
}

/** Compares two tokens in constant time (false when either is missing or they differ in length). */
export function sameToken(a: string | undefined, b: string | undefined): boolean {
  if (!a || !b) return false;
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && crypto.timingSafeEqual(x, y);
}
