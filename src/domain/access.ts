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
export type Action = 'repo:read' | 'repo:write' | 'repo:admin' | 'identity:manage' | 'account:use' | 'server:admin' | 'vm:manage' | 'vm:login';

export const actionLevel: Record<'repo:read' | 'repo:write' | 'repo:admin', Level> = {
  'repo:read': Level.Read,
  'repo:write': Level.Write,
  'repo:admin': Level.Admin,
};

/**
 * Who is asking. Surfaces build one from credentials; services never see credentials.
 * `system` is the operator at the server's console (the CLI's admin commands, the admin
 * bootstrap): it administers the server and holds nothing on repositories; no network
 * surface ever builds it (test/arch keeps that).
 */
export type Principal =
  | { kind: 'anonymous' }
  | { kind: 'system' }
  | { kind: 'user'; userId: string; username: string; admin: boolean; active: boolean; identityId: string }
  | { kind: 'identity'; identityId: string; accountId: string };

export const ANONYMOUS: Principal = Object.freeze({ kind: 'anonymous' });
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

const REPO_PERMS = ['repository.none', 'repository.read', 'repository.write', 'repository.admin'] as const;
export type RepoPerm = (typeof REPO_PERMS)[number];

/** Parses seed 002's `repository.*` spelling into the one level; undefined when it is not one. */
export function parseRepoPerm(v: unknown): Level | undefined {
  const i = REPO_PERMS.indexOf(v as RepoPerm);
  return i < 0 ? undefined : (i as Level);
}

/** The `repository.*` spelling of a level. */
export const repoPermOf = (l: Level): RepoPerm => REPO_PERMS[Math.max(0, Math.min(3, l))]!;
