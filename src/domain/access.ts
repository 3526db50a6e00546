/**
 * One ordered access level for every principal. The seed-specific spellings
 * (`read|write` for identities, `repository.*` for users and groups) are codecs
 * at the edges, never compared directly.
 */
export enum Level {
  None = 0,
  Read = 1,
  Write = 2,
  Admin = 3,
}

export type IdentityAccess = 'read' | 'write';

export const identityAccessToLevel = (a: IdentityAccess): Level => (a === 'write' ? Level.Write : Level.Read);

/** Parses the Identity API spelling; undefined when it is not one. */
export function parseIdentityAccess(v: unknown): IdentityAccess | undefined {
  return v === 'read' || v === 'write' ? v : undefined;
}

/**
 * Actions a principal may ask to perform. `account:use` is what an account does on its own
 * behalf (create repositories and identities, list what it may see): an active user.
 */
export type Action = 'repo:read' | 'repo:write' | 'repo:admin' | 'identity:read' | 'identity:manage' | 'account:use' | 'server:admin' | 'vm:manage' | 'vm:login';

export const actionLevel: Record<'repo:read' | 'repo:write' | 'repo:admin', Level> = {
  'repo:read': Level.Read,
  'repo:write': Level.Write,
  'repo:admin': Level.Admin,
};

/**
 * Who is asking. Surfaces build one from credentials; services never see credentials.
 * `system` is the operator at the server's console (the CLI's admin commands, the admin
 * bootstrap): it administers the server and holds nothing on repositories; no network
 * surface ever builds it (test/arch keeps that). `expiresAt` (ms since the epoch) is when the
 * token the principal presented expires: every decision checks it against its own clock, so a
 * principal held past its token's end (a long push, a live session) holds nothing.
 */
export type Principal =
  /** `address`: the peer address of the request (what its process budget counts against) */
  | { kind: 'anonymous'; address?: string }
  | { kind: 'system' }
  | { kind: 'user'; userId: string; username: string; admin: boolean; active: boolean; identityId: string; expiresAt?: number }
  | { kind: 'identity'; identityId: string; accountId: string; expiresAt?: number };

/** An anonymous caller outside any request (one shared budget); a surface builds `anonymousFrom` its peer. */
export const ANONYMOUS: Principal = Object.freeze({ kind: 'anonymous' });
/** The anonymous caller of a request from `address`: an anonymous budget is its address's. */
export const anonymousFrom = (address: string | undefined): Principal => (address ? { kind: 'anonymous', address } : ANONYMOUS);
/** The console operator: for `cli/` only. */
export const SYSTEM: Principal = Object.freeze({ kind: 'system' });

/** What the action is about. */
export type Resource =
  | { kind: 'repo'; repoId: string }
  /** `accountId`, when the caller already loaded the identity, saves the look-up */
  | { kind: 'identity'; identityId: string; accountId?: string }
  /** a VM of the registry; `linuxUser` (vm:login) defaults to the VM's default user */
  | { kind: 'vm'; vmId: string; linuxUser?: string }
  | { kind: 'server' };

/**
 * Ref rules on an identity's git grant: the refs it may move (`allow`, minus `deny`; glob
 * patterns over full ref names, `*` matching any characters, `/` included), whether it may
 * move one to a commit that does not descend from the old (`forcePush`) and delete one
 * (`deleteRefs`). A grant without rules moves any ref, forced or not, deletions included.
 */
export interface RefRules {
  allow: string[];
  deny: string[];
  forcePush: boolean;
  deleteRefs: boolean;
}

const REPO_PERMS = ['repository.none', 'repository.read', 'repository.write', 'repository.admin'] as const;
export type RepoPerm = (typeof REPO_PERMS)[number];

/** Parses seed 002's `repository.*` spelling into the one level; undefined when it is not one. */
export function parseRepoPerm(v: unknown): Level | undefined {
  const i = REPO_PERMS.indexOf(v as RepoPerm);
  return i < 0 ? undefined : (i as Level);
}

/** The `repository.*` spelling of a level. */
export const repoPermOf = (l: Level): RepoPerm => REPO_PERMS[Math.max(0, Math.min(3, l))]!;
