import type { Access } from '../access/index.ts';
import { type IdentityAccess, type Principal } from '../domain/access.ts';
import { conflict, forbidden, notFound } from '../domain/errors.ts';
import { type IdentityRow, isUniqueViolation, type Store, type VmGrantRow } from '../store/index.ts';
import type { Repos } from './repos.ts';
import { newId, newToken, now } from './secrets.ts';
import type { PageQuery } from './types.ts';

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
  ) {}

  /** Loads an identity the caller manages; a missing and a foreign one look the same. */
  private async manageable(p: Principal, rawId: string): Promise<IdentityRow> {
    await this.access.requireAccount(p);
    // ids are stored lowercase; the schema accepts a UUID in any case
    const id = rawId.toLowerCase();
    // One look-up: the row's account is the only fact the decision needs.
    return this.access.requireIdentity(p, await this.store.findIdentity(this.store.db, id), id);
  }

  private async modifiable(p: Principal, rawId: string): Promise<IdentityRow> {
    const row = await this.manageable(p, rawId);
    if (row.managed) throw forbidden('Cannot modify managed identities', 'CANNOT_MODIFY_MANAGED_IDENTITY');
    return row;
  }

  async create(p: Principal): Promise<{ id: string; managed: boolean }> {
    const u = await this.access.requireAccount(p);
    const id = newId();
    await this.store.insertIdentity(this.store.db, { id, account_id: u.userId, managed: 0, created_at: now() });
    return { id, managed: false };
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
  }

  /** Issues an access token, returned once; only its hash is kept. */
  async createToken(p: Principal, rawId: string): Promise<{ id: string; token: string }> {
    const row = await this.modifiable(p, rawId);
    const { token, tokenHash } = newToken();
    const id = newId();
    try {
      await this.store.insertToken(this.store.db, { id, identity_id: row.id, token_hash: tokenHash, created_at: now() });
    } catch (e) {
      // deleted since it was loaded (the foreign key refused the token): the same answer as before
      if (!(await this.store.findIdentity(this.store.db, row.id))) throw notFound(`Identity not found: ${row.id}`, 'IDENTITY_NOT_FOUND');
      throw e;
    }
    return { id, token };
  }

  async listTokens(p: Principal, rawId: string): Promise<{ tokens: { id: string }[] }> {
    const row = await this.manageable(p, rawId);
    const rows = await this.store.listTokens(this.store.db, row.id);
    return { tokens: rows.map((r) => ({ id: r.id })) };
  }

  /** Revokes a token: its next use fails, git included (tokens are looked up on every request). */
  async revokeToken(p: Principal, rawId: string, rawTokenId: string): Promise<void> {
    const row = await this.modifiable(p, rawId);
    const tokenId = rawTokenId.toLowerCase();
    if (!(await this.store.deleteToken(this.store.db, row.id, tokenId))) throw notFound(`Token not found: ${tokenId}`, 'NOT_FOUND');
  }

  // ---- git permissions -------------------------------------------------------

  /** Resolves the repository of a grant: the caller needs admin on it to change grants, read to look. */
  private async grantRepo(p: Principal, rawRepo: string, action: 'repo:read' | 'repo:admin') {
    return this.repos.get(p, rawRepo, action);
  }

  async listGitPermissions(p: Principal, rawId: string, q: PageQuery) {
    const row = await this.manageable(p, rawId);
    const { limit = 100, offset = 0 } = q;
    const { rows, total } = await this.store.listIdentityGrants(this.store.db, row.id, limit, offset);
    return {
      repositories: rows.map((r) => ({ id: r.id, name: r.name, accountId: r.owner_id, permissions: r.access, visibility: r.visibility })),
      offset,
      total,
    };
  }

  async describeGitPermission(p: Principal, rawId: string, rawRepo: string): Promise<{ identity: string; repo: string; accessLevel: IdentityAccess | null }> {
    const row = await this.manageable(p, rawId);
    const repo = await this.grantRepo(p, rawRepo, 'repo:read');
    const g = await this.store.findIdentityGrant(this.store.db, row.id, repo.id);
    return { identity: row.id, repo: repo.id, accessLevel: g?.access ?? null };
  }

  /** Grants `access`; conflict PERMISSION_ALREADY_EXISTS if a grant exists (PUT updates). */
  async grantGit(p: Principal, rawId: string, rawRepo: string, access: IdentityAccess): Promise<void> {
    const row = await this.modifiable(p, rawId);
    const repo = await this.grantRepo(p, rawRepo, 'repo:admin');
    try {
      await this.store.insertIdentityGrant(this.store.db, { identity_id: row.id, repo_id: repo.id, access, created_at: now() });
    } catch (e) {
      if (isUniqueViolation(e)) throw conflict('Permission already exists', 'PERMISSION_ALREADY_EXISTS');
      throw e;
    }
  }

  async updateGit(p: Principal, rawId: string, rawRepo: string, access: IdentityAccess): Promise<void> {
    const row = await this.modifiable(p, rawId);
    const repo = await this.grantRepo(p, rawRepo, 'repo:admin');
    if (!(await this.store.updateIdentityGrant(this.store.db, row.id, repo.id, access))) throw notFound('Permission not found', 'PERMISSION_NOT_FOUND');
  }

  async revokeGit(p: Principal, rawId: string, rawRepo: string): Promise<void> {
    const row = await this.modifiable(p, rawId);
    const repo = await this.grantRepo(p, rawRepo, 'repo:admin');
    if (!(await this.store.deleteIdentityGrant(this.store.db, row.id, repo.id))) throw notFound('Permission not found', 'PERMISSION_NOT_FOUND');
  }

  // ---- VM permissions ----------------------------------------------------------

  async listVmPermissions(p: Principal, rawId: string, q: PageQuery): Promise<{ permissions: VmPermission[]; offset: number; total: number }> {
    const row = await this.manageable(p, rawId);
    const { limit = 100, offset = 0 } = q;
    const { rows, total } = await this.store.listVmGrants(this.store.db, row.id, limit, offset);
    return { permissions: rows.map(vmPermission), offset, total };
  }

  async describeVmPermission(p: Principal, rawId: string, vmId: string): Promise<VmPermission> {
    const row = await this.manageable(p, rawId);
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
    return vmPermission(g);
  }

  async updateVm(p: Principal, rawId: string, vmId: string, allowedUsers: readonly string[] | null | undefined): Promise<VmPermission> {
    const row = await this.modifiable(p, rawId);
    const users = allowedUsersOf(allowedUsers);
    return this.store.transaction(async (tx) => {
      const g = await this.store.findVmGrant(tx, row.id, vmId);
      if (!g) throw notFound('VM permission not found', 'VM_PERMISSION_NOT_FOUND');
      const encoded = users === null ? null : JSON.stringify(users);
      await this.store.updateVmGrant(tx, row.id, vmId, encoded);
      return vmPermission({ ...g, allowed_users: encoded });
    });
  }

  async revokeVm(p: Principal, rawId: string, vmId: string): Promise<void> {
    const row = await this.modifiable(p, rawId);
    if (!(await this.store.deleteVmGrant(this.store.db, row.id, vmId))) throw notFound('VM permission not found', 'VM_PERMISSION_NOT_FOUND');
  }
}
