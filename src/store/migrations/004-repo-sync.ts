import type { Kysely } from 'kysely';

/** A repository's link to a remote (the SDK's github-sync), and the outcome of its last sync. */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('repo_sync')
    .addColumn('repo_id', 'varchar(36)', (c) => c.primaryKey().references('repositories.id').onDelete('cascade'))
    .addColumn('remote_name', 'text', (c) => c.notNull())
    .addColumn('remote_url', 'text', (c) => c.notNull())
    .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
    .addColumn('last_synced_at', 'varchar(32)')
    .addColumn('last_error', 'text')
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('repo_sync').execute();
}
