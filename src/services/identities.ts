import { type Access, type Fact, type LevelName, levelName, type RefUpdate } from '../access/index.ts';
import { type IdentityAccess, type Principal, type RefRules } from '../domain/access.ts';
import { conflict, forbidden, invalid, notFound } from '../domain/errors.ts';
import { refNameProblem, refPatternProblem } from '../domain/validate.ts';
import { type IdentityRow, isUniqueViolation, type Store, type VmGrantRow } from '../store/index.ts';
import type { Repos } from './repos.ts';
import { newId, now } from './secrets.ts';
import { type CreatedToken, issueToken, revokeToken, type TokenInfo, tokenInfo, type TokenOptions } from './tokens.ts';
import type { PageQuery } from './types.ts';

/** Ref rules as a grant's body gives them (`refs`), the schema having checked the shapes. */
export interface RefRulesInput {
  allow: readonly string[];
  deny?: readonly string[] | null;
  forcePush?: boolean | null;
  deleteRefs?: boolean | null;
}

/** Checks what ref patterns mean and fills the defaults: no deny, no force push, no deletion. */
function refRules(input: RefRulesInput): RefRules {
  const deny = input.deny ?? [];
  for (const pat of [...input.allow, ...deny]) {
    const problem = refPatternProblem(pat);
    if (problem) throw invalid(`refs: ${problem}`, 'INVALID_REF_PATTERN');
  }
  return { allow: [...new Set(input.allow)], deny: [...new Set(deny)], forcePush: input.forcePush === true, deleteRefs: input.deleteRefs === true };
}

const rulesOut = (json: string | null): RefRules | null => (json === null ? null : (JSON.parse(json) as RefRules));

export interface IdentityOptions {
  /** the server's ceiling on a token's life (undefined: none) */
  maxTokenLifetimeSeconds?: number;
}

/** What explain answers: the effective level and the facts, in order, that made it. */
export interface Explanation {
  identity: string;
  repo: string;
  level: LevelName;
  /** the identity's tokens: how many work now and how many have expired */
  tokens: { live: number; expired: number };
  facts: Fact[];
  ref?: { ref: string; operation: RefUpdate['op']; allowed: boolean; fastForwardOnly: boolean; reason: string | null; facts: Fact[] };
}

export interface VmPermission {
  id: string;
  vmId: string;
  identityId: string;
  allowedUsers: string[] | null;
  grantedAt: string;
  grantedBy: string;
}

const vmPermission = (r: VmGrantRow): VmPermission => ({
  id: r.id,
  vmId: r.vm_id,
  identityId: r.identity_id,
  allowedUsers: r.allowed_users === null ? null : (JSON.parse(r.allowed_users) as string[]),
  grantedAt: r.granted_at,
  grantedBy: r.granted_by,
});

/** The Linux users of a VM grant, each once (null: any user); the schema checked each name. */
const allowedUsersOf = (v: readonly string[] | null | undefined): string[] | null => (v === undefined || v === null ? null : [...new Set(v)]);

/**
 * The Identity API's use cases (seed 000): identities, their tokens, git and VM grants. Ids
 * arrive as the route schemas checked them (identity and token ids UUIDs in any case, VM ids
 * and Linux user names by their patterns, pages bounded); what they refer to is decided here.
 */
export class Identities {
  constructor(
    private readonly store: Store,
    private readonly access: Access,
    private readonly repos: Repos,
    private readonly opts: IdentityOptions = {},
  ) {}

  /** An identity the caller manages (the decision point's rule); `modifiable`: not a managed one. */
  private manageable(p: Principal, rawId: string): Promise<IdentityRow> {
    return this.access.manageableIdentity(p, rawId);
  }

  private modifiable(p: Principal, rawId: string): Promise<IdentityRow> {
    return this.access.manageableIdentity(p, rawId, { modify: true });
  }

  /**
   * Creates an identity of the caller's account. `managed` (Freestyle's managed identities):
   * it can then neither be deleted nor changed through the API (no tokens, grants or keys).
   */
  async create(p: Principal, o: { managed?: boolean | null } = {}): Promise<{ id: string; managed: boolean }> {
    const u = await this.access.requireAccount(p);
    const id = newId();
    const managed = o.managed === true;
    await this.store.insertIdentity(this.store.db, { id, account_id: u.userId, managed: managed ? 1 : 0, created_at: now() });
    await this.access.audit.record({ actor: p, action: 'identity.create', target: { kind: 'identity', id }, detail: { managed } });
    return { id, managed };
  }

