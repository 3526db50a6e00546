import { type Action, type Principal, type RefRules, type Resource } from '../domain/access.ts';
import { AccessDenied, type DeniedResource, forbidden } from '../domain/errors.ts';
import { anonymousAccessFacts, type Conn, type IdentityRow, type RepoAccessFacts, type RepoRow, type Store } from '../store/index.ts';
import { type AuditEvent, AuditLog } from './audit.ts';
import { type Decision, decideIdentity, decideRef, decideRepo, decideServer, decideVmLogin, decideVmManage, evaluateRepo, type Fact, type RefDecision, type RefUpdate, type RepoFacts } from './decide.ts';

export { repoLevel, evaluateRepo, explainAction, decideRepo, decideRef, decideIdentity, decideServer, decideVmLogin, decideVmManage, levelName } from './decide.ts';
export type { Decision, Fact, RefDecision, RefUpdate, RepoFacts, LevelName } from './decide.ts';
export { AuditLog, type AuditEvent, type AuditTarget } from './audit.ts';

/** A principal that acts as an account: an active user. */
export type AccountPrincipal = Extract<Principal, { kind: 'user' }>;

const NOUN: Record<DeniedResource, string> = { repo: 'Repository', identity: 'Identity', vm: 'VM', server: 'Resource' };

/** Parsed ref rules by their stored JSON: the same few strings come back on every decision. */
const rulesCache = new Map<string, RefRules>();
/** A stored rule set that cannot be read refuses everything (it never happens: the services write them). */
const NOTHING: RefRules = Object.freeze({ allow: [], deny: [], forcePush: false, deleteRefs: false }) as RefRules;

function parseRules(json: string | null): RefRules | null {
  if (json === null) return null;
  let r = rulesCache.get(json);
  if (!r) {
    try {
      const v = JSON.parse(json) as Partial<RefRules>;
      r = { allow: Array.isArray(v.allow) ? v.allow : [], deny: Array.isArray(v.deny) ? v.deny : [], forcePush: v.forcePush === true, deleteRefs: v.deleteRefs === true };
    } catch {
      r = NOTHING;
    }
    if (rulesCache.size >= 1000) rulesCache.clear();
    rulesCache.set(json, r);
  }
  return r;
}

function parseList(json: string | null): string[] | undefined {
  if (json === null) return undefined;
  try {
    const v = JSON.parse(json) as unknown;
    return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : undefined;
  } catch {
    return undefined;
  }
}

/** The facts of one query, as the pure decision reads them (the clock included). */
function toFacts(f: RepoAccessFacts): RepoFacts {
  return {
    visibility: f.visibility,
    ownerId: f.ownerId,
    identityAccess: f.identityAccess,
    userLevel: f.userLevel,
    groupLevel: f.groupLevel,
    accountActive: f.accountActive === null ? null : Number(f.accountActive) === 1,
    refRules: parseRules(f.refRules),
    protectedBranches: parseList(f.protectedBranches),
    now: Date.now(),
  };
}

const asking = (p: Principal | undefined) => (p?.kind === 'identity' ? { identityId: p.identityId } : p?.kind === 'user' ? { userId: p.userId, identityId: p.identityId } : {});

/** An identity token reading its own identity: the row's account, and whether that account is active. */
const selfReadFacts = (row: (IdentityRow & { account_active: number | null }) | undefined) => row && { accountId: row.account_id, identityId: row.id, accountActive: row.account_active === null ? null : Number(row.account_active) === 1 };

/**
 * The single decision point: "may this principal do this action on this resource". One
 * query for the facts, then a pure decision. Every surface calls it, through the services;
 * none compares levels itself. It is also the one place where a refused decision becomes an
 * error (`AccessDenied`), whose meaning each surface maps to its own codes, and where that
 * refusal is written to the audit log with the facts that decided it.
 */
export class Access {
  readonly audit: AuditLog;

  constructor(
    private readonly store: Store,
    audit?: AuditLog,
  ) {
    this.audit = audit ?? new AuditLog(store);
  }

  private async repoFacts(c: Conn, repoId: string, p: Principal | undefined): Promise<RepoFacts | undefined> {
    const row = await this.store.repoAccessFacts(c, repoId, asking(p));
    return row && toFacts(row);
  }

