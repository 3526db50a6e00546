import fs from 'node:fs';
import path from 'node:path';
import { type Compilable, type ExpressionBuilder, type Kysely, Migrator, sql, type Transaction } from 'kysely';
import type { AuditLogTable, DB, DeliveriesTable, IdentitiesTable, RepoSyncTable, SshKeysTable, TokensTable, TriggersTable, RepoGroupsTable, RepositoriesTable, UsersGroupsTable, UsersTable, VmGrantsTable, VmsTable, WebSessionsTable } from './schema.ts';
import { migrationProvider } from './migrations/index.ts';
import { openPostgres } from './dialect/postgres.ts';
import { openSqlite } from './dialect/sqlite.ts';
import { compiledOnce, type ReadNow } from './compiled.ts';

export { isUniqueViolation } from './dialect/sqlite.ts';
export type { DB } from './schema.ts';

/** A connection or an open transaction: store methods take either, services decide which. */
export type Conn = Kysely<DB> | Transaction<DB>;

export type UserRow = UsersTable;
export type IdentityRow = IdentitiesTable;
export type RepoRow = RepositoriesTable;
export type VmGrantRow = Omit<VmGrantsTable, 'seq'>;
export type UsersGroupRow = UsersGroupsTable;
export type RepoGroupRow = RepoGroupsTable;
export type TriggerRow = TriggersTable;
export type DeliveryRow = DeliveriesTable;
export type RepoSyncRow = RepoSyncTable;
export type SshKeyRow = SshKeysTable;
export type VmRow = VmsTable;
export type WebSessionRow = WebSessionsTable;
export type AuditRow = Omit<AuditLogTable, 'seq'>;
export type TokenRow = TokensTable;

/** Facts the `vm:login` decision needs, in one query. */
export interface VmAccessFacts {
  /** the registered VM, if any */
  vmAccountId: string | null;
  defaultUser: string | null;
  /** the asking identity's grant on this VM id: JSON array or null for any user; undefined: no grant */
  hasGrant: number;
  allowedUsers: string | null;
  /** the identity's owning account, and whether it is active */
  identityAccountId: string | null;
  accountActive: number | null;
}

/** What a presented credential resolves to: the identity, and the user it backs if it is managed. */
export interface CredentialOwner {
  identityId: string;
  accountId: string;
  managed: number;
  userId: string | null;
  username: string | null;
  admin: number | null;
  active: number | null;
}

/** What a presented token resolves to: its owner, and the token's own state. */
export interface TokenOwner extends CredentialOwner {
  tokenId: string;
  /** RFC 3339, or null: never */
  expiresAt: string | null;
  lastUsedAt: string | null;
}

/** Facts the access decision needs about one repository, in one query. */
export interface RepoAccessFacts {
  repoId: string;
  visibility: 'public' | 'private';
  ownerId: string;
  identityAccess: 'read' | 'write' | null;
  userLevel: number | null;
  groupLevel: number | null;
  /** 1/0: the asking principal's account is active (null: no such account, or anonymous) */
  accountActive: number | null;
  /** the identity grant's ref rules (JSON), if any */
  refRules: string | null;
  /** the repository's protected branch patterns (JSON array), if any */
  protectedBranches: string | null;
}

/**
 * What repoAccessFacts answers for a caller with neither identity nor user (anonymous): the row's
 * own columns and no grant, so the row a request already read is enough (test/store/compiled).
 */
export function anonymousAccessFacts(row: RepoRow): RepoAccessFacts {
  return { repoId: row.id, visibility: row.visibility, ownerId: row.owner_id, protectedBranches: row.protected_branches, identityAccess: null, refRules: null, userLevel: null, groupLevel: null, accountActive: null };
}

/** What the audit listing filters on (`actor`, `target`: an id or a name). */
export interface AuditQuery {
  since?: string;
  actor?: string;
  target?: string;
  limit: number;
  offset: number;
}

/** PostgreSQL's answers to two sessions creating the same table at once: a unique violation on its catalogue, or "already exists". */
function isCreateRace(e: unknown): boolean {
  const code = (e as { code?: string } | null)?.code;
  return code === '23505' || code === '42P07' || code === '42710';
}

/** Expressions over a `repositories as r` row: the decision point's grant facts, as SQL. */
type RepoEb = ExpressionBuilder<DB & { r: RepositoriesTable }, 'r'>;
/** The user's own grant on `r` is at least read. */
const ownGrantReads = (eb: RepoEb, userId: string) =>
  eb.exists(eb.selectFrom('user_repo_grants as ug').select('ug.level').where('ug.user_id', '=', userId).whereRef('ug.repo_id', '=', 'r.id').where('ug.level', '>=', 1));
/** The user's own grant on `r` is an explicit `repository.none` (it overrides groups and visibility). */
const ownGrantNone = (eb: RepoEb, userId: string) =>
  eb.exists(eb.selectFrom('user_repo_grants as un').select('un.level').where('un.user_id', '=', userId).whereRef('un.repo_id', '=', 'r.id').where('un.level', '=', 0));
