import type { Action, Principal, Resource } from '../domain/access.ts';
import { forbidden, notFound, unauthenticated } from '../domain/errors.ts';
import type { Conn, Store } from '../store/index.ts';
import { type Decision, decideIdentity, decideRepo, decideServer } from './decide.ts';

export { repoLevel, decideRepo, decideIdentity, decideServer } from './decide.ts';
export type { Decision } from './decide.ts';

/**
 * The single decision point: "may this principal do this action on this
 * resource". One query for the facts, then a pure decision. Every surface
 * (REST, JSON-RPC, smart HTTP) calls this; none compares levels itself.
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
      case 'server':
        return decideServer(p, action);
    }
  }

  /**
   * Like authorize, but throws: `notFound` (with `notFoundCode`) when the
   * resource must not be revealed, `unauthenticated` when an anonymous caller
   * might get further with credentials, `forbidden` when it is visible but the
   * action is not allowed.
   */
  /** True when `p` may act as an administrator of the whole server. */
  async isServerAdmin(p: Principal): Promise<boolean> {
    return (await this.authorize(p, 'server:admin', { kind: 'server' })).allowed;
  }

  async require(p: Principal, action: Action, r: Resource, notFoundMessage: string, notFoundCode: string, c?: Conn): Promise<Decision> {
    const d = await this.authorize(p, action, r, c);
    if (d.allowed) return d;
    if (!d.visible) {
      if (p.kind === 'anonymous') throw unauthenticated();
      throw notFound(notFoundMessage, notFoundCode);
    }
    if (p.kind === 'anonymous') throw unauthenticated();
    throw forbidden(`Permission denied: ${action} needed`, action.startsWith('repo:') ? 'GIT_REPOSITORY_ACCESS_DENIED' : 'FORBIDDEN');
  }
}