  async authorize(p: Principal, action: Action, r: Resource, c: Conn = this.store.db): Promise<Decision> {
    switch (r.kind) {
      case 'repo':
        return decideRepo(p, action, await this.repoFacts(c, r.repoId, p));
      case 'identity': {
        const act = action === 'identity:read' ? 'identity:read' : 'identity:manage';
        if (act === 'identity:read' && p.kind === 'identity') {
          // an identity reads itself while its account is active: the account's state is a fact
          return decideIdentity(p, selfReadFacts(await this.store.findIdentityWithAccount(c, r.identityId)), act);
        }
        if (r.accountId !== undefined) return decideIdentity(p, { accountId: r.accountId, identityId: r.identityId }, act);
        const row = await this.store.findIdentity(c, r.identityId);
        return decideIdentity(p, row && { accountId: row.account_id, identityId: row.id }, act);
      }
      case 'vm': {
        if (action === 'vm:login') {
          if (p.kind !== 'identity') return decideVmLogin(p, { vm: undefined, grant: undefined, identityAccountId: null, accountActive: null }, r.linuxUser);
          const f = await this.store.vmAccessFacts(c, r.vmId, p.identityId);
          return decideVmLogin(
            p,
            {
              vm: f.vmAccountId ? { accountId: f.vmAccountId, defaultUser: f.defaultUser! } : undefined,
              grant: f.hasGrant ? { allowedUsers: f.allowedUsers === null ? null : (JSON.parse(f.allowedUsers) as string[]) } : undefined,
              identityAccountId: f.identityAccountId,
              accountActive: f.accountActive === null ? null : f.accountActive === 1,
            },
            r.linuxUser,
          );
        }
        const vm = await this.store.findVm(c, r.vmId);
        return decideVmManage(p, vm && { accountId: vm.account_id, defaultUser: vm.default_user });
      }
      case 'server':
        return decideServer(p, action);
    }
  }

  /** True when `p` may act as an administrator of the whole server. */
  async isServerAdmin(p: Principal): Promise<boolean> {
    return (await this.authorize(p, 'server:admin', { kind: 'server' })).allowed;
  }

  /**
   * Decides each ref of a write (a push's commands, a commit's branch, a sync's moves) in one
   * query for the facts, before any ref moves. `p` undefined: the repository's own github-sync
   * link, working in the background.
   */
  async authorizeRefs(p: Principal | undefined, repoId: string, updates: readonly RefUpdate[], c: Conn = this.store.db): Promise<RefDecision[]> {
    const facts = await this.repoFacts(c, repoId, p);
    return updates.map((u) => decideRef(p, facts, u));
  }

  /**
   * Like authorizeRefs, but a write with any ref refused is refused whole: `AccessDenied`
   * (forbidden; its subject the first refused ref, its message that ref and why), recorded in
   * the audit log. Returns the decisions (some may be allowed only as fast-forwards).
   */
  async requireRefs(p: Principal | undefined, repo: RepoRow, updates: readonly RefUpdate[]): Promise<RefDecision[]> {
    const decisions = await this.authorizeRefs(p, repo.id, updates);
    const bad = decisions.find((d) => !d.allowed);
    if (!bad) return decisions;
    await this.audit.record({ actor: p, action: 'ref.denied', target: { kind: 'repo', id: repo.id, name: repo.name }, outcome: 'denied', detail: { ref: bad.ref, reason: bad.reason, refs: decisions.map((d) => d.ref), facts: bad.facts } });
    if (p?.kind === 'anonymous') throw new AccessDenied('unauthenticated', 'repo', 'ref:update', bad.ref, 'Authentication required');
    if (p && !bad.visible) throw new AccessDenied('notFound', 'repo', 'ref:update', repo.name ?? repo.id, `Repository not found: ${repo.name ?? repo.id}`);
    throw new AccessDenied('forbidden', 'repo', 'ref:update', bad.ref, `${bad.ref}: ${bad.reason ?? 'not allowed'}`);
  }

  /** Records a ref refused after the decision (a fast-forward-only ref that turned out forced). */
  async recordRefRefused(p: Principal | undefined, repo: RepoRow, ref: string, reason: string): Promise<void> {
    await this.audit.record({ actor: p, action: 'ref.denied', target: { kind: 'repo', id: repo.id, name: repo.name }, outcome: 'denied', detail: { ref, reason, facts: [{ fact: 'refRule', detail: `${ref} would not fast-forward: ${reason}`, decisive: true, effect: 'deny' } satisfies Fact] } });
  }

  /**
   * Explains the decision on a repository for `p`: the effective level and the facts, in order,
   * that made it (the user's group grants listed by name), and with `update` the decision on
   * that ref. The same function decides every request; this only asks it with the groups named.
   */
  async explain(p: Principal, repoId: string, update?: RefUpdate): Promise<{ level: number; facts: Fact[]; ref?: RefDecision }> {
    const facts = await this.repoFacts(this.store.db, repoId, p);
    if (facts && p.kind === 'user') facts.groups = await this.store.listUserGroupGrants(this.store.db, p.userId, repoId);
    const ev = evaluateRepo(p, facts);
    return { level: ev.level, facts: ev.facts, ...(update ? { ref: decideRef(p, facts, update) } : {}) };
  }

