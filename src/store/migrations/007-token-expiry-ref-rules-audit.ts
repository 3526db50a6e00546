import { type Kysely, PostgresAdapter } from 'kysely';

/**
 * Expiring, labelled tokens (name, expires_at, last_used_at); ref rules on an identity's git
 * grant (JSON, null: none); a repository's protected branches (JSON array of branch patterns,
 * null: none), read with the other facts of a decision in its one query; and the audit log.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('tokens').addColumn('name', 'varchar(200)').execute();
  await db.schema.alterTable('tokens').addColumn('expires_at', 'varchar(32)').execute();
  await db.schema.alterTable('tokens').addColumn('last_used_at', 'varchar(32)').execute();
  await db.schema.alterTable('identity_repo_grants').addColumn('ref_rules', 'text').execute();
  await db.schema.alterTable('repositories').addColumn('protected_branches', 'text').execute();

  // An ordering column: SQLite's autoincrement, PostgreSQL's serial (as vm_grants).
  const pg = db.getExecutor().adapter instanceof PostgresAdapter;
  await db.schema
    .createTable('audit_log')
    .addColumn('seq', pg ? 'serial' : 'integer', (c) => (pg ? c.primaryKey() : c.primaryKey().autoIncrement()))
    .addColumn('id', 'varchar(36)', (c) => c.notNull().unique())
    .addColumn('at', 'varchar(32)', (c) => c.notNull())
    .addColumn('actor_kind', 'varchar(16)', (c) => c.notNull())
    .addColumn('actor_id', 'varchar(36)')
    .addColumn('actor_name', 'varchar(255)')
    .addColumn('action', 'varchar(64)', (c) => c.notNull())
    .addColumn('target_kind', 'varchar(16)', (c) => c.notNull())
    .addColumn('target_id', 'varchar(255)')
    .addColumn('target_name', 'varchar(255)')
    .addColumn('outcome', 'varchar(16)', (c) => c.notNull())
    .addColumn('detail', 'text')
    .execute();
  await db.schema.createIndex('audit_log_at').on('audit_log').column('at').execute();
  await db.schema.createIndex('audit_log_actor').on('audit_log').columns(['actor_id', 'seq']).execute();
  await db.schema.createIndex('audit_log_actor_name').on('audit_log').columns(['actor_name', 'seq']).execute();
  await db.schema.createIndex('audit_log_target').on('audit_log').columns(['target_id', 'seq']).execute();
  await db.schema.createIndex('audit_log_target_name').on('audit_log').columns(['target_name', 'seq']).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('audit_log').execute();
  await db.schema.alterTable('repositories').dropColumn('protected_branches').execute();
  await db.schema.alterTable('identity_repo_grants').dropColumn('ref_rules').execute();
  for (const c of ['last_used_at', 'expires_at', 'name']) await db.schema.alterTable('tokens').dropColumn(c).execute();
}
