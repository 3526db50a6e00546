import { type Action, actionLevel, Level, type Principal } from '../domain/access.ts';

/** Facts about a repository that a decision may use. */
export interface RepoFacts {
  visibility: 'public' | 'private';
  ownerId: string;
  /** the asking identity's own grant on this repository, if any */
  identityAccess: 'read' | 'write' | null;
  /** the asking user's own `repository.*` grant (0-3), if any */
  userLevel?: number | null;
  /** the strongest grant among the asking user's active groups (0-3), if any */
  groupLevel?: number | null;
  /**
   * whether the asking principal's account is active, read with the other facts: the user
   * itself, or the account that owns the asking identity (null: no such account)
   */
  accountActive?: boolean | null;
}

/** Facts about an identity that a decision may use. */
export interface IdentityFacts {
  accountId: string;
}

/**
 * The effective level a principal holds on a repository. Pure: every rule of
 * who may read, write or administer a repository is here and nowhere else.
 * - an inactive account holds nothing, and neither do the identities it owns
 *   (reactivating it restores both);
 * - admins and the owner hold admin;
 * - a user's explicit `repository.none` denies, whatever its groups hold and even
 *   on a public repository; otherwise the strongest of its own grant, its active
 *   groups' grants and the default for the visibility;
 * - an identity holds its grant (`write` implies `read`);
 * - everyone, anonymous included, reads a public repository.
 */
export function repoLevel(p: Principal, f: RepoFacts | undefined): Level {
  if (!f) return Level.None;
  const floor = f.visibility === 'public' ? Level.Read : Level.None;
  switch (p.kind) {
    case 'anonymous':
      return floor;
    case 'system':
      return Level.None;
    case 'user': {
      if (!p.active || f.accountActive === false || f.accountActive === null) return Level.None;
      if (p.admin || p.userId === f.ownerId) return Level.Admin;
      if (f.userLevel === Level.None) return Level.None;
      return Math.max(clamp(f.userLevel ?? 0), clamp(f.groupLevel ?? 0), floor);
    }
    case 'identity': {
      // the facts must say the owning account is active: an identity never outlives its account's state
      if (f.accountActive !== true) return Level.None;
      const granted = f.identityAccess === 'write' ? Level.Write : f.identityAccess === 'read' ? Level.Read : Level.None;
      return Math.max(granted, floor);
    }
  }
}

const clamp = (n: number): Level => (n >= Level.Admin ? Level.Admin : n <= Level.None ? Level.None : (Math.trunc(n) as Level));

/** The outcome of a decision: whether it is allowed, and whether the resource may be shown to exist. */
export interface Decision {
  allowed: boolean;
  /** false: answer as if the resource did not exist */
  visible: boolean;
  level: Level;
  /** why it was refused, in words that may be shown to the caller (vm:login) */
  reason?: string;
  /** vm:login: the Linux user the login is for (the VM's default when none was asked) */
  linuxUser?: string;
}

/** Facts about a VM and the asking identity that `vm:login` and `vm:manage` use. */
export interface VmFacts {
  /** the registered VM, if any */
  vm: { accountId: string; defaultUser: string } | undefined;
  /** the asking identity's grant on that VM id, if any (allowedUsers null: any user) */
  grant: { allowedUsers: string[] | null } | undefined;
  /** the asking identity's account, and whether it is active */
  identityAccountId: string | null;
  accountActive: boolean | null;
}

/**
 * Decides `vm:login`: an identity opens a VM as a Linux user when it holds a grant on that
 * VM id, the VM is registered by the identity's own account, that account is active, and the
 * grant's allowedUsers is null or holds the user (default: the VM's default user). The reason
 * of a refusal never tells a caller without a grant that the VM exists.
 */
export function decideVmLogin(p: Principal, f: VmFacts, linuxUser: string | undefined): Decision {
  const no = (reason: string): Decision => ({ allowed: false, visible: false, level: Level.None, reason });
  if (p.kind !== 'identity') return no('only identities log in to VMs');
  if (f.accountActive !== true || f.identityAccountId !== p.accountId) return no('account inactive');
  if (!f.grant) return no('no grant for this VM');
  if (!f.vm || f.vm.accountId !== f.identityAccountId) return no('VM not registered');
  const user = linuxUser ?? f.vm.defaultUser;
  if (f.grant.allowedUsers !== null && !f.grant.allowedUsers.includes(user)) return { ...no(`user ${user} not allowed`), visible: true, linuxUser: user };
  return { allowed: true, visible: true, level: Level.Write, linuxUser: user };
}

/** Decides `vm:manage`: the registering account and admins; missing and foreign look the same. */
export function decideVmManage(p: Principal, f: VmFacts['vm']): Decision {
  const ok = !!f && p.kind === 'user' && p.active && (p.admin || p.userId === f.accountId);
  return { allowed: ok, visible: ok, level: ok ? Level.Admin : Level.None };
}

/** Decides `action` on a repository given its facts (undefined: no such repository). */
export function decideRepo(p: Principal, action: Action, f: RepoFacts | undefined): Decision {
  const level = repoLevel(p, f);
  const need = actionLevel[action as keyof typeof actionLevel];
  if (need === undefined) return { allowed: false, visible: level >= Level.Read, level };
  return { allowed: level >= need, visible: level >= Level.Read, level };
}

/** Decides `identity:manage`: the owning account and admins manage an identity. */
export function decideIdentity(p: Principal, f: IdentityFacts | undefined): Decision {
  const ok = !!f && p.kind === 'user' && p.active && (p.admin || p.userId === f.accountId);
  return { allowed: ok, visible: ok, level: ok ? Level.Admin : Level.None };
}

/**
 * Decides the server-wide actions: `server:admin` (users, groups, everything-listings) for
 * active admins; `account:use` (create repositories and identities, list one's own) for any
 * active user, never for an identity token or an anonymous caller.
 */
export function decideServer(p: Principal, action: Action = 'server:admin'): Decision {
  const active = p.kind === 'user' && p.active;
  const admin = (active && p.kind === 'user' && p.admin) || p.kind === 'system';
  const ok = action === 'account:use' ? active : action === 'server:admin' ? admin : false;
  return { allowed: ok, visible: true, level: ok ? Level.Admin : Level.None };
}
