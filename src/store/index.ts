import fs from 'node:fs';
import path from 'node:path';
import { type Kysely, Migrator, type Transaction } from 'kysely';
import type { DB, IdentitiesTable, RepositoriesTable, UsersTable, VmGrantsTable } from './schema.ts';
import { migrationProvider } from './migrations/index.ts';
import { openSqlite } from './dialect/sqlite.ts';

export { isUniqueViolation } from './dialect/sqlite.ts';
export type { DB } from './schema.ts';

/** A connection or an open transaction: store methods take either, services decide which. */
export type Conn = Kysely<DB> | Transaction<DB>;

export type UserRow = UsersTable;
export type IdentityRow = IdentitiesTable;
export type RepoRow = RepositoriesTable;
export type VmGrantRow = Omit<VmGrantsTable, 'seq'>;

/** What a presented token resolves to: the identity, and the user it backs if it is managed. */
export interface TokenOwner {
  identityId: string;
  accountId: string;
  managed: number;
  userId: string | null;
  username: string | null;
  admin: number | null;
  active: number | null;
}

/** Facts the access decision needs about one repository, in one query. */
export interface RepoAccessFacts {
  repoId: string;
  visibility: 'public' | 'private';
  ownerId: string;
  identityAccess: 'read' | 'write' | null;
}

/**
 * The metadata store: one Kysely implementation over SQLite (PostgreSQL by the
 * same SQL later). Methods take the connection or transaction to run on.
 */
export class Store {
  constructor(readonly db: Kysely<DB>, private readonly closeFn: () => void | Promise<void>) {}

  /** Opens the database under the data folder and runs pending migrations. */
  static async open(dataDir: string, databaseUrl?: string): Promise<Store> {
    if (databaseUrl) throw new Error('DATABASE_URL (PostgreSQL) is not supported yet; unset it to use the embedded SQLite database');
    fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    const { db, close } = openSqlite(path.join(dataDir, 'palisade.sqlite'));
    const migrator = new Migrator({ db, provider: migrationProvider });
    const { error, results } = await migrator.migrateToLatest();
    if (error) {
      close();
      const failed = results?.find((r) => r.status === 'Error');
      throw new Error(`database migration ${failed?.migrationName ?? ''} failed: ${(error as Error).message}`);
    }
    return new Store(db, close);
  }

  async close(): Promise<void> {
    await this.db.destroy().catch(() => undefined);
    await this.closeFn();
  }

  transaction<T>(fn: (tx: Transaction<DB>) => Promise<T>): Promise<T> {
    return this.db.transaction().execute(fn);
  }

  // ---- users ---------------------------------------------------------------

  async insertUser(c: Conn, row: UserRow): Promise<void> {
    await c.insertInto('users').values(row).execute();
  }

  findUserByName(c: Conn, username: string): Promise<UserRow | undefined> {
    return c.selectFrom('users').selectAll().where('username_key', '=', username.toLowerCase()).executeTakeFirst();
  }

  findUserById(c: Conn, id: string): Promise<UserRow | undefined> {
    return c.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst();
  }

  async updateUser(c: Conn, id: string, patch: Partial<Omit<UserRow, 'id' | 'identity_id'>>): Promise<void> {
    await c.updateTable('users').set(patch).where('id', '=', id).execute();
  }

  // ---- identities and tokens ----------------------------------------------

  async insertIdentity(c: Conn, row: IdentityRow): Promise<void> {
    await c.insertInto('identities').values(row).execute();
  }

  findIdentity(c: Conn, id: string): Promise<IdentityRow | undefined> {
    return c.selectFrom('identities').selectAll().where('id', '=', id).executeTakeFirst();
  }

  /** Lists identities, oldest first; `accountId` undefined lists every account's. */
  async listIdentities(c: Conn, q: { accountId?: string; includeManaged: boolean; limit: number; offset: number }): Promise<{ rows: IdentityRow[]; total: number }> {
    let base = c.selectFrom('identities');
    if (q.accountId !== undefined) base = base.where('account_id', '=', q.accountId);
    if (!q.includeManaged) base = base.where('managed', '=', 0);
    const rows = await base.selectAll().orderBy('created_at').orderBy('id').limit(q.limit).offset(q.offset).execute();
    const { n } = await base.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    return { rows, total: Number(n) };
  }

  async deleteIdentity(c: Conn, id: string): Promise<void> {
    await c.deleteFrom('identities').where('id', '=', id).execute();
  }

  async insertToken(c: Conn, row: { id: string; identity_id: string; token_hash: string; created_at: string }): Promise<void> {
    await c.insertInto('tokens').values(row).execute();
  }

  listTokens(c: Conn, identityId: string): Promise<{ id: string; created_at: string }[]> {
    return c.selectFrom('tokens').select(['id', 'created_at']).where('identity_id', '=', identityId).orderBy('created_at').orderBy('id').execute();
  }

  /** Deletes one token of one identity; false when there was none. */
  async deleteToken(c: Conn, identityId: string, tokenId: string): Promise<boolean> {
    const r = await c.deleteFrom('tokens').where('id', '=', tokenId).where('identity_id', '=', identityId).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }

  async deleteTokensOf(c: Conn, identityId: string): Promise<void> {
    await c.deleteFrom('tokens').where('identity_id', '=', identityId).execute();
  }

