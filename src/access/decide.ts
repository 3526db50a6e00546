import { type Action, actionLevel, Level, type Principal, type RefRules } from '../domain/access.ts';
import { globMatch } from '../domain/validate.ts';

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
   * the asking user's active groups' grants by name (an explanation reads them; `groupLevel`
   * is their strongest, and what a decision reads when they are absent)
   */
  groups?: readonly { name: string; level: number }[];
  /**
   * whether the asking principal's account is active, read with the other facts: the user
   * itself, or the account that owns the asking identity (null: no such account)
   */
  accountActive?: boolean | null;
  /** the ref rules on the asking identity's grant (null or absent: none) */
  refRules?: RefRules | null;
  /** the repository's protected branch patterns (`main`, `release/*`) */
  protectedBranches?: readonly string[];
  /** the decision's clock (ms since the epoch), against which an expiring principal is checked; absent: not checked */
  now?: number;
}

/** Facts about an identity that a decision may use. */
export interface IdentityFacts {
  accountId: string;
  /** the identity's own id (identity:read by the identity itself compares it) */
  identityId?: string;
  /** whether that account is active (identity:read by the identity itself needs it) */
  accountActive?: boolean | null;
}

/** The names of the ordered level, as explanations and the audit log spell them. */
export type LevelName = 'none' | 'read' | 'write' | 'admin';
const LEVEL_NAMES: readonly LevelName[] = ['none', 'read', 'write', 'admin'];
export const levelName = (l: Level): LevelName => LEVEL_NAMES[l] ?? 'none';

/**
 * One fact a decision weighed, in the order it weighed them. Level facts (`level`) say what the
 * fact alone would give; ref facts (`effect`) allow or refuse one ref. `decisive` marks the fact
 * that settled the outcome. The same list explains a decision (`explain`) and is what a denial
 * writes to the audit log.
 */
export interface Fact {
  fact: 'repository' | 'credential' | 'account' | 'admin' | 'owner' | 'userGrant' | 'groupGrant' | 'identityGrant' | 'visibility' | 'sync' | 'refRule' | 'protectedBranch';
  detail: string;
  decisive: boolean;
  /** what this fact alone gives */
  level?: LevelName;
  /** for ref facts: what it does to the ref */
  effect?: 'allow' | 'deny' | 'fastForwardOnly';
  /** a group's name, a rule's or protected branch's pattern */
  name?: string;
}

const fact = (f: Fact['fact'], detail: string, more: Partial<Fact> = {}): Fact => ({ fact: f, detail, decisive: false, ...more });

/** The level a principal holds on a repository and the facts, in order, that made it. */
export interface Evaluation {
  level: Level;
  facts: Fact[];
}

/** The one check of a credential's end: a principal whose token has expired holds nothing. */
const expired = (p: { expiresAt?: number }, f: { now?: number }): boolean => p.expiresAt !== undefined && f.now !== undefined && f.now >= p.expiresAt;

/** Picks the first level fact giving `level` as the decisive one, and returns the evaluation. */
function settle(level: Level, facts: Fact[]): Evaluation {
  const name = levelName(level);
  const hit = facts.find((x) => x.level === name);
  if (hit) hit.decisive = true;
  return { level, facts };
}

/**
 * The effective level a principal holds on a repository, with the facts that made it, in the
 * order they were weighed. Pure: every rule of who may read, write or administer a repository
 * is here and nowhere else.
 * - an expired credential holds nothing, and neither does an inactive account or the
 *   identities it owns (reactivating it restores both);
 * - admins and the owner hold admin;
 * - a user's explicit `repository.none` denies, whatever its groups hold and even
 *   on a public repository; otherwise the strongest of its own grant, its active
 *   groups' grants and the default for the visibility;
 * - an identity holds its grant (`write` implies `read`);
 * - everyone, anonymous included, reads a public repository.
 */