  /** One identity: its id, account and whether it is managed (its account, admins, or itself). */
  async get(p: Principal, rawId: string): Promise<{ id: string; accountId: string; managed: boolean }> {
    const row = await this.access.readableIdentity(p, rawId);
    return { id: row.id, accountId: row.account_id, managed: row.managed === 1 };
  }

  async list(p: Principal, q: PageQuery & { includeManaged?: boolean }): Promise<{ identities: { id: string; managed: boolean }[]; offset: number; total: number }> {
    const u = await this.access.requireAccount(p);
    const { limit = 100, offset = 0 } = q;
    const all = await this.access.isServerAdmin(p);
    const { rows, total } = await this.store.listIdentities(this.store.db, { accountId: all ? undefined : u.userId, includeManaged: !!q.includeManaged, limit, offset });
    return { identities: rows.map((r) => ({ id: r.id, managed: r.managed === 1 })), offset, total };
  }

  /** Deletes an identity; its tokens and grants go with it (foreign keys cascade). */
  async delete(p: Principal, rawId: string): Promise<void> {
    const row = await this.manageable(p, rawId);
    if (row.managed) throw forbidden('Cannot delete managed identities', 'CANNOT_DELETE_MANAGED_IDENTITY');
    await this.store.deleteIdentity(this.store.db, row.id);
    await this.access.audit.record({ actor: p, action: 'identity.delete', target: { kind: 'identity', id: row.id } });
  }

  /**
   * Issues an access token, returned once; only its hash is kept. `name` labels it; it expires
   * at `expiresAt` or after `ttlSeconds` (never, unless the server sets a ceiling).
   */
  async createToken(p: Principal, rawId: string, o: TokenOptions = {}): Promise<CreatedToken> {
    const row = await this.modifiable(p, rawId);
    try {
      return await issueToken(this.store, this.access.audit, p, row.id, o, this.opts.maxTokenLifetimeSeconds, { identity: row.id });
    } catch (e) {
      // deleted since it was loaded (the foreign key refused the token): the same answer as before
      if (!(await this.store.findIdentity(this.store.db, row.id))) throw notFound(`Identity not found: ${row.id}`, 'IDENTITY_NOT_FOUND');
      throw e;
    }
  }

  /** An identity's tokens, oldest first: id, name, createdAt, expiresAt, lastUsedAt (never the secret). */
  async listTokens(p: Principal, rawId: string): Promise<{ tokens: TokenInfo[] }> {
    const row = await this.access.readableIdentity(p, rawId);
    const rows = await this.store.listTokens(this.store.db, row.id);
    return { tokens: rows.map(tokenInfo) };
  }

  /** Revokes a token: its next use fails, git included (tokens are looked up on every request). */
  async revokeToken(p: Principal, rawId: string, rawTokenId: string): Promise<void> {
    const row = await this.modifiable(p, rawId);
    if (!(await revokeToken(this.store, this.access.audit, p, row.id, rawTokenId, { identity: row.id }))) throw notFound(`Token not found: ${rawTokenId.toLowerCase()}`, 'NOT_FOUND');
  }

  // ---- git permissions -------------------------------------------------------

  /** Resolves the repository of a grant: the caller needs admin on it to change grants, read to look. */
  private async grantRepo(p: Principal, rawRepo: string, action: 'repo:read' | 'repo:admin') {
    return this.repos.get(p, rawRepo, action);
  }

  async listGitPermissions(p: Principal, rawId: string, q: PageQuery) {
    const row = await this.access.readableIdentity(p, rawId);
    const { limit = 100, offset = 0 } = q;
    const { rows, total } = await this.store.listIdentityGrants(this.store.db, row.id, limit, offset);
    return {
      repositories: rows.map((r) => ({ id: r.id, name: r.name, accountId: r.owner_id, permissions: r.access, visibility: r.visibility, refs: rulesOut(r.ref_rules) })),
      offset,
      total,
    };
  }

