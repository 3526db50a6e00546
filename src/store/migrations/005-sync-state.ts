import type { Kysely } from 'kysely';

/** The branch tips both sides agreed on at the last sync, so that a deletion on one side is told from a creation on the other. */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('repo_sync').addColumn('last_state', 'text').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('repo_sync').dropColumn('last_state').execute();
}