export function evaluateRepo(p: Principal, f: RepoFacts | undefined): Evaluation {
  if (!f) return { level: Level.None, facts: [fact('repository', 'no such repository', { decisive: true, level: 'none' })] };
  const floor = f.visibility === 'public' ? Level.Read : Level.None;
  const visibility = () => fact('visibility', f.visibility === 'public' ? 'public: everyone may read it' : 'private: nothing by default', { level: levelName(floor) });
  switch (p.kind) {
    case 'anonymous':
      return settle(floor, [visibility()]);
    case 'system':
      return { level: Level.None, facts: [fact('account', 'the console operator holds nothing on repositories', { decisive: true, level: 'none' })] };
    case 'user': {
      if (expired(p, f)) return { level: Level.None, facts: [fact('credential', `the API key expired at ${new Date(p.expiresAt!).toISOString()}`, { decisive: true, level: 'none' })] };
      if (!p.active || f.accountActive === false || f.accountActive === null) return { level: Level.None, facts: [fact('account', `user ${p.username} is inactive`, { decisive: true, level: 'none' })] };
      if (p.admin) return { level: Level.Admin, facts: [fact('admin', `${p.username} is a server administrator`, { decisive: true, level: 'admin' })] };
      if (p.userId === f.ownerId) return { level: Level.Admin, facts: [fact('owner', `${p.username} owns the repository`, { decisive: true, level: 'admin' })] };
      const facts: Fact[] = [];
      if (f.userLevel !== undefined && f.userLevel !== null) {
        const own = clamp(f.userLevel);
        // an explicit repository.none on the user itself overrides its groups and the visibility
        if (own === Level.None) return { level: Level.None, facts: [fact('userGrant', `${p.username}'s own grant is repository.none, which overrides groups and visibility`, { decisive: true, level: 'none' })] };
        facts.push(fact('userGrant', `${p.username}'s own grant`, { level: levelName(own) }));
      }
      let group = Level.None;
      if (f.groups) {
        for (const g of f.groups) {
          const l = clamp(g.level);
          group = Math.max(group, l);
          facts.push(fact('groupGrant', `grant of users group ${g.name}`, { level: levelName(l), name: g.name }));
        }
      } else if (f.groupLevel !== undefined && f.groupLevel !== null) {
        group = clamp(f.groupLevel);
        facts.push(fact('groupGrant', 'the strongest grant of its active users groups', { level: levelName(group) }));
      }
      facts.push(visibility());
      return settle(Math.max(clamp(f.userLevel ?? 0), group, floor), facts);
    }
    case 'identity': {
      if (expired(p, f)) return { level: Level.None, facts: [fact('credential', `the access token expired at ${new Date(p.expiresAt!).toISOString()}`, { decisive: true, level: 'none' })] };
      // the facts must say the owning account is active: an identity never outlives its account's state
      if (f.accountActive !== true) return { level: Level.None, facts: [fact('account', "the identity's account is inactive or gone", { decisive: true, level: 'none' })] };
      const granted = f.identityAccess === 'write' ? Level.Write : f.identityAccess === 'read' ? Level.Read : Level.None;
      const facts = [f.identityAccess ? fact('identityGrant', `the identity's grant: ${f.identityAccess}`, { level: levelName(granted) }) : fact('identityGrant', 'the identity holds no grant on this repository', { level: 'none' })];
      facts.push(visibility());
      if (granted > Level.None && f.refRules) facts.push(fact('refRule', `the grant's ref rules: allow ${f.refRules.allow.join(', ') || 'nothing'}${f.refRules.deny.length ? `, deny ${f.refRules.deny.join(', ')}` : ''}; force push ${f.refRules.forcePush ? 'allowed' : 'refused'}; deletion ${f.refRules.deleteRefs ? 'allowed' : 'refused'}`));
      return settle(Math.max(granted, floor), facts);
    }
  }
}

/** The effective level a principal holds on a repository (see `evaluateRepo`). */
export function repoLevel(p: Principal, f: RepoFacts | undefined): Level {
  return evaluateRepo(p, f).level;
}

