import type { Kysely } from 'kysely';

/**
 * Leases for background work, so that several nodes on one database run each piece once: a
 * delivery attempt and a repository's sync run are claimed by a node (`lease_owner`) until
 * `lease_expires_at`, renewed while the work runs; a node that dies loses its claims when they
 * expire and another node takes them. Periodic jobs that belong to no row (gc of a repository,
 * the pack cache's cleanup) get a row of their own in `jobs`, named by the job.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('deliveries').addColumn('lease_owner', 'varchar(64)').execute();
  await db.schema.alterTable('deliveries').addColumn('lease_expires_at', 'varchar(32)').execute();
  await db.schema.alterTable('repo_sync').addColumn('lease_owner', 'varchar(64)').execute();
  await db.schema.alterTable('repo_sync').addColumn('lease_expires_at', 'varchar(32)').execute();
  await db.schema
    .createTable('jobs')
    .addColumn('name', 'varchar(200)', (c) => c.primaryKey())
    .addColumn('lease_owner', 'varchar(64)')
    .addColumn('lease_expires_at', 'varchar(32)')
    .addColumn('last_run_at', 'varchar(32)')
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('jobs').execute();
  for (const t of ['deliveries', 'repo_sync']) {
    await db.schema.alterTable(t).dropColumn('lease_expires_at').execute();
    await db.schema.alterTable(t).dropColumn('lease_owner').execute();
  }
}