  async describeGitPermission(p: Principal, rawId: string, rawRepo: string): Promise<{ identity: string; repo: string; accessLevel: IdentityAccess | null; refs: RefRules | null }> {
    const row = await this.access.readableIdentity(p, rawId);
    const repo = await this.grantRepo(p, rawRepo, 'repo:read');
    const g = await this.store.findIdentityGrant(this.store.db, row.id, repo.id);
    return { identity: row.id, repo: repo.id, accessLevel: g?.access ?? null, refs: rulesOut(g?.ref_rules ?? null) };
  }

  /** The grant's ref rules as stored (JSON), checked: only a write grant moves refs, so only it carries rules. */
  private rulesFor(access: IdentityAccess, refs: RefRulesInput | null | undefined): RefRules | null {
    if (refs === undefined || refs === null) return null;
    if (access !== 'write') throw invalid('refs apply to a write grant only: a read grant moves no ref', 'INVALID_REF_PATTERN');
    return refRules(refs);
  }

  /**
   * Grants `access`, with ref rules `refs` (absent: any ref, as before ref rules existed);
   * conflict PERMISSION_ALREADY_EXISTS if a grant exists (PUT updates).
   */
  async grantGit(p: Principal, rawId: string, rawRepo: string, access: IdentityAccess, refs?: RefRulesInput | null): Promise<void> {
    const row = await this.modifiable(p, rawId);
    const rules = this.rulesFor(access, refs);
    const repo = await this.grantRepo(p, rawRepo, 'repo:admin');
    try {
      await this.store.insertIdentityGrant(this.store.db, { identity_id: row.id, repo_id: repo.id, access, created_at: now(), ref_rules: rules && JSON.stringify(rules) });
    } catch (e) {
      if (isUniqueViolation(e)) throw conflict('Permission already exists', 'PERMISSION_ALREADY_EXISTS');
      throw e;
    }
    await this.access.audit.record({ actor: p, action: 'grant.git', target: { kind: 'repo', id: repo.id, name: repo.name }, detail: { identity: row.id, access, refs: rules } });
  }

  /** Replaces a grant: its access and its ref rules (absent `refs`: none). */
  async updateGit(p: Principal, rawId: string, rawRepo: string, access: IdentityAccess, refs?: RefRulesInput | null): Promise<void> {
    const row = await this.modifiable(p, rawId);
    const rules = this.rulesFor(access, refs);
    const repo = await this.grantRepo(p, rawRepo, 'repo:admin');
    if (!(await this.store.updateIdentityGrant(this.store.db, row.id, repo.id, access, rules && JSON.stringify(rules)))) throw notFound('Permission not found', 'PERMISSION_NOT_FOUND');
    await this.access.audit.record({ actor: p, action: 'grant.git.update', target: { kind: 'repo', id: repo.id, name: repo.name }, detail: { identity: row.id, access, refs: rules } });
  }

  async revokeGit(p: Principal, rawId: string, rawRepo: string): Promise<void> {
    const row = await this.modifiable(p, rawId);
    const repo = await this.grantRepo(p, rawRepo, 'repo:admin');
    if (!(await this.store.deleteIdentityGrant(this.store.db, row.id, repo.id))) throw notFound('Permission not found', 'PERMISSION_NOT_FOUND');
    await this.access.audit.record({ actor: p, action: 'grant.git.revoke', target: { kind: 'repo', id: repo.id, name: repo.name }, detail: { identity: row.id } });
  }