const clamp = (n: number): Level => (n >= Level.Admin ? Level.Admin : n <= Level.None ? Level.None : (Math.trunc(n) as Level));

/** The outcome of a decision: whether it is allowed, and whether the resource may be shown to exist. */
export interface Decision {
  allowed: boolean;
  /** false: answer as if the resource did not exist */
  visible: boolean;
  level: Level;
  /** why it was refused, in words that may be shown to the caller (vm:login; refs: without the ref's name) */
  reason?: string;
  /** vm:login: the Linux user the login is for (the VM's default when none was asked) */
  linuxUser?: string;
  /** repository decisions: the facts weighed, in order (see `Fact`) */
  facts?: Fact[];
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

/**
 * What asking why `username` holds what it holds on a repository needs: a user asking about
 * itself, read (a hidden repository stays hidden); anyone else, admin on the repository.
 */
export function explainAction(p: Principal, username: string): 'repo:read' | 'repo:admin' {
  return p.kind === 'user' && p.username.toLowerCase() === username.toLowerCase() ? 'repo:read' : 'repo:admin';
}

/** Decides `action` on a repository given its facts (undefined: no such repository). */
export function decideRepo(p: Principal, action: Action, f: RepoFacts | undefined): Decision {
  const { level, facts } = evaluateRepo(p, f);
  const need = actionLevel[action as keyof typeof actionLevel];
  if (need === undefined) return { allowed: false, visible: level >= Level.Read, level, facts };
  return { allowed: level >= need, visible: level >= Level.Read, level, facts };
}

/** One ref a write would move: created (old is zero), deleted (new is zero) or updated. */
export interface RefUpdate {
  ref: string;
  op: 'create' | 'update' | 'delete';
  /**
   * for an update: whether the new commit does not descend from the old; undefined when that is
   * not known yet (a push, before its objects have arrived)
   */
  force?: boolean;
}

/** The decision on one ref. */
export interface RefDecision extends Decision {
  ref: string;
  /**
   * allowed only if the update turns out to be a fast-forward (its `force` was not known): the
   * caller must check that before the ref moves, and refuse with `fastForwardReason` otherwise
   */
  fastForwardOnly: boolean;
  fastForwardReason?: string;
}

/** The branch name of a `refs/heads/` ref, or undefined. */
const branchOf = (ref: string): string | undefined => (ref.startsWith('refs/heads/') ? ref.slice('refs/heads/'.length) : undefined);

/**
 * Decides one ref of a write (a push, a commit, a branch creation, a sync), before any ref
 * moves. `p` undefined is the repository's own github-sync link running in the background: it
 * writes as its link was configured, but protected branches bind it. Rules, in order:
 * - the principal must hold write on the repository (`evaluateRepo`);
 * - administrators (server admins, owners, `repository.admin`) are bound by nothing more;
 * - an identity whose grant carries ref rules moves only refs matching an `allow` pattern and
 *   no `deny` pattern, deletes only with `deleteRefs`, force-pushes only with `forcePush`;
 * - a protected branch (a `refs/heads/` ref matching one of the repository's patterns) is
 *   never deleted nor force-pushed below admin.
 * When force is not known yet and one of the last two rules forbids it, the decision allows the
 * ref as `fastForwardOnly`.
 */
export function decideRef(p: Principal | undefined, f: RepoFacts | undefined, u: RefUpdate): RefDecision {
  const base: Evaluation = p ? evaluateRepo(p, f) : f ? { level: Level.Write, facts: [fact('sync', "the repository's github-sync link writes as it was configured", { decisive: true, level: 'write' })] } : evaluateRepo({ kind: 'anonymous' }, f);
  const facts = base.facts;
  const out = (allowed: boolean, reason?: string, ff?: string): RefDecision => ({ ref: u.ref, allowed, visible: base.level >= Level.Read, level: base.level, facts, fastForwardOnly: !!ff, ...(reason ? { reason } : {}), ...(ff ? { fastForwardReason: ff } : {}) });
  if (base.level < Level.Write) return out(false, 'write access to this repository is required');
  const branch = branchOf(u.ref);
  const protectedBy = branch === undefined ? undefined : f!.protectedBranches?.find((pat) => globMatch(pat, branch));
  if (base.level >= Level.Admin) {
    if (protectedBy) facts.push(fact('protectedBranch', `branch ${branch} is protected (${protectedBy}); administrators are not bound by it`, { name: protectedBy, effect: 'allow' }));
    return out(true);
  }
  // the level facts settled the level; a ref fact that refuses settles the outcome instead
  const deny = (x: Fact, reason: string): RefDecision => {
    for (const y of facts) y.decisive = false;
    facts.push({ ...x, decisive: true, effect: 'deny' });
    return out(false, reason);
  };
  let ff: string | undefined;
  const rules = p?.kind === 'identity' ? f!.refRules : undefined;
  if (rules) {
    const allow = rules.allow.find((pat) => globMatch(pat, u.ref));
    if (!allow) return deny(fact('refRule', `${u.ref} matches none of the refs the grant allows (${rules.allow.join(', ') || 'none'})`), 'not among the refs this grant allows');
    const denied = rules.deny.find((pat) => globMatch(pat, u.ref));
    if (denied) return deny(fact('refRule', `${u.ref} matches the denied pattern ${denied}`, { name: denied }), `matches a pattern this grant denies (${denied})`);
    facts.push(fact('refRule', `${u.ref} matches the allowed pattern ${allow}`, { effect: 'allow', name: allow }));
    if (u.op === 'delete' && !rules.deleteRefs) return deny(fact('refRule', 'the grant does not allow deleting refs (deleteRefs)'), 'this grant does not allow deleting refs');
    if (u.op === 'update' && !rules.forcePush) {
      if (u.force === true) return deny(fact('refRule', 'the grant does not allow force pushes (forcePush)'), 'this grant does not allow force pushes');
      if (u.force === undefined) {
        ff = 'this grant does not allow force pushes';
        facts.push(fact('refRule', 'the grant does not allow force pushes: fast-forward only', { effect: 'fastForwardOnly' }));
      }
    }
  }
  if (protectedBy) {
    if (u.op === 'delete') return deny(fact('protectedBranch', `branch ${branch} is protected (${protectedBy}): it cannot be deleted`, { name: protectedBy }), 'protected branch: it cannot be deleted');
    if (u.op === 'update') {
      if (u.force === true) return deny(fact('protectedBranch', `branch ${branch} is protected (${protectedBy}): no force push`, { name: protectedBy }), 'protected branch: no force push');
      if (u.force === undefined) {
        ff ??= 'protected branch: no force push';
        facts.push(fact('protectedBranch', `branch ${branch} is protected (${protectedBy}): fast-forward only`, { effect: 'fastForwardOnly', name: protectedBy }));
      }
    }
  }
  return out(true, undefined, ff);
}

/**
 * Decides `identity:manage` (the owning account and admins manage an identity) and
 * `identity:read` (the same, and the identity itself while its account is active: an identity
 * token reads its own identity, tokens and grants).
 */
export function decideIdentity(p: Principal, f: IdentityFacts | undefined, action: 'identity:manage' | 'identity:read' = 'identity:manage'): Decision {
  const manage = !!f && p.kind === 'user' && p.active && (p.admin || p.userId === f.accountId);
  // an identity sees itself (a change it asks for is refused, not hidden); reading needs its account active
  const self = !!f && p.kind === 'identity' && p.identityId === f.identityId && f.accountActive !== false;
  const ok = manage || (action === 'identity:read' && self && f!.accountActive === true);
  return { allowed: ok, visible: manage || self, level: manage ? Level.Admin : ok ? Level.Read : Level.None };
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
