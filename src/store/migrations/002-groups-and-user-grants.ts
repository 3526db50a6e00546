import type { Kysely } from 'kysely';

/**
 * Seed 002's principals and grants: users groups and their members, repository
 * groups, and `repository.*` grants for users and groups, stored as the one
 * ordered level (0 none, 1 read, 2 write, 3 admin).
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('users').addColumn('ldap_dn', 'varchar(500)').execute();

  await db.schema
    .createTable('users_groups')
    .addColumn('id', 'varchar(36)', (c) => c.primaryKey())
    .addColumn('name', 'varchar(100)', (c) => c.notNull())
    .addColumn('name_key', 'varchar(100)', (c) => c.notNull().unique())
    .addColumn('active', 'integer', (c) => c.notNull().defaultTo(1))
    .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('users_group_members')
    .addColumn('id', 'varchar(36)', (c) => c.primaryKey())
    .addColumn('group_id', 'varchar(36)', (c) => c.notNull().references('users_groups.id').onDelete('cascade'))
    .addColumn('user_id', 'varchar(36)', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
    .addUniqueConstraint('users_group_members_group_user', ['group_id', 'user_id'])
    .execute();
  await db.schema.createIndex('users_group_members_user').on('users_group_members').columns(['user_id', 'group_id']).execute();

  await db.schema
    .createTable('repo_groups')
    .addColumn('id', 'varchar(36)', (c) => c.primaryKey())
    .addColumn('name', 'varchar(255)', (c) => c.notNull().unique())
    .addColumn('parent_id', 'varchar(36)', (c) => c.references('repo_groups.id'))
    .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
    .execute();
  await db.schema.alterTable('repositories').addColumn('group_id', 'varchar(36)').execute();

  await db.schema
    .createTable('user_repo_grants')
    .addColumn('user_id', 'varchar(36)', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('repo_id', 'varchar(36)', (c) => c.notNull().references('repositories.id').onDelete('cascade'))
    .addColumn('level', 'integer', (c) => c.notNull())
    .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
    .addPrimaryKeyConstraint('user_repo_grants_pk', ['user_id', 'repo_id'])
    .execute();
  await db.schema.createIndex('user_repo_grants_repo').on('user_repo_grants').column('repo_id').execute();

  await db.schema
    .createTable('group_repo_grants')
    .addColumn('group_id', 'varchar(36)', (c) => c.notNull().references('users_groups.id').onDelete('cascade'))
    .addColumn('repo_id', 'varchar(36)', (c) => c.notNull().references('repositories.id').onDelete('cascade'))
    .addColumn('level', 'integer', (c) => c.notNull())
    .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
    .addPrimaryKeyConstraint('group_repo_grants_pk', ['group_id', 'repo_id'])
    .execute();
  await db.schema.createIndex('group_repo_grants_repo').on('group_repo_grants').columns(['repo_id', 'group_id']).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const t of ['group_repo_grants', 'user_repo_grants', 'repo_groups', 'users_group_members', 'users_groups']) await db.schema.dropTable(t).execute();
  await db.schema.alterTable('repositories').dropColumn('group_id').execute();
  await db.schema.alterTable('users').dropColumn('ldap_dn').execute();
}