/** One of the user's active groups is granted at least read on `r`. */
const groupGrantReads = (eb: RepoEb, userId: string) =>
  eb.exists(
    eb
      .selectFrom('users_group_members as m')
      .innerJoin('group_repo_grants as gg', 'gg.group_id', 'm.group_id')
      .innerJoin('users_groups as grp', 'grp.id', 'm.group_id')
      .select('gg.level')
      .where('m.user_id', '=', userId)
      .whereRef('gg.repo_id', '=', 'r.id')
      .where('gg.level', '>=', 1)
      .where('grp.active', '=', 1),
  );

/** A lease: who holds a claim and until when (RFC 3339, compared as text like every timestamp here). */
export interface Lease {
  owner: string;
  now: string;
  until: string;
}

/** A lease for `owner` from now, `ms` long (the clock of this node: see the README on NTP). */
export function leaseFor(owner: string, ms: number): Lease {
  const t = Date.now();
  return { owner, now: new Date(t).toISOString(), until: new Date(t + ms).toISOString() };
}

/**
 * The metadata store: one Kysely implementation over SQLite (PostgreSQL by the
 * same SQL later). Methods take the connection or transaction to run on.
 */
export class Store {
  constructor(
    readonly db: Kysely<DB>,
    private readonly closeFn: () => void | Promise<void>,
    /** which database: several nodes may share only PostgreSQL (SQLite is one node's file) */
    readonly dialect: 'sqlite' | 'postgres' = 'sqlite',
    /** SQLite's read at once on its one connection (see ReadNow) */
    private readonly readNow?: ReadNow,
  ) {}

  /** A hot look-up (compiledOnce) that runs at once on the store's own connection (never a transaction's) when the database can. */
  private compiled<A extends string[], R>(build: (c: Conn, ...args: A) => Compilable<R>): (c: Conn, ...args: A) => Promise<R | undefined> {
    return compiledOnce(build, (c) => (c === this.db ? this.readNow : undefined));
  }

  /** The look-ups every git request makes, compiled once per store (its dialect): see compiledOnce. */
  private readonly hot = {
    tokenOwner: this.compiled((c, tokenHash: string) =>
      c
        .selectFrom('tokens as t')
        .innerJoin('identities as i', 'i.id', 't.identity_id')
        .leftJoin('users as u', 'u.identity_id', 'i.id')
        .select(['t.id as tokenId', 't.expires_at as expiresAt', 't.last_used_at as lastUsedAt', 'i.id as identityId', 'i.account_id as accountId', 'i.managed as managed', 'u.id as userId', 'u.username as username', 'u.admin as admin', 'u.active as active'])
        .where('t.token_hash', '=', tokenHash),
    ),
    repoById: this.compiled((c, id: string) => c.selectFrom('repositories').selectAll().where('id', '=', id)),
    repoByName: this.compiled((c, name: string) => c.selectFrom('repositories').selectAll().where('name', '=', name)),
    repoFacts: this.compiled((c, repoId: string, identityId: string, userId: string) =>
      c
        .selectFrom('repositories as r')
        // the identity's grant, one row read for its access and its ref rules
        .leftJoin('identity_repo_grants as g', (j) => j.onRef('g.repo_id', '=', 'r.id').on('g.identity_id', '=', identityId))
        .select((eb) => [
          'r.id as repoId',
          'r.visibility as visibility',
          'r.owner_id as ownerId',
          'r.protected_branches as protectedBranches',
          'g.access as identityAccess',
          'g.ref_rules as refRules',
          eb.selectFrom('user_repo_grants as ug').select('ug.level').where('ug.user_id', '=', userId).whereRef('ug.repo_id', '=', 'r.id').as('userLevel'),
          eb
            .selectFrom('users_group_members as m')
            .innerJoin('group_repo_grants as gg', 'gg.group_id', 'm.group_id')
            .innerJoin('users_groups as grp', 'grp.id', 'm.group_id')
            .select((e) => e.fn.max('gg.level').as('lvl'))
            .where('m.user_id', '=', userId)
            .whereRef('gg.repo_id', '=', 'r.id')
            .where('grp.active', '=', 1)
            .as('groupLevel'),
          eb.selectFrom('identities as ai').innerJoin('users as au', 'au.id', 'ai.account_id').select('au.active').where('ai.id', '=', identityId).as('accountActive'),
        ])
        .where('r.id', '=', repoId),
    ),
  };

