import type { Action, Principal, Resource } from '../domain/access.ts';
import { AccessDenied, type DeniedResource } from '../domain/errors.ts';
import type { Conn, IdentityRow, RepoRow, Store } from '../store/index.ts';
import { type Decision, decideIdentity, decideRepo, decideServer, decideVmLogin, decideVmManage } from './decide.ts';

export { repoLevel, decideRepo, decideIdentity, decideServer, decideVmLogin, decideVmManage } from './decide.ts';
export type { Decision } from './decide.ts';

/** A principal that acts as an account: an active user. */
export type AccountPrincipal = Extract<Principal, { kind: 'user' }>;

const NOUN: Record<DeniedResource, string> = { repo: 'Repository', identity: 'Identity', vm: 'VM', server: 'Resource' };

/**
 * The single decision point: "may this principal do this action on this resource". One
 * query for the facts, then a pure decision. Every surface calls it, through the services;
 * none compares levels itself. It is also the one place where a refused decision becomes an
 * error (`AccessDenied`), whose meaning each surface maps to its own codes.
 */
export class Access {
  constructor(private readonly store: Store) {}

  async authorize(p: Principal, action: Action, r: Resource, c: Conn = this.store.db): Promise<Decision> {
    switch (r.kind) {
      case 'repo': {
        const facts = await this.store.repoAccessFacts(c, r.repoId, p.kind === 'identity' ? { identityId: p.identityId } : p.kind === 'user' ? { userId: p.userId, identityId: p.identityId } : {});
        return decideRepo(p, action, facts && { ...facts, accountActive: facts.accountActive === null ? null : facts.accountActive === 1 });
      }
      case 'identity': {
        if (r.accountId !== undefined) return decideIdentity(p, { accountId: r.accountId });
        const row = await this.store.findIdentity(c, r.identityId);
        return decideIdentity(p, row && { accountId: row.account_id });
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
   * Turns a refused decision into the error: `unauthenticated` for an anonymous caller (who
   * might get further with credentials), `notFound` when the resource must not be revealed,
   * `forbidden` when it is visible but the action is not allowed. `shownAs` names the
   * resource in the message as the caller named it.
   */
  private raise(p: Principal, action: Action, d: Decision, resource: DeniedResource, shownAs: string): never {
    const subject = shownAs.slice(0, 200);
    if (p.kind === 'anonymous') throw new AccessDenied('unauthenticated', resource, action, subject, 'Authentication required');
    if (!d.visible) throw new AccessDenied('notFound', resource, action, subject, `${NOUN[resource]} not found: ${subject}`);
    throw new AccessDenied('forbidden', resource, action, subject, `Permission denied: ${action} needed`);
  }

  /** Decides `action` on `r` and throws `AccessDenied` when refused. */
  async require(p: Principal, action: Action, r: Resource, shownAs = ''): Promise<Decision> {
    const d = await this.authorize(p, action, r);
    if (!d.allowed) this.raise(p, action, d, r.kind, shownAs || (r.kind === 'repo' ? r.repoId : r.kind === 'identity' ? r.identityId : r.kind === 'vm' ? r.vmId : ''));
    return d;
  }

  /** Like require, for a repository that may not exist (`undefined`): missing and hidden look the same. */
  async requireRepo(p: Principal, action: Action, row: RepoRow | undefined, shownAs: string): Promise<RepoRow> {
    const d = row ? await this.authorize(p, action, { kind: 'repo', repoId: row.id }) : decideRepo(p, action, undefined);
    if (!d.allowed || !row) this.raise(p, action, d, 'repo', shownAs);
    return row;
  }

  /** Like require, for an identity that may not exist: missing and foreign look the same. */
  requireIdentity(p: Principal, row: IdentityRow | undefined, shownAs: string): IdentityRow {
    const d = decideIdentity(p, row && { accountId: row.account_id });
    if (!d.allowed || !row) this.raise(p, 'identity:manage', d, 'identity', shownAs);
    return row;
  }

  /** The caller as an account (`account:use`: an active user), or AccessDenied. */
  async requireAccount(p: Principal): Promise<AccountPrincipal> {
    const d = decideServer(p, 'account:use');
    if (!d.allowed || p.kind !== 'user') this.raise(p, 'account:use', { ...d, visible: true }, 'server', '');
    return p;
  }
}
