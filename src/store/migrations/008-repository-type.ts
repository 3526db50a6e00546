import type { Kysely } from 'kysely';

/** A repository's kind, fixed at creation: `git` (every repository so far) or `hg`. */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('repositories').addColumn('type', 'varchar(8)', (c) => c.notNull().defaultTo('git')).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('repositories').dropColumn('type').execute();
}