  /**
   * Why the identity holds what it holds on a repository: the effective level and the facts
   * the decision point weighed, in order; with `ref` (and `operation`, default update), the
   * decision on moving that ref. The caller needs to read the identity and the repository.
   */
  async explainGit(p: Principal, rawId: string, rawRepo: string, q: { ref?: string; operation?: RefUpdate['op'] } = {}): Promise<Explanation> {
    const row = await this.access.readableIdentity(p, rawId);
    const repo = await this.grantRepo(p, rawRepo, 'repo:read');
    let update: RefUpdate | undefined;
    if (q.ref !== undefined) {
      const problem = refNameProblem(q.ref);
      if (problem) throw invalid(`ref: ${problem}`, 'INVALID_REF');
      update = { ref: q.ref, op: q.operation ?? 'update' };
    }
    const subject: Principal = { kind: 'identity', identityId: row.id, accountId: row.account_id };
    const [e, tokens] = await Promise.all([this.access.explain(subject, repo.id, update), this.store.countTokens(this.store.db, row.id, now())]);
    // the level is the grant's; whether any token can still use it is the credential's fact
    const facts: Fact[] = tokens.live === 0 && tokens.expired > 0 ? [...e.facts, { fact: 'credential', detail: `all ${tokens.expired} of its tokens have expired: none can use this level (an SSH key still can)`, decisive: false }] : e.facts;
    return {
      identity: row.id,
      repo: repo.id,
      level: levelName(e.level),
      tokens,
      facts,
      ...(e.ref ? { ref: { ref: e.ref.ref, operation: update!.op, allowed: e.ref.allowed, fastForwardOnly: e.ref.fastForwardOnly, reason: e.ref.reason ?? e.ref.fastForwardReason ?? null, facts: e.ref.facts ?? [] } } : {}),
    };
  }

  // ---- VM permissions ----------------------------------------------------------

  async listVmPermissions(p: Principal, rawId: string, q: PageQuery): Promise<{ permissions: VmPermission[]; offset: number; total: number }> {
    const row = await this.access.readableIdentity(p, rawId);
    const { limit = 100, offset = 0 } = q;
    const { rows, total } = await this.store.listVmGrants(this.store.db, row.id, limit, offset);
    return { permissions: rows.map(vmPermission), offset, total };
  }

  async describeVmPermission(p: Principal, rawId: string, vmId: string): Promise<VmPermission> {
    const row = await this.access.readableIdentity(p, rawId);
    const g = await this.store.findVmGrant(this.store.db, row.id, vmId);
    if (!g) throw notFound('VM permission not found', 'VM_PERMISSION_NOT_FOUND');
    return vmPermission(g);
  }

  async grantVm(p: Principal, rawId: string, vmId: string, allowedUsers: readonly string[] | null | undefined): Promise<VmPermission> {
    const row = await this.modifiable(p, rawId);
    const users = allowedUsersOf(allowedUsers);
    const g: VmGrantRow = {
      id: newId(),
      identity_id: row.id,
      vm_id: vmId,
      allowed_users: users === null ? null : JSON.stringify(users),
      granted_at: now(),
      granted_by: (await this.access.requireAccount(p)).userId,
    };
    try {
      await this.store.insertVmGrant(this.store.db, g);
    } catch (e) {
      if (isUniqueViolation(e)) throw conflict('Permission already exists', 'PERMISSION_ALREADY_EXISTS');
      throw e;
    }
    await this.access.audit.record({ actor: p, action: 'grant.vm', target: { kind: 'vm', id: vmId }, detail: { identity: row.id, allowedUsers: users } });
    return vmPermission(g);
  }

  async updateVm(p: Principal, rawId: string, vmId: string, allowedUsers: readonly string[] | null | undefined): Promise<VmPermission> {
    const row = await this.modifiable(p, rawId);
    const users = allowedUsersOf(allowedUsers);
    const out = await this.store.transaction(async (tx) => {
      const g = await this.store.findVmGrant(tx, row.id, vmId);
      if (!g) throw notFound('VM permission not found', 'VM_PERMISSION_NOT_FOUND');
      const encoded = users === null ? null : JSON.stringify(users);
      await this.store.updateVmGrant(tx, row.id, vmId, encoded);
      return vmPermission({ ...g, allowed_users: encoded });
    });
    await this.access.audit.record({ actor: p, action: 'grant.vm.update', target: { kind: 'vm', id: vmId }, detail: { identity: row.id, allowedUsers: users } });
    return out;
  }

  async revokeVm(p: Principal, rawId: string, vmId: string): Promise<void> {
    const row = await this.modifiable(p, rawId);
    if (!(await this.store.deleteVmGrant(this.store.db, row.id, vmId))) throw notFound('VM permission not found', 'VM_PERMISSION_NOT_FOUND');
    await this.access.audit.record({ actor: p, action: 'grant.vm.revoke', target: { kind: 'vm', id: vmId }, detail: { identity: row.id } });
  }
}
