import type { Access } from '../access/index.ts';
import type { Principal } from '../domain/access.ts';
import { conflict, invalid, notFound, unauthenticated } from '../domain/errors.ts';
import { usernameProblem } from '../domain/validate.ts';
import { isUniqueViolation, type Store, type TokenOwner, type UserRow } from '../store/index.ts';
import { type AuthLimits, AuthLimiter } from './auth-limiter.ts';
import { clientHost } from './client-host.ts';
import { hashPassword, hashToken, newId, newToken, now, verifyPassword } from './secrets.ts';
import { type CreatedToken, issueToken, revokeToken, type TokenInfo, tokenExpiry, tokenInfo, type TokenOptions } from './tokens.ts';

export interface UsersOptions {
  /** the server's ceiling on a token's life (undefined: none) */
  maxTokenLifetimeSeconds?: number;
}

/** lastUsedAt is written at most this often per token */
const TOUCH_MS = 60_000;

/** The rate-limit key of a client address: IPv4 as is, IPv6 by its /64 (one subscriber's block). */
const addressKey = (from: string): string => `addr:${clientHost(from)}`;

export interface NewUser {
  username: string;
  email?: string | null;
  firstname?: string | null;
  lastname?: string | null;
  admin?: boolean;
  active?: boolean;
  password?: string | null;
  /** use this API key instead of generating one (the admin bootstrap from the environment) */
  apiKey?: string;
  ldapDn?: string | null;
}

/**
 * Users (accounts) and credentials. Each user is backed by a managed identity;
 * its API keys are that identity's tokens, so one token table and one lookup
 * serve API keys and identity access tokens alike. Managing users is the
 * server's administration: every method but authentication asks `server:admin`.
 */
export class Users {
  private readonly limiter: AuthLimiter;
  /** token id -> when this process last wrote (or saw) its lastUsedAt, or recorded its expiry */
  private readonly touched = new Map<string, number>();
  private readonly expiredSeen = new Map<string, number>();

  constructor(
    private readonly store: Store,
    private readonly access: Access,
    limits: AuthLimits = { failures: 20, windowMs: 60_000 },
    private readonly opts: UsersOptions = {},
  ) {
    this.limiter = new AuthLimiter(limits);
  }

  private admin(p: Principal): Promise<unknown> {
    return this.access.require(p, 'server:admin', { kind: 'server' });
  }

  /** Creates a user and its first API key, returned once. Throws conflict if the name is taken. */
  async create(p: Principal, u: NewUser): Promise<{ user: UserRow; apiKey: string }> {
    await this.admin(p);
    const problem = usernameProblem(u.username);
    if (problem) throw invalid(problem);
    const passwordHash = u.password ? await hashPassword(u.password) : null;
    const key = u.apiKey ? { token: u.apiKey, tokenHash: hashToken(u.apiKey) } : newToken();
    const userId = newId();
    const identityId = newId();
    const at = now();
    const expiresAt = tokenExpiry(p, {}, this.opts.maxTokenLifetimeSeconds);
    const user: UserRow = {
      id: userId,
      username: u.username,
      username_key: u.username.toLowerCase(),
      email: u.email ?? null,
      firstname: u.firstname ?? null,
      lastname: u.lastname ?? null,
      active: u.active === false ? 0 : 1,
      admin: u.admin ? 1 : 0,
      password_hash: passwordHash,
      identity_id: identityId,
      created_at: at,
      ldap_dn: u.ldapDn ?? null,
    };
    try {
      await this.store.transaction(async (tx) => {
        await this.store.insertIdentity(tx, { id: identityId, account_id: userId, managed: 1, created_at: at });
        await this.store.insertUser(tx, user);
        await this.store.insertToken(tx, { id: newId(), identity_id: identityId, token_hash: key.tokenHash, created_at: at, expires_at: expiresAt });
      });
    } catch (e) {
      if (isUniqueViolation(e)) throw conflict(`User ${u.username} already exists`, 'USER_ALREADY_EXISTS');
      throw e;
    }
    await this.access.audit.record({ actor: p, action: 'user.create', target: { kind: 'user', id: user.id, name: user.username }, detail: { admin: user.admin === 1, active: user.active === 1 } });
    return { user, apiKey: key.token };
  }

  async find(p: Principal, username: string): Promise<UserRow | undefined> {
    await this.admin(p);
    return this.store.findUserByName(this.store.db, username);
  }

  async get(p: Principal, username: string): Promise<UserRow> {
    const u = await this.find(p, username);
    if (!u) throw notFound(`user ${username.slice(0, 64)} does not exist`, 'USER_NOT_FOUND');
    return u;
  }

  async list(p: Principal): Promise<UserRow[]> {
    await this.admin(p);
    return this.store.listUsers(this.store.db);
  }