  /** Resolves a token hash to its identity and, for a managed identity, its user. */
  findTokenOwner(c: Conn, tokenHash: string): Promise<TokenOwner | undefined> {
    return c
      .selectFrom('tokens as t')
      .innerJoin('identities as i', 'i.id', 't.identity_id')
      .leftJoin('users as u', 'u.identity_id', 'i.id')
      .select(['i.id as identityId', 'i.account_id as accountId', 'i.managed as managed', 'u.id as userId', 'u.username as username', 'u.admin as admin', 'u.active as active'])
      .where('t.token_hash', '=', tokenHash)
      .executeTakeFirst();
  }

  // ---- repositories --------------------------------------------------------

  async insertRepo(c: Conn, row: RepoRow): Promise<void> {
    await c.insertInto('repositories').values(row).execute();
  }

  findRepoById(c: Conn, id: string): Promise<RepoRow | undefined> {
    return c.selectFrom('repositories').selectAll().where('id', '=', id).executeTakeFirst();
  }

  findRepoByName(c: Conn, name: string): Promise<RepoRow | undefined> {
    return c.selectFrom('repositories').selectAll().where('name', '=', name).executeTakeFirst();
  }

  async listRepos(c: Conn, q: { ownerId?: string; limit: number; offset: number }): Promise<{ rows: RepoRow[]; total: number }> {
    let base = c.selectFrom('repositories');
    if (q.ownerId !== undefined) base = base.where('owner_id', '=', q.ownerId);
    const rows = await base.selectAll().orderBy('created_at').orderBy('id').limit(q.limit).offset(q.offset).execute();
    const { n } = await base.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    return { rows, total: Number(n) };
  }

  async updateRepo(c: Conn, id: string, patch: Partial<Omit<RepoRow, 'id'>>): Promise<void> {
    await c.updateTable('repositories').set(patch).where('id', '=', id).execute();
  }

  async deleteRepo(c: Conn, id: string): Promise<void> {
    await c.deleteFrom('repositories').where('id', '=', id).execute();
  }

  // ---- grants --------------------------------------------------------------

  /** The facts `authorize` needs for a repository, for one identity (or none), in one query. */
  repoAccessFacts(c: Conn, repoId: string, identityId: string | null): Promise<RepoAccessFacts | undefined> {
    return c
      .selectFrom('repositories as r')
      .leftJoin('identity_repo_grants as g', (j) => j.onRef('g.repo_id', '=', 'r.id').on('g.identity_id', '=', identityId ?? ''))
      .select(['r.id as repoId', 'r.visibility as visibility', 'r.owner_id as ownerId', 'g.access as identityAccess'])
      .where('r.id', '=', repoId)
      .executeTakeFirst();
  }

  findIdentityGrant(c: Conn, identityId: string, repoId: string): Promise<{ access: 'read' | 'write' } | undefined> {
    return c.selectFrom('identity_repo_grants').select('access').where('identity_id', '=', identityId).where('repo_id', '=', repoId).executeTakeFirst();
  }

  async insertIdentityGrant(c: Conn, row: { identity_id: string; repo_id: string; access: 'read' | 'write'; created_at: string }): Promise<void> {
    await c.insertInto('identity_repo_grants').values(row).execute();
  }

  async updateIdentityGrant(c: Conn, identityId: string, repoId: string, access: 'read' | 'write'): Promise<boolean> {
    const r = await c.updateTable('identity_repo_grants').set({ access }).where('identity_id', '=', identityId).where('repo_id', '=', repoId).executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  async deleteIdentityGrant(c: Conn, identityId: string, repoId: string): Promise<boolean> {
    const r = await c.deleteFrom('identity_repo_grants').where('identity_id', '=', identityId).where('repo_id', '=', repoId).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }

  async listIdentityGrants(c: Conn, identityId: string, limit: number, offset: number): Promise<{ rows: (RepoRow & { access: 'read' | 'write' })[]; total: number }> {
    const base = c.selectFrom('identity_repo_grants as g').innerJoin('repositories as r', 'r.id', 'g.repo_id').where('g.identity_id', '=', identityId);
    const rows = await base.selectAll('r').select('g.access').orderBy('g.created_at').orderBy('r.id').limit(limit).offset(offset).execute();
    const { n } = await base.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    return { rows, total: Number(n) };
  }

  async insertVmGrant(c: Conn, row: VmGrantRow): Promise<void> {
    await c.insertInto('vm_grants').values(row).execute();
  }

  findVmGrant(c: Conn, identityId: string, vmId: string): Promise<VmGrantRow | undefined> {
    return c.selectFrom('vm_grants').select(['id', 'identity_id', 'vm_id', 'allowed_users', 'granted_at', 'granted_by']).where('identity_id', '=', identityId).where('vm_id', '=', vmId).executeTakeFirst();
  }

  async updateVmGrant(c: Conn, identityId: string, vmId: string, allowedUsers: string | null): Promise<void> {
    await c.updateTable('vm_grants').set({ allowed_users: allowedUsers }).where('identity_id', '=', identityId).where('vm_id', '=', vmId).execute();
  }

  async deleteVmGrant(c: Conn, identityId: string, vmId: string): Promise<boolean> {
    const r = await c.deleteFrom('vm_grants').where('identity_id', '=', identityId).where('vm_id', '=', vmId).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }

  async listVmGrants(c: Conn, identityId: string, limit: number, offset: number): Promise<{ rows: VmGrantRow[]; total: number }> {
    const base = c.selectFrom('vm_grants').where('identity_id', '=', identityId);
    const rows = await base.select(['id', 'identity_id', 'vm_id', 'allowed_users', 'granted_at', 'granted_by']).orderBy('seq').limit(limit).offset(offset).execute();
    const { n } = await base.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    return { rows, total: Number(n) };
  }
}
