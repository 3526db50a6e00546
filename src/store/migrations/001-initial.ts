import { type Kysely, PostgresAdapter } from 'kysely';

/** Users, identities, tokens, repositories and identity grants (seed 000). */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('identities')
    .addColumn('id', 'varchar(36)', (c) => c.primaryKey())
    .addColumn('account_id', 'varchar(36)', (c) => c.notNull())
    .addColumn('managed', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('identities_account').on('identities').columns(['account_id', 'created_at']).execute();

  await db.schema
    .createTable('users')
    .addColumn('id', 'varchar(36)', (c) => c.primaryKey())
    .addColumn('username', 'varchar(64)', (c) => c.notNull())
    .addColumn('username_key', 'varchar(64)', (c) => c.notNull().unique())
    .addColumn('email', 'varchar(320)')
    .addColumn('firstname', 'varchar(200)')
    .addColumn('lastname', 'varchar(200)')
    .addColumn('active', 'integer', (c) => c.notNull().defaultTo(1))
    .addColumn('admin', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('password_hash', 'varchar(300)')
    .addColumn('identity_id', 'varchar(36)', (c) => c.notNull().unique().references('identities.id'))
    .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('tokens')
    .addColumn('id', 'varchar(36)', (c) => c.primaryKey())
    .addColumn('identity_id', 'varchar(36)', (c) => c.notNull().references('identities.id').onDelete('cascade'))
    .addColumn('token_hash', 'varchar(64)', (c) => c.notNull().unique())
    .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('tokens_identity').on('tokens').column('identity_id').execute();

  await db.schema
    .createTable('repositories')
    .addColumn('id', 'varchar(36)', (c) => c.primaryKey())
    .addColumn('name', 'varchar(255)', (c) => c.unique())
    .addColumn('owner_id', 'varchar(36)', (c) => c.notNull())
    .addColumn('visibility', 'varchar(8)', (c) => c.notNull())
    .addColumn('default_branch', 'varchar(200)', (c) => c.notNull())
    .addColumn('description', 'text')
    .addColumn('upstream_url', 'text')
    .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('repositories_owner').on('repositories').columns(['owner_id', 'created_at']).execute();

  await db.schema
    .createTable('identity_repo_grants')
    .addColumn('identity_id', 'varchar(36)', (c) => c.notNull().references('identities.id').onDelete('cascade'))
    .addColumn('repo_id', 'varchar(36)', (c) => c.notNull().references('repositories.id').onDelete('cascade'))
    .addColumn('access', 'varchar(8)', (c) => c.notNull())
    .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
    .addPrimaryKeyConstraint('identity_repo_grants_pk', ['identity_id', 'repo_id'])
    .execute();
  await db.schema.createIndex('identity_repo_grants_repo').on('identity_repo_grants').column('repo_id').execute();

  // An ordering column: SQLite's autoincrement, PostgreSQL's serial.
  const pg = db.getExecutor().adapter instanceof PostgresAdapter;
  await db.schema
    .createTable('vm_grants')
    .addColumn('seq', pg ? 'serial' : 'integer', (c) => (pg ? c.primaryKey() : c.primaryKey().autoIncrement()))
    .addColumn('id', 'varchar(36)', (c) => c.notNull().unique())
    .addColumn('identity_id', 'varchar(36)', (c) => c.notNull().references('identities.id').onDelete('cascade'))
    .addColumn('vm_id', 'varchar(128)', (c) => c.notNull())
    .addColumn('allowed_users', 'text')
    .addColumn('granted_at', 'varchar(32)', (c) => c.notNull())
    .addColumn('granted_by', 'varchar(36)', (c) => c.notNull())
    .addUniqueConstraint('vm_grants_identity_vm', ['identity_id', 'vm_id'])
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const t of ['vm_grants', 'identity_repo_grants', 'repositories', 'tokens', 'users', 'identities']) await db.schema.dropTable(t).execute();
}