  /**
   * Creates the user, or updates the fields given of an existing user of that
   * name (seed 002's create_user). A new user's API key is returned once; an
   * update issues no key.
   */
  async createOrUpdate(p: Principal, u: NewUser): Promise<{ user: UserRow; created: boolean; apiKey?: string }> {
    const existing = await this.find(p, u.username);
    if (!existing) {
      try {
        const { user, apiKey } = await this.create(p, u);
        return { user, created: true, apiKey };
      } catch (e) {
        if (!(e instanceof Error && (e as { kind?: string }).kind === 'conflict')) throw e;
      }
    }
    const current = existing ?? (await this.get(p, u.username));
    const patch: Partial<UserRow> = {};
    if (u.email !== undefined) patch.email = u.email;
    if (u.firstname !== undefined) patch.firstname = u.firstname;
    if (u.lastname !== undefined) patch.lastname = u.lastname;
    if (u.active !== undefined) patch.active = u.active ? 1 : 0;
    if (u.admin !== undefined) patch.admin = u.admin ? 1 : 0;
    if (u.ldapDn !== undefined) patch.ldap_dn = u.ldapDn;
    // the same password again (create_user repeats it with every update) changes nothing
    if (u.password && !(current.password_hash && (await verifyPassword(u.password, current.password_hash)))) patch.password_hash = await hashPassword(u.password);
    if (Object.keys(patch).length) {
      // A new password or a deactivation signs the user out of the web everywhere, whichever
      // surface changed it (RPC, web, console): a session opened with the old password ends.
      const endSessions = patch.password_hash !== undefined || patch.active === 0;
      await this.store.transaction(async (tx) => {
        await this.store.updateUser(tx, current.id, patch);
        if (endSessions) await this.store.deleteWebSessionsOf(tx, current.id);
      });
      // which fields changed, and to what, but never the password itself
      const changed = Object.fromEntries(Object.entries(patch).map(([k, v]) => (k === 'password_hash' ? ['password', 'changed'] : [k, v])));
      await this.access.audit.record({ actor: p, action: 'user.update', target: { kind: 'user', id: current.id, name: current.username }, detail: changed });
    }
    return { user: { ...current, ...patch }, created: false };
  }

  /** Replaces every API key of a user with one new key, returned once. */
  async rotateApiKey(p: Principal, username: string): Promise<string> {
    await this.admin(p);
    const user = await this.store.findUserByName(this.store.db, username);
    if (!user) throw notFound(`User ${username} not found`, 'USER_NOT_FOUND');
    const key = newToken();
    const id = newId();
    const expiresAt = tokenExpiry(p, {}, this.opts.maxTokenLifetimeSeconds);
    await this.store.transaction(async (tx) => {
      await this.store.deleteTokensOf(tx, user.identity_id);
      await this.store.insertToken(tx, { id, identity_id: user.identity_id, token_hash: key.tokenHash, created_at: now(), expires_at: expiresAt });
    });
    await this.access.audit.record({ actor: p, action: 'token.rotate', target: { kind: 'user', id: user.id, name: user.username }, detail: { tokenId: id, expiresAt } });
    return key.token;
  }

  // ---- API keys: the tokens of a user's managed identity ----------------------------

  private issueKey(p: Principal, user: { id: string; username: string; identityId: string }, o: TokenOptions): Promise<CreatedToken> {
    return issueToken(this.store, this.access.audit, p, user.identityId, o, this.opts.maxTokenLifetimeSeconds, { user: user.username });
  }

  private async listKeys(identityId: string): Promise<TokenInfo[]> {
    return (await this.store.listTokens(this.store.db, identityId)).map(tokenInfo);
  }

  private revokeKey(p: Principal, identityId: string, rawId: string, username: string): Promise<boolean> {
    return revokeToken(this.store, this.access.audit, p, identityId, rawId, { user: username });
  }

  /** Issues an API key for the caller itself (`account:use`), shown once. */
  async createApiKey(p: Principal, o: TokenOptions): Promise<CreatedToken> {
    const u = await this.access.requireAccount(p);
    return this.issueKey(p, { id: u.userId, username: u.username, identityId: u.identityId }, o);
  }

  /** The caller's API keys (never their secrets). */
  async listApiKeys(p: Principal): Promise<TokenInfo[]> {
    return this.listKeys((await this.access.requireAccount(p)).identityId);
  }

  /** Revokes one of the caller's API keys; notFound API_KEY_NOT_FOUND when it holds no such key. */
  async revokeApiKey(p: Principal, keyId: string): Promise<void> {
    const u = await this.access.requireAccount(p);
    if (!(await this.revokeKey(p, u.identityId, keyId, u.username))) throw notFound('API key not found', 'API_KEY_NOT_FOUND');
  }

