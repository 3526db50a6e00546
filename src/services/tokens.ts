import type { AuditLog } from '../access/index.ts';
import { invalid } from '../domain/errors.ts';
import type { Principal } from '../domain/access.ts';
import type { Store } from '../store/index.ts';
import { newId, newToken, now } from './secrets.ts';

/**
 * What a token's creator may choose, as the route schemas checked it: a label of at most 200
 * NUL-free characters; an end as an RFC 3339 time (`expiresAt`) or a number of seconds from
 * now (`ttlSeconds`, 1 to ten years), not both.
 */
export interface TokenOptions {
  name?: string | null;
  expiresAt?: string | null;
  ttlSeconds?: number | null;
}

/** A token as listings show it: never the secret. */
export interface TokenInfo {
  id: string;
  name: string | null;
  createdAt: string;
  expiresAt: string | null;
  lastUsedAt: string | null;
}

/** A token just created: the secret, shown this once. */
export interface CreatedToken extends Omit<TokenInfo, 'lastUsedAt'> {
  token: string;
}

export const tokenInfo = (r: { id: string; name: string | null; created_at: string; expires_at: string | null; last_used_at: string | null }): TokenInfo => ({
  id: r.id,
  name: r.name,
  createdAt: r.created_at,
  expiresAt: r.expires_at,
  lastUsedAt: r.last_used_at,
});

/**
 * When a new token expires (RFC 3339, or null: never). `maxLifetimeSeconds` is the server's
 * ceiling: a token asked without an end gets it, one asked beyond it is refused (400
 * TOKEN_LIFETIME_TOO_LONG, saying the ceiling); the console operator (`system`: the CLI and the
 * admin bootstrap) is not bound by it. An end in the past is refused too.
 */
export function tokenExpiry(p: Principal, o: TokenOptions, maxLifetimeSeconds: number | undefined, at = Date.now()): string | null {
  const hasAt = o.expiresAt !== undefined && o.expiresAt !== null;
  const hasTtl = o.ttlSeconds !== undefined && o.ttlSeconds !== null;
  if (hasAt && hasTtl) throw invalid('Give expiresAt or ttlSeconds, not both');
  let end: number | undefined;
  if (hasAt) {
    end = Date.parse(o.expiresAt!);
    if (Number.isNaN(end)) throw invalid('expiresAt must be an RFC 3339 date-time, e.g. 2030-01-01T00:00:00Z');
    if (end <= at) throw invalid('expiresAt is in the past');
  } else if (hasTtl) end = at + o.ttlSeconds! * 1000;
  const max = p.kind === 'system' ? undefined : maxLifetimeSeconds;
  if (max !== undefined) {
    const ceiling = at + max * 1000;
    if (end === undefined) end = ceiling;
    // a second of slack: "now" on the client and here differ a little
    else if (end > ceiling + 1000) throw invalid(`Tokens on this server live at most ${max} seconds (PALISADE_MAX_TOKEN_LIFETIME_SECONDS); ask for an earlier expiresAt or a smaller ttlSeconds`, 'TOKEN_LIFETIME_TOO_LONG');
  }
  return end === undefined ? null : new Date(end).toISOString();
}

/**
 * Makes a token of the identity `identityId` (an access token, or a user's API key: the tokens
 * of its managed identity), kept only as its hash, shown once in the answer, and records it in
 * the audit log with `detail` (who it is for). The caller has decided that `p` may.
 */
export async function issueToken(store: Store, audit: AuditLog, p: Principal, identityId: string, o: TokenOptions, maxLifetimeSeconds: number | undefined, detail: Record<string, unknown>): Promise<CreatedToken> {
  const expiresAt = tokenExpiry(p, o, maxLifetimeSeconds);
  const { token, tokenHash } = newToken();
  const row = { id: newId(), identity_id: identityId, token_hash: tokenHash, created_at: now(), name: o.name ?? null, expires_at: expiresAt };
  await store.insertToken(store.db, row);
  await audit.record({ actor: p, action: 'token.create', target: { kind: 'token', id: row.id, name: row.name }, detail: { ...detail, expiresAt } });
  return { id: row.id, token, name: row.name, createdAt: row.created_at, expiresAt };
}

/** Deletes the token `rawId` of the identity `identityId` and records it; false when it had none. The caller has decided. */
export async function revokeToken(store: Store, audit: AuditLog, p: Principal, identityId: string, rawId: string, detail: Record<string, unknown>): Promise<boolean> {
  const id = rawId.toLowerCase();
  const removed = await store.deleteToken(store.db, identityId, id);
  if (removed) await audit.record({ actor: p, action: 'token.revoke', target: { kind: 'token', id }, detail });
  return removed;
}