  /**
   * Opens the database and runs pending migrations: PostgreSQL when `databaseUrl`
   * (postgres://…) is given, else SQLite under the data folder.
   */
  static async open(dataDir: string, databaseUrl?: string): Promise<Store> {
    fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    if (databaseUrl && !/^postgres(ql)?:\/\//.test(databaseUrl)) throw new Error('DATABASE_URL must be a postgres:// or postgresql:// URL');
    const { db, close, readNow } = databaseUrl ? { ...openPostgres(databaseUrl), readNow: undefined } : openSqlite(path.join(dataDir, 'palisade.sqlite'));
    // Migrations are numbered by the work that needs them, not by when each lands (009, the web
    // sessions, before 007 and 008): a database that ran a later number first still takes the rest.
    // Every node migrates at start. Kysely's Migrator holds an advisory lock on PostgreSQL around
    // the migrations and tolerates another process creating its bookkeeping tables at the same
    // moment; a start that still loses such a race (a unique violation or "already exists" from
    // the catalogue) tries again and then finds the migrations done.
    const migrator = new Migrator({ db, provider: migrationProvider, allowUnorderedMigrations: true });
    for (let attempt = 1; ; attempt++) {
      const { error, results } = await migrator.migrateToLatest();
      if (!error) break;
      if (attempt < 5 && isCreateRace(error)) {
        await new Promise((r) => setTimeout(r, 100 + Math.random() * 400));
        continue;
      }
      await close();
      const failed = results?.find((r) => r.status === 'Error');
      throw new Error(`database migration ${failed?.migrationName ?? ''} failed: ${(error as Error).message}`);
    }
    return new Store(db, close, databaseUrl ? 'postgres' : 'sqlite', readNow);
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

  /** An identity with its account's state (1/0; null: the account is gone). */
  findIdentityWithAccount(c: Conn, id: string): Promise<(IdentityRow & { account_active: number | null }) | undefined> {
    return c.selectFrom('identities as i').leftJoin('users as u', 'u.id', 'i.account_id').selectAll('i').select('u.active as account_active').where('i.id', '=', id).executeTakeFirst();
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

  async insertToken(c: Conn, row: { id: string; identity_id: string; token_hash: string; created_at: string; name?: string | null; expires_at?: string | null }): Promise<void> {
    await c.insertInto('tokens').values({ name: null, expires_at: null, last_used_at: null, ...row }).execute();
  }

  /** An identity's tokens, oldest first, without their hashes. */
  listTokens(c: Conn, identityId: string): Promise<Omit<TokenRow, 'token_hash' | 'identity_id'>[]> {
    return c.selectFrom('tokens').select(['id', 'name', 'created_at', 'expires_at', 'last_used_at']).where('identity_id', '=', identityId).orderBy('created_at').orderBy('id').execute();
  }

  /** Counts an identity's tokens that are live and expired at `at`. */
  async countTokens(c: Conn, identityId: string, at: string): Promise<{ live: number; expired: number }> {
    const rows = await c.selectFrom('tokens').select(['expires_at']).where('identity_id', '=', identityId).execute();
    const expired = rows.filter((r) => r.expires_at !== null && r.expires_at <= at).length;
    return { live: rows.length - expired, expired };
  }

  /** Records that a token was used at `at` (callers throttle this: at most once a minute per token). */
  async touchToken(c: Conn, tokenId: string, at: string): Promise<void> {
    await c.updateTable('tokens').set({ last_used_at: at }).where('id', '=', tokenId).execute();
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
    return this.hot.tokenOwner(c, tokenHash);
  }

  // ---- repositories --------------------------------------------------------

  async insertRepo(c: Conn, row: RepoRow): Promise<void> {
    await c.insertInto('repositories').values(row).execute();
  }

  findRepoById(c: Conn, id: string): Promise<RepoRow | undefined> {
    return this.hot.repoById(c, id);
  }

  findRepoByName(c: Conn, name: string): Promise<RepoRow | undefined> {
    return this.hot.repoByName(c, name);
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

  /**
   * The facts `authorize` needs for a repository, in one query: the row (with its protected
   * branches), the identity's grant and its ref rules, the user's own grant, the strongest
   * grant of the user's active groups, and the asking account's state.
   */
  repoAccessFacts(c: Conn, repoId: string, who: { identityId?: string; userId?: string }): Promise<RepoAccessFacts | undefined> {
    // a user principal asks with its own managed identity too: that identity's account is the user
    return this.hot.repoFacts(c, repoId, who.identityId ?? '', who.userId ?? '') as Promise<RepoAccessFacts | undefined>;
  }

  findIdentityGrant(c: Conn, identityId: string, repoId: string): Promise<{ access: 'read' | 'write'; ref_rules: string | null } | undefined> {
    return c.selectFrom('identity_repo_grants').select(['access', 'ref_rules']).where('identity_id', '=', identityId).where('repo_id', '=', repoId).executeTakeFirst();
  }

  async insertIdentityGrant(c: Conn, row: { identity_id: string; repo_id: string; access: 'read' | 'write'; created_at: string; ref_rules?: string | null }): Promise<void> {
    await c.insertInto('identity_repo_grants').values({ ref_rules: null, ...row }).execute();
  }

  /** Replaces a grant's access and ref rules; false when there is no grant. */
  async updateIdentityGrant(c: Conn, identityId: string, repoId: string, access: 'read' | 'write', refRules: string | null = null): Promise<boolean> {
    const r = await c.updateTable('identity_repo_grants').set({ access, ref_rules: refRules }).where('identity_id', '=', identityId).where('repo_id', '=', repoId).executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  async deleteIdentityGrant(c: Conn, identityId: string, repoId: string): Promise<boolean> {
    const r = await c.deleteFrom('identity_repo_grants').where('identity_id', '=', identityId).where('repo_id', '=', repoId).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }

  async listIdentityGrants(c: Conn, identityId: string, limit: number, offset: number): Promise<{ rows: (RepoRow & { access: 'read' | 'write'; ref_rules: string | null })[]; total: number }> {
    const base = c.selectFrom('identity_repo_grants as g').innerJoin('repositories as r', 'r.id', 'g.repo_id').where('g.identity_id', '=', identityId);
    const rows = await base.selectAll('r').select(['g.access', 'g.ref_rules']).orderBy('g.created_at').orderBy('r.id').limit(limit).offset(offset).execute();
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

  // ---- users listing, users groups and members (seed 002) ---------------------

  listUsers(c: Conn): Promise<UserRow[]> {
    return c.selectFrom('users').selectAll().orderBy('created_at').orderBy('id').execute();
  }

  async insertUsersGroup(c: Conn, row: UsersGroupRow): Promise<void> {
    await c.insertInto('users_groups').values(row).execute();
  }

  findUsersGroupByName(c: Conn, name: string): Promise<UsersGroupRow | undefined> {
    return c.selectFrom('users_groups').selectAll().where('name_key', '=', name.toLowerCase()).executeTakeFirst();
  }

  listUsersGroups(c: Conn): Promise<UsersGroupRow[]> {
    return c.selectFrom('users_groups').selectAll().orderBy('created_at').orderBy('id').execute();
  }

  /** Members of the given groups, each with its group id. */
  listGroupMembers(c: Conn, groupIds: string[]): Promise<(UserRow & { group_id: string })[]> {
    if (groupIds.length === 0) return Promise.resolve([]);
    return c
      .selectFrom('users_group_members as m')
      .innerJoin('users as u', 'u.id', 'm.user_id')
      .selectAll('u')
      .select('m.group_id')
      .where('m.group_id', 'in', groupIds)
      .orderBy('m.created_at')
      .orderBy('u.id')
      .execute();
  }

  findMembership(c: Conn, groupId: string, userId: string): Promise<{ id: string } | undefined> {
    return c.selectFrom('users_group_members').select('id').where('group_id', '=', groupId).where('user_id', '=', userId).executeTakeFirst();
  }

  async insertMembership(c: Conn, row: { id: string; group_id: string; user_id: string; created_at: string }): Promise<void> {
    await c.insertInto('users_group_members').values(row).execute();
  }

  async deleteMembership(c: Conn, groupId: string, userId: string): Promise<boolean> {
    const r = await c.deleteFrom('users_group_members').where('group_id', '=', groupId).where('user_id', '=', userId).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }

  // ---- repository groups ---------------------------------------------------------

  findRepoGroup(c: Conn, name: string): Promise<RepoGroupRow | undefined> {
    return c.selectFrom('repo_groups').selectAll().where('name', '=', name).executeTakeFirst();
  }

  /**
   * The repository group of that name, created if missing. Two repositories created at once
   * in a new group both get here: the insert yields to the other's (ON CONFLICT DO NOTHING,
   * which on PostgreSQL waits for it to commit) and the row read back is whichever won.
   */
  async ensureRepoGroup(c: Conn, row: RepoGroupRow): Promise<RepoGroupRow> {
    await c.insertInto('repo_groups').values(row).onConflict((oc) => oc.column('name').doNothing()).execute();
    return (await this.findRepoGroup(c, row.name))!;
  }

  // ---- user and group grants -------------------------------------------------------

  /** Sets a user's `repository.*` level on a repository (insert or update). */
  async upsertUserGrant(c: Conn, userId: string, repoId: string, level: number, at: string): Promise<void> {
    await c
      .insertInto('user_repo_grants')
      .values({ user_id: userId, repo_id: repoId, level, created_at: at })
      .onConflict((oc) => oc.columns(['user_id', 'repo_id']).doUpdateSet({ level }))
      .execute();
  }

  async deleteUserGrant(c: Conn, userId: string, repoId: string): Promise<boolean> {
    const r = await c.deleteFrom('user_repo_grants').where('user_id', '=', userId).where('repo_id', '=', repoId).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }

  async upsertGroupGrant(c: Conn, groupId: string, repoId: string, level: number, at: string): Promise<void> {
    await c
      .insertInto('group_repo_grants')
      .values({ group_id: groupId, repo_id: repoId, level, created_at: at })
      .onConflict((oc) => oc.columns(['group_id', 'repo_id']).doUpdateSet({ level }))
      .execute();
  }

  async deleteGroupGrant(c: Conn, groupId: string, repoId: string): Promise<boolean> {
    const r = await c.deleteFrom('group_repo_grants').where('group_id', '=', groupId).where('repo_id', '=', repoId).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }

  /** The grants on a repository of a user's active groups, by group name (what an explanation lists). */
  listUserGroupGrants(c: Conn, userId: string, repoId: string): Promise<{ name: string; level: number }[]> {
    return c
      .selectFrom('users_group_members as m')
      .innerJoin('group_repo_grants as gg', 'gg.group_id', 'm.group_id')
      .innerJoin('users_groups as grp', 'grp.id', 'm.group_id')
      .select(['grp.name as name', 'gg.level as level'])
      .where('m.user_id', '=', userId)
      .where('gg.repo_id', '=', repoId)
      .where('grp.active', '=', 1)
      .orderBy('grp.name')
      .execute();
  }

  listUserGrantsOnRepo(c: Conn, repoId: string): Promise<(UserRow & { level: number })[]> {
    return c.selectFrom('user_repo_grants as g').innerJoin('users as u', 'u.id', 'g.user_id').selectAll('u').select('g.level').where('g.repo_id', '=', repoId).orderBy('g.created_at').execute();
  }

  listGroupGrantsOnRepo(c: Conn, repoId: string): Promise<(UsersGroupRow & { level: number })[]> {
    return c.selectFrom('group_repo_grants as g').innerJoin('users_groups as ug', 'ug.id', 'g.group_id').selectAll('ug').select('g.level').where('g.repo_id', '=', repoId).orderBy('g.created_at').execute();
  }

  /**
   * Repositories a non-admin user may see in a listing: owned, or granted at
   * least read directly, or through an active group unless its own grant is an
   * explicit `repository.none` (the decision's rule). Public repositories are not
   * listed unless owned or granted.
   */
  async listReposVisibleTo(c: Conn, userId: string, limit: number, offset: number): Promise<{ rows: RepoRow[]; total: number }> {
    const base = c
      .selectFrom('repositories as r')
      .where((eb) => eb.or([eb('r.owner_id', '=', userId), ownGrantReads(eb, userId), eb.and([eb.not(ownGrantNone(eb, userId)), groupGrantReads(eb, userId)])]));
    const rows = await base.selectAll('r').orderBy('r.created_at').orderBy('r.id').limit(limit).offset(offset).execute();
    const { n } = await base.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    return { rows, total: Number(n) };
  }

  // ---- triggers and deliveries ---------------------------------------------------

  async insertTrigger(c: Conn, row: TriggerRow): Promise<void> {
    await c.insertInto('triggers').values(row).execute();
  }

  listTriggers(c: Conn, repoId: string): Promise<TriggerRow[]> {
    return c.selectFrom('triggers').selectAll().where('repo_id', '=', repoId).orderBy('created_at').orderBy('id').execute();
  }

  findTrigger(c: Conn, repoId: string, id: string): Promise<TriggerRow | undefined> {
    return c.selectFrom('triggers').selectAll().where('repo_id', '=', repoId).where('id', '=', id).executeTakeFirst();
  }

  async deleteTrigger(c: Conn, repoId: string, id: string): Promise<boolean> {
    const r = await c.deleteFrom('triggers').where('repo_id', '=', repoId).where('id', '=', id).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }

  async insertDelivery(c: Conn, row: Omit<DeliveryRow, 'lease_owner' | 'lease_expires_at'>): Promise<void> {
    await c.insertInto('deliveries').values({ ...row, lease_owner: null, lease_expires_at: null }).execute();
  }

  /**
   * Claims up to `limit` deliveries whose next attempt is due and that no node holds (or whose
   * holder's lease expired) for `lease.owner`, oldest first, with their trigger's endpoint. On
   * PostgreSQL the candidates are locked `FOR UPDATE SKIP LOCKED`, so nodes claiming at once
   * take different rows instead of waiting on each other; SQLite has one writer at a time and
   * the UPDATE's own compare decides.
   */
  async claimDeliveries(c: Conn, lease: Lease, limit: number): Promise<(DeliveryRow & { endpoint: string })[]> {
    const due = (eb: any) => eb.and([eb('status', '=', 'pending'), eb('next_attempt_at', '<=', lease.now), eb.or([eb('lease_expires_at', 'is', null), eb('lease_expires_at', '<=', lease.now)])]);
    let candidates = c.selectFrom('deliveries').select('id').where(due).orderBy('next_attempt_at').limit(limit);
    if (this.dialect === 'postgres') candidates = candidates.forUpdate().skipLocked();
    const claimed = await c
      .updateTable('deliveries')
      .set({ lease_owner: lease.owner, lease_expires_at: lease.until })
      .where('id', 'in', candidates)
      // checked again on the row itself: on SQLite the sub-select and the update are one statement anyway
      .where(due)
      .returning('id')
      .execute();
    if (claimed.length === 0) return [];
    return c
      .selectFrom('deliveries as d')
      .innerJoin('triggers as t', 't.id', 'd.trigger_id')
      .selectAll('d')
      .select('t.endpoint')
      .where(
        'd.id',
        'in',
        claimed.map((r) => r.id),
      )
      .where('d.lease_owner', '=', lease.owner)
      .orderBy('d.next_attempt_at')
      .execute();
  }

  /** Extends this node's leases on deliveries it still holds. */
  async renewDeliveries(c: Conn, ids: string[], lease: Lease): Promise<void> {
    if (ids.length === 0) return;
    await c.updateTable('deliveries').set({ lease_expires_at: lease.until }).where('id', 'in', ids).where('lease_owner', '=', lease.owner).execute();
  }

  /**
   * Records an attempt's outcome and lets go of the lease, only if `owner` still holds it: a node
   * whose lease expired (it stalled) and was taken over records nothing. False then.
   */
  async finishDelivery(c: Conn, id: string, owner: string, patch: Partial<Omit<DeliveryRow, 'id' | 'lease_owner' | 'lease_expires_at'>>): Promise<boolean> {
    const r = await c.updateTable('deliveries').set({ ...patch, lease_owner: null, lease_expires_at: null }).where('id', '=', id).where('lease_owner', '=', owner).executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  /** Lets go of leases this node holds on deliveries it did not start (shutdown). */
  async releaseDeliveries(c: Conn, ids: string[], owner: string): Promise<void> {
    if (ids.length === 0) return;
    await c.updateTable('deliveries').set({ lease_owner: null, lease_expires_at: null }).where('id', 'in', ids).where('lease_owner', '=', owner).execute();
  }

  async updateDelivery(c: Conn, id: string, patch: Partial<Omit<DeliveryRow, 'id'>>): Promise<void> {
    await c.updateTable('deliveries').set(patch).where('id', '=', id).execute();
  }

  listDeliveries(c: Conn, triggerId: string, limit: number): Promise<DeliveryRow[]> {
    return c.selectFrom('deliveries').selectAll().where('trigger_id', '=', triggerId).orderBy('created_at', 'desc').orderBy('id').limit(limit).execute();
  }

  findDelivery(c: Conn, triggerId: string, id: string): Promise<DeliveryRow | undefined> {
    return c.selectFrom('deliveries').selectAll().where('trigger_id', '=', triggerId).where('id', '=', id).executeTakeFirst();
  }

  // ---- SSH keys --------------------------------------------------------------------

  async insertSshKey(c: Conn, row: SshKeyRow): Promise<void> {
    await c.insertInto('ssh_keys').values(row).execute();
  }

  listSshKeys(c: Conn, identityId: string): Promise<SshKeyRow[]> {
    return c.selectFrom('ssh_keys').selectAll().where('identity_id', '=', identityId).orderBy('created_at').orderBy('id').execute();
  }

  /** Deletes one key of one identity; false when there was none. */
  async deleteSshKey(c: Conn, identityId: string, keyId: string): Promise<boolean> {
    const r = await c.deleteFrom('ssh_keys').where('id', '=', keyId).where('identity_id', '=', identityId).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }

  findSshKeyById(c: Conn, keyId: string): Promise<SshKeyRow | undefined> {
    return c.selectFrom('ssh_keys').selectAll().where('id', '=', keyId).executeTakeFirst();
  }

  /** Resolves a key fingerprint to its identity and, for a managed identity, its user (as findTokenOwner). */
  findSshKeyOwner(c: Conn, fingerprint: string): Promise<(CredentialOwner & { keyId: string; publicKey: string }) | undefined> {
    return c
      .selectFrom('ssh_keys as k')
      .innerJoin('identities as i', 'i.id', 'k.identity_id')
      .leftJoin('users as u', 'u.identity_id', 'i.id')
      .select(['k.id as keyId', 'k.public_key as publicKey', 'i.id as identityId', 'i.account_id as accountId', 'i.managed as managed', 'u.id as userId', 'u.username as username', 'u.admin as admin', 'u.active as active'])
      .where('k.fingerprint', '=', fingerprint)
      .executeTakeFirst();
  }

  // ---- VMs -----------------------------------------------------------------------

  async insertVm(c: Conn, row: VmRow): Promise<void> {
    await c.insertInto('vms').values(row).execute();
  }

  /** True when another account registered a VM with this host key. */
  async hostKeyRegisteredElsewhere(c: Conn, hostKey: string, accountId: string): Promise<boolean> {
    return !!(await c.selectFrom('vms').select('id').where('host_key', '=', hostKey).where('account_id', '!=', accountId).executeTakeFirst());
  }

  findVm(c: Conn, id: string): Promise<VmRow | undefined> {
    return c.selectFrom('vms').selectAll().where('id', '=', id).executeTakeFirst();
  }

  async listVms(c: Conn, q: { accountId?: string; limit: number; offset: number }): Promise<{ rows: VmRow[]; total: number }> {
    let base = c.selectFrom('vms');
    if (q.accountId !== undefined) base = base.where('account_id', '=', q.accountId);
    const rows = await base.selectAll().orderBy('created_at').orderBy('id').limit(q.limit).offset(q.offset).execute();
    const { n } = await base.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    return { rows, total: Number(n) };
  }

  async updateVm(c: Conn, id: string, patch: Partial<Omit<VmRow, 'id' | 'account_id' | 'created_at'>>): Promise<void> {
    await c.updateTable('vms').set(patch).where('id', '=', id).execute();
  }

  async deleteVm(c: Conn, id: string): Promise<boolean> {
    const r = await c.deleteFrom('vms').where('id', '=', id).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }

  /**
   * The facts of `vm:login` in one query: the registered VM (if any), the identity's grant
   * on that VM id (if any), and the identity's account with its state.
   */
  async vmAccessFacts(c: Conn, vmId: string, identityId: string): Promise<VmAccessFacts> {
    const row = await c
      .selectFrom('identities as i')
      .leftJoin('users as au', 'au.id', 'i.account_id')
      .select((eb) => [
        'i.account_id as identityAccountId',
        'au.active as accountActive',
        eb.selectFrom('vms as v').select('v.account_id').where('v.id', '=', vmId).as('vmAccountId'),
        eb.selectFrom('vms as v2').select('v2.default_user').where('v2.id', '=', vmId).as('defaultUser'),
        eb.selectFrom('vm_grants as g').select((e) => e.fn.count<number>('g.id').as('n')).where('g.identity_id', '=', identityId).where('g.vm_id', '=', vmId).as('hasGrant'),
        eb.selectFrom('vm_grants as g2').select('g2.allowed_users').where('g2.identity_id', '=', identityId).where('g2.vm_id', '=', vmId).as('allowedUsers'),
      ])
      .where('i.id', '=', identityId)
      .executeTakeFirst();
    return {
      vmAccountId: row?.vmAccountId ?? null,
      defaultUser: row?.defaultUser ?? null,
      hasGrant: Number(row?.hasGrant ?? 0),
      allowedUsers: row?.allowedUsers ?? null,
      identityAccountId: row?.identityAccountId ?? null,
      accountActive: row?.accountActive ?? null,
    };
  }

  // ---- audit log -----------------------------------------------------------------

  async insertAudit(c: Conn, row: AuditRow): Promise<void> {
    await c.insertInto('audit_log').values(row).execute();
  }

  /** Audit records, newest first, filtered by time (`since` inclusive), actor and target (id or name). */
  async listAudit(c: Conn, q: AuditQuery): Promise<{ rows: AuditRow[]; total: number }> {
    let base = c.selectFrom('audit_log');
    if (q.since !== undefined) base = base.where('at', '>=', q.since);
    if (q.actor !== undefined) {
      const actor = q.actor;
      base = base.where((eb) => eb.or([eb('actor_id', '=', actor), eb('actor_name', '=', actor)]));
    }
    if (q.target !== undefined) {
      const target = q.target;
      base = base.where((eb) => eb.or([eb('target_id', '=', target), eb('target_name', '=', target)]));
    }
    const rows = await base.select(['id', 'at', 'actor_kind', 'actor_id', 'actor_name', 'action', 'target_kind', 'target_id', 'target_name', 'outcome', 'detail']).orderBy('seq', 'desc').limit(q.limit).offset(q.offset).execute();
    const { n } = await base.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    return { rows, total: Number(n) };
  }

  /** Deletes audit records older than `before`; returns how many. */
  async pruneAudit(c: Conn, before: string): Promise<number> {
    const r = await c.deleteFrom('audit_log').where('at', '<', before).executeTakeFirst();
    return Number(r.numDeletedRows);
  }

  // ---- remote sync links ----------------------------------------------------------

  findSync(c: Conn, repoId: string): Promise<RepoSyncRow | undefined> {
    return c.selectFrom('repo_sync').selectAll().where('repo_id', '=', repoId).executeTakeFirst();
  }

  listSyncs(c: Conn): Promise<RepoSyncRow[]> {
    return c.selectFrom('repo_sync').selectAll().execute();
  }

  /**
   * Claims the right to run a sync of a repository: free, expired or already `lease.owner`'s.
   * With `notSyncedSince`, only if the last sync ended before it (a periodic round: another
   * node's round may have just done it). False when another node holds it or it is not due.
   */
  async claimSync(c: Conn, repoId: string, lease: Lease, notSyncedSince?: string): Promise<boolean> {
    let q = c
      .updateTable('repo_sync')
      .set({ lease_owner: lease.owner, lease_expires_at: lease.until })
      .where('repo_id', '=', repoId)
      .where((eb) => eb.or([eb('lease_expires_at', 'is', null), eb('lease_expires_at', '<=', lease.now), eb('lease_owner', '=', lease.owner)]));
    if (notSyncedSince !== undefined) q = q.where((eb) => eb.or([eb('last_synced_at', 'is', null), eb('last_synced_at', '<=', notSyncedSince)]));
    const r = await q.executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  /** Lets go of a sync lease `owner` holds. */
  async releaseSync(c: Conn, repoId: string, owner: string): Promise<void> {
    await c.updateTable('repo_sync').set({ lease_owner: null, lease_expires_at: null }).where('repo_id', '=', repoId).where('lease_owner', '=', owner).execute();
  }

  // ---- periodic jobs ------------------------------------------------------------------

  /**
   * Claims the named job for `lease.owner` if nobody holds it and it last ran before
   * `notRunSince` (undefined: whenever it is free); the row is made on first use. The claim is
   * one UPDATE with a compare, atomic on both databases: of two nodes at once, one wins.
   */
  async claimJob(c: Conn, name: string, lease: Lease, notRunSince?: string): Promise<boolean> {
    await c.insertInto('jobs').values({ name, lease_owner: null, lease_expires_at: null, last_run_at: null }).onConflict((oc) => oc.column('name').doNothing()).execute();
    let q = c
      .updateTable('jobs')
      .set({ lease_owner: lease.owner, lease_expires_at: lease.until })
      .where('name', '=', name)
      .where((eb) => eb.or([eb('lease_expires_at', 'is', null), eb('lease_expires_at', '<=', lease.now)]));
    if (notRunSince !== undefined) q = q.where((eb) => eb.or([eb('last_run_at', 'is', null), eb('last_run_at', '<=', notRunSince)]));
    const r = await q.executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  /** Extends a job's lease while it runs, if `lease.owner` still holds it. */
  async renewJob(c: Conn, name: string, lease: Lease): Promise<void> {
    await c.updateTable('jobs').set({ lease_expires_at: lease.until }).where('name', '=', name).where('lease_owner', '=', lease.owner).execute();
  }

  /** Ends a run: records when it ran and lets go of the lease. */
  async finishJob(c: Conn, name: string, owner: string, at: string): Promise<void> {
    await c.updateTable('jobs').set({ lease_owner: null, lease_expires_at: null, last_run_at: at }).where('name', '=', name).where('lease_owner', '=', owner).execute();
  }

  async upsertSync(c: Conn, row: Omit<RepoSyncRow, 'lease_owner' | 'lease_expires_at'>): Promise<void> {
    await c
      .insertInto('repo_sync')
      .values({ ...row, lease_owner: null, lease_expires_at: null })
      .onConflict((oc) => oc.column('repo_id').doUpdateSet({ remote_name: row.remote_name, remote_url: row.remote_url, last_error: null, last_synced_at: null, last_state: null }))
      .execute();
  }

  async updateSync(c: Conn, repoId: string, patch: Partial<Omit<RepoSyncRow, 'repo_id'>>): Promise<void> {
    await c.updateTable('repo_sync').set(patch).where('repo_id', '=', repoId).execute();
  }

  async deleteSync(c: Conn, repoId: string): Promise<boolean> {
    const r = await c.deleteFrom('repo_sync').where('repo_id', '=', repoId).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }

  // ---- web sessions and the web's repository list ------------------------------------

  async insertWebSession(c: Conn, row: WebSessionRow): Promise<void> {
    await c.insertInto('web_sessions').values(row).execute();
  }

  /** A live session by its token's hash, with its user (expired ones are not found). */
  findWebSession(c: Conn, tokenHash: string, at: string): Promise<{ session: WebSessionRow; user: UserRow } | undefined> {
    return c
      .selectFrom('web_sessions as s')
      .innerJoin('users as u', 'u.id', 's.user_id')
      .selectAll('u')
      .select(['s.id as s_id', 's.token_hash as s_token_hash', 's.user_id as s_user_id', 's.created_at as s_created_at', 's.last_seen_at as s_last_seen_at', 's.expires_at as s_expires_at'])
      .where('s.token_hash', '=', tokenHash)
      .where('s.expires_at', '>', at)
      .executeTakeFirst()
      .then((r) => {
        if (!r) return undefined;
        const { s_id, s_token_hash, s_user_id, s_created_at, s_last_seen_at, s_expires_at, ...user } = r;
        return { session: { id: s_id, token_hash: s_token_hash, user_id: s_user_id, created_at: s_created_at, last_seen_at: s_last_seen_at, expires_at: s_expires_at }, user: user as UserRow };
      });
  }

  async touchWebSession(c: Conn, id: string, lastSeenAt: string, expiresAt: string): Promise<void> {
    await c.updateTable('web_sessions').set({ last_seen_at: lastSeenAt, expires_at: expiresAt }).where('id', '=', id).execute();
  }

  async deleteWebSession(c: Conn, tokenHash: string): Promise<void> {
    await c.deleteFrom('web_sessions').where('token_hash', '=', tokenHash).execute();
  }

  /** Ends every session of a user; the number ended. */
  async deleteWebSessionsOf(c: Conn, userId: string): Promise<number> {
    const r = await c.deleteFrom('web_sessions').where('user_id', '=', userId).executeTakeFirst();
    return Number(r.numDeletedRows);
  }

  async deleteExpiredWebSessions(c: Conn, at: string): Promise<void> {
    await c.deleteFrom('web_sessions').where('expires_at', '<=', at).execute();
  }

  /**
   * One page of the repositories a principal may see, by name, optionally filtered by a
   * case-insensitive substring of the name or description. `who`: everything (admins), the
   * public ones (anonymous), or what a user owns, was granted at least read on (directly, or
   * through an active group unless its own grant is an explicit `repository.none`) and the
   * public ones its own grant does not set to none: the decision point's rules, as SQL.
   */
  async searchRepos(c: Conn, who: { all: true } | { userId: string | null }, q: { text?: string; limit: number; offset: number }): Promise<{ rows: RepoRow[]; total: number }> {
    let base = c.selectFrom('repositories as r');
    if (!('all' in who)) {
      const userId = who.userId;
      base = base.where((eb) => {
        if (userId === null) return eb('r.visibility', '=', 'public');
        return eb.or([eb('r.owner_id', '=', userId), eb.and([eb.not(ownGrantNone(eb, userId)), eb.or([eb('r.visibility', '=', 'public'), ownGrantReads(eb, userId), groupGrantReads(eb, userId)])])]);
      });
    }
    if (q.text) {
      const pattern = `%${q.text.toLowerCase().replace(/[\\%_]/g, (ch) => `\\${ch}`)}%`;
      base = base.where((eb) => eb.or([sql<boolean>`lower(r.name) like ${pattern} escape '\\'`, sql<boolean>`lower(r.description) like ${pattern} escape '\\'`]));
    }
    const rows = await base.selectAll('r').orderBy('r.name').orderBy('r.id').limit(q.limit).offset(q.offset).execute();
    const { n } = await base.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    return { rows, total: Number(n) };
  }
}
