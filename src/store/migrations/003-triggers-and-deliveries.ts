import type { Kysely } from 'kysely';

/** Push triggers (webhooks) per repository and their durable delivery queue and log. */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('triggers')
    .addColumn('id', 'varchar(36)', (c) => c.primaryKey())
    .addColumn('repo_id', 'varchar(36)', (c) => c.notNull().references('repositories.id').onDelete('cascade'))
    .addColumn('event', 'varchar(16)', (c) => c.notNull())
    .addColumn('branches', 'text')
    .addColumn('globs', 'text')
    .addColumn('endpoint', 'text', (c) => c.notNull())
    .addColumn('created_by', 'varchar(36)', (c) => c.notNull())
    .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('triggers_repo').on('triggers').columns(['repo_id', 'created_at']).execute();

  await db.schema
    .createTable('deliveries')
    .addColumn('id', 'varchar(36)', (c) => c.primaryKey())
    .addColumn('trigger_id', 'varchar(36)', (c) => c.notNull().references('triggers.id').onDelete('cascade'))
    .addColumn('payload', 'text', (c) => c.notNull())
    .addColumn('status', 'varchar(16)', (c) => c.notNull())
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('next_attempt_at', 'varchar(32)', (c) => c.notNull())
    .addColumn('last_error', 'text')
    .addColumn('last_status_code', 'integer')
    .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
    .addColumn('delivered_at', 'varchar(32)')
    .execute();
  await db.schema.createIndex('deliveries_due').on('deliveries').columns(['status', 'next_attempt_at']).execute();
  await db.schema.createIndex('deliveries_trigger').on('deliveries').columns(['trigger_id', 'created_at']).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('deliveries').execute();
  await db.schema.dropTable('triggers').execute();
}