  /** Issues an API key for any user (admin), shown once. */
  async createApiKeyFor(p: Principal, username: string, o: TokenOptions): Promise<CreatedToken> {
    const u = await this.get(p, username);
    return this.issueKey(p, { id: u.id, username: u.username, identityId: u.identity_id }, o);
  }

  /** Any user's API keys (admin). */
  async listApiKeysFor(p: Principal, username: string): Promise<TokenInfo[]> {
    return this.listKeys((await this.get(p, username)).identity_id);
  }

  /** Revokes one of any user's API keys (admin); false when the user holds no such key. */
  async revokeApiKeyFor(p: Principal, username: string, keyId: string): Promise<boolean> {
    const u = await this.get(p, username);
    return this.revokeKey(p, u.identity_id, keyId, u.username);
  }

  /**
   * Ensures the `admin` user exists. Returns the API key when one was created
   * (from `apiKey` if given, else generated), undefined when admin existed.
   */
  async bootstrapAdmin(p: Principal, apiKey: string | undefined): Promise<{ apiKey: string; generated: boolean } | undefined> {
    if (await this.find(p, 'admin')) return undefined;
    try {
      const { apiKey: key } = await this.create(p, { username: 'admin', admin: true, apiKey });
      return { apiKey: key, generated: !apiKey };
    } catch (e) {
      // Another process created it between our look-up and insert: that one wins.
      if (e instanceof Error && 'kind' in e && (e as { kind: string }).kind === 'conflict') return undefined;
      throw e;
    }
  }

  /**
   * The one place a presented token becomes a principal: undefined when unknown, revoked or
   * expired (an expired token is refused exactly as a revoked one, on every surface). Its
   * `lastUsedAt` is written at most once a minute per token; an expired one is recorded in the
   * audit log (`token.expired`) at most once a minute per token.
   */
  private async lookupToken(token: string): Promise<Authenticated | undefined> {
    if (token.length === 0 || token.length > 512) return undefined;
    const tokenHash = hashToken(token);
    const o = await this.store.findTokenOwner(this.store.db, tokenHash);
    if (!o) return undefined;
    const at = Date.now();
    if (isExpired(o, at)) {
      await this.noteExpired(o, at);
      return undefined;
    }
    await this.touch(o, at);
    return { principal: principalOf(o), credential: { kind: 'token', tokenHash } };
  }

  /** Writes a token's lastUsedAt unless this process (or the row) says it was written within the minute. */
  private async touch(o: TokenOwner, at: number): Promise<void> {
    const last = this.touched.get(o.tokenId) ?? (o.lastUsedAt ? Date.parse(o.lastUsedAt) : 0);
    if (at - last < TOUCH_MS) return;
    if (this.touched.size >= 100_000) this.touched.clear();
    this.touched.set(o.tokenId, at);
    await this.store.touchToken(this.store.db, o.tokenId, new Date(at).toISOString()).catch(() => undefined);
  }

  private async noteExpired(o: TokenOwner, at: number): Promise<void> {
    const last = this.expiredSeen.get(o.tokenId);
    if (last !== undefined && at - last < TOUCH_MS) return;
    if (this.expiredSeen.size >= 100_000) this.expiredSeen.clear();
    this.expiredSeen.set(o.tokenId, at);
    await this.access.audit.record({
      actor: principalOf(o),
      action: 'token.expired',
      target: { kind: 'token', id: o.tokenId },
      outcome: 'denied',
      detail: { facts: [{ fact: 'credential', detail: `the token expired at ${o.expiresAt}`, decisive: true, level: 'none' }] },
    });
  }

  /**
   * Resolves a presented token (API key or identity access token) from the client at `from`;
   * undefined when unknown or revoked. Failures count against the address and the key's
   * prefix: past the limit, `RateLimited` without a look-up.
   */
  async principalForToken(token: string, from: string): Promise<Principal | undefined> {
    return (await this.authenticateToken(token, from))?.principal;
  }

  /** Like principalForToken, with the credential a long-lived session re-checks (SSH). */
  async authenticateToken(token: string, from: string): Promise<Authenticated | undefined> {
    // counted before the look-up: parallel guesses cannot all pass the check
    const attempt = this.limiter.begin(addressKey(from), `key:${token.slice(0, 16)}`);
    const a = await this.lookupToken(token);
    if (a) attempt.succeed();
    else attempt.fail();
    return a;
  }

  /**
   * Resolves HTTP Basic credentials (git, and REST callers that send them): user
   * `x-access-token` with any token, or a username with its password or one of its API keys.
   * Throws `unauthenticated` on anything else, without saying which part was wrong; failures
   * count against the address and the username (`RateLimited` past the limit, before scrypt).
   */
  async principalForBasic(username: string, password: string, from: string): Promise<Principal> {
    return (await this.authenticateBasic(username, password, from)).principal;
  }