  /**
   * Turns a refused decision into the error: `unauthenticated` for an anonymous caller (who
   * might get further with credentials), `notFound` when the resource must not be revealed,
   * `forbidden` when it is visible but the action is not allowed. `shownAs` names the
   * resource in the message as the caller named it. A refusal of an authenticated caller about
   * a resource that exists is written to the audit log with the decision's facts (in the
   * background: `recorded` settles when it is written).
   */
  private refuse(p: Principal, action: Action, d: Decision, resource: DeniedResource, shownAs: string, target: AuditEvent['target'] | undefined): { error: AccessDenied; recorded: Promise<void> } {
    const subject = shownAs.slice(0, 200);
    const recorded = p.kind !== 'anonymous' && target ? this.audit.record({ actor: p, action: 'access.denied', target, outcome: 'denied', detail: { action, level: d.level, ...(d.reason ? { reason: d.reason } : {}), ...(d.facts ? { facts: d.facts } : {}) } }) : Promise.resolve();
    if (p.kind === 'anonymous') return { error: new AccessDenied('unauthenticated', resource, action, subject, 'Authentication required'), recorded };
    if (!d.visible) return { error: new AccessDenied('notFound', resource, action, subject, `${NOUN[resource]} not found: ${subject}`), recorded };
    return { error: new AccessDenied('forbidden', resource, action, subject, `Permission denied: ${action} needed`), recorded };
  }

  private async raise(p: Principal, action: Action, d: Decision, resource: DeniedResource, shownAs: string, target: AuditEvent['target'] | undefined): Promise<never> {
    // The record is written beside the answer, not before it: a refusal costs the caller no
    // database write (and record() never throws).
    throw this.refuse(p, action, d, resource, shownAs, target).error;
  }

  /** Decides `action` on `r` and throws `AccessDenied` when refused. */
  async require(p: Principal, action: Action, r: Resource, shownAs = ''): Promise<Decision> {
    const d = await this.authorize(p, action, r);
    if (!d.allowed) {
      const id = r.kind === 'repo' ? r.repoId : r.kind === 'identity' ? r.identityId : r.kind === 'vm' ? r.vmId : '';
      // a resource that does not exist (or cannot be told from one) is a not-found, not a refusal worth recording
      const exists = r.kind === 'server' || (r.kind === 'repo' ? d.facts?.[0]?.fact !== 'repository' : d.visible);
      await this.raise(p, action, d, r.kind, shownAs || id, exists ? { kind: r.kind, id: id || null } : undefined);
    }
    return d;
  }

  /** Like require, for a repository that may not exist (`undefined`): missing and hidden look the same. */
  async requireRepo(p: Principal, action: Action, row: RepoRow | undefined, shownAs: string): Promise<RepoRow> {
    // An anonymous caller has no grants: the row just read holds every fact its decision needs
    // (what the facts query answers for no identity and no user), without a second query.
    const d = !row ? decideRepo(p, action, undefined) : p.kind === 'anonymous' ? decideRepo(p, action, toFacts(anonymousAccessFacts(row))) : await this.authorize(p, action, { kind: 'repo', repoId: row.id });
    if (!d.allowed || !row) await this.raise(p, action, d, 'repo', shownAs, row && { kind: 'repo', id: row.id, name: row.name });
    return row!;
  }

  /** Like require, for an identity that may not exist: missing and foreign look the same. */
  requireIdentity(p: Principal, row: IdentityRow | undefined, shownAs: string): IdentityRow {
    const d = decideIdentity(p, row && { accountId: row.account_id, identityId: row.id });
    if (!d.allowed || !row) throw this.refuse(p, 'identity:manage', d, 'identity', shownAs, row && { kind: 'identity', id: row.id }).error;
    return row;
  }

  /**
   * An identity the caller manages, looked up by its id (stored lowercase; a schema accepts a
   * UUID in any case): a missing and a foreign one look the same. `modify`: not a managed
   * identity either (those change only through their user's own endpoints).
   */
  async manageableIdentity(p: Principal, rawId: string, o: { modify?: boolean } = {}): Promise<IdentityRow> {
    await this.requireAccount(p);
    const id = rawId.toLowerCase();
    // one look-up: the row's account is the only fact the decision needs
    const row = this.requireIdentity(p, await this.store.findIdentity(this.store.db, id), id);
    if (o.modify && row.managed) throw forbidden('Cannot modify managed identities', 'CANNOT_MODIFY_MANAGED_IDENTITY');
    return row;
  }

  /**
   * An identity the caller may read, looked up by its id: its account and the server's admins
   * read it as they manage it; an identity token reads its own identity while the account is
   * active. Missing and foreign look the same.
   */
  async readableIdentity(p: Principal, rawId: string): Promise<IdentityRow> {
    if (p.kind !== 'identity') return this.manageableIdentity(p, rawId);
    const id = rawId.toLowerCase();
    // one look-up: the row and its account's state are the decision's facts
    const row = await this.store.findIdentityWithAccount(this.store.db, id);
    const d = decideIdentity(p, selfReadFacts(row), 'identity:read');
    if (!d.allowed || !row) await this.raise(p, 'identity:read', d, 'identity', id, d.visible ? { kind: 'identity', id } : undefined);
    const { account_active: _, ...identity } = row!;
    return identity;
  }

  /** The caller as an account (`account:use`: an active user), or AccessDenied. */
  async requireAccount(p: Principal): Promise<AccountPrincipal> {
    const d = decideServer(p, 'account:use');
    if (!d.allowed || p.kind !== 'user') await this.raise(p, 'account:use', { ...d, visible: true }, 'server', '', { kind: 'server' });
    return p as AccountPrincipal;
  }
}