  /** Like principalForBasic, with the credential a long-lived session re-checks (SSH passwords). */
  async authenticateBasic(username: string, password: string, from: string): Promise<Authenticated> {
    if (username.toLowerCase() === 'x-access-token') {
      const a = await this.authenticateToken(password, from);
      if (a) return a;
      throw unauthenticated('Invalid credentials');
    }
    const attempt = this.limiter.begin(addressKey(from), `user:${username.toLowerCase().slice(0, 64)}`);
    // A name no user can have is refused before the look-up: a NUL in it would reach PostgreSQL.
    if (usernameProblem(username)) {
      attempt.fail();
      throw unauthenticated('Invalid credentials');
    }
    const user = await this.store.findUserByName(this.store.db, username);
    if (user) {
      const asToken = await this.lookupToken(password);
      let a: Authenticated | undefined;
      if (asToken?.principal.kind === 'user' && asToken.principal.userId === user.id) a = asToken;
      else if (user.password_hash && (await verifyPassword(password, user.password_hash))) {
        a = { principal: userPrincipal(user), credential: { kind: 'password', userId: user.id, passwordHash: user.password_hash } };
      }
      if (a) {
        attempt.succeed();
        return a;
      }
    }
    attempt.fail();
    throw unauthenticated('Invalid credentials');
  }

  /**
   * Resolves a public key, by its fingerprint (`SHA256:…`), to the user or identity it is
   * registered to; undefined when no one registered it. The transport has verified the
   * client's signature with that key.
   */
  async authenticateKey(fingerprint: string): Promise<Authenticated | undefined> {
    const o = await this.store.findSshKeyOwner(this.store.db, fingerprint);
    return o && { principal: principalOf(o), credential: { kind: 'key', fingerprint, identityId: o.identityId } };
  }

  /**
   * Checks a session's credential again (a live SSH session, every few seconds): the
   * principal it resolves to now, or undefined when the token was revoked, the key removed,
   * the password changed, or the account (of the user, or of the identity) deactivated
   * (`requireActive: false`: the credential alone, whatever the account's state).
   */
  async revalidate(c: SessionCredential, o: { requireActive: boolean } = { requireActive: true }): Promise<Principal | undefined> {
    let p: Principal | undefined;
    if (c.kind === 'token') {
      const o = await this.store.findTokenOwner(this.store.db, c.tokenHash);
      // a token that expired since the session opened ends it, as a revoked one does
      p = o && !isExpired(o, Date.now()) ? principalOf(o) : undefined;
    } else if (c.kind === 'key') {
      const o = await this.store.findSshKeyOwner(this.store.db, c.fingerprint);
      p = o && o.identityId === c.identityId ? principalOf(o) : undefined;
    } else {
      const u = await this.store.findUserById(this.store.db, c.userId);
      p = u && u.password_hash === c.passwordHash ? userPrincipal(u) : undefined;
    }
    if (!p || !o.requireActive) return p;
    if (p.kind === 'user') return p.active ? p : undefined;
    if (p.kind === 'identity') {
      const account = await this.store.findUserById(this.store.db, p.accountId);
      return account?.active === 1 ? p : undefined;
    }
    return undefined;
  }
}

/** What a credential was resolved to, and what to re-check it by. */
export interface Authenticated {
  principal: Principal;
  credential: SessionCredential;
}

/** A credential as a long-lived session re-checks it: never the secret itself. */
export type SessionCredential =
  | { kind: 'token'; tokenHash: string }
  | { kind: 'key'; fingerprint: string; identityId: string }
  | { kind: 'password'; userId: string; passwordHash: string };

/** The principal of a user row (its managed identity's too). */
export const userPrincipal = (u: UserRow): Principal => ({ kind: 'user', userId: u.id, username: u.username, admin: u.admin === 1, active: u.active === 1, identityId: u.identity_id });

const isExpired = (o: { expiresAt: string | null }, at: number): boolean => o.expiresAt !== null && Date.parse(o.expiresAt) <= at;

/** The principal a credential resolves to; a token's end travels with it (every decision checks it). */
function principalOf(o: { identityId: string; accountId: string; userId: string | null; username: string | null; admin: number | null; active: number | null; expiresAt?: string | null }): Principal {
  const expiry = o.expiresAt ? { expiresAt: Date.parse(o.expiresAt) } : {};
  if (o.userId !== null) return { kind: 'user', userId: o.userId, username: o.username!, admin: o.admin === 1, active: o.active === 1, identityId: o.identityId, ...expiry };
  return { kind: 'identity', identityId: o.identityId, accountId: o.accountId, ...expiry };
}
