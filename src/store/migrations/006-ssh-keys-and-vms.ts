import type { Kysely } from 'kysely';

/**
 * SSH public keys and the VM registry. A key belongs to an identity: a user's keys hang on the
 * user's managed identity (as its API keys do on the token table), so one look-up by
 * fingerprint finds the principal, user or identity. A fingerprint is unique server-wide.
 * A VM is a machine the gateway lets identities reach, registered by an account.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('ssh_keys')
    .addColumn('id', 'varchar(36)', (c) => c.primaryKey())
    .addColumn('identity_id', 'varchar(36)', (c) => c.notNull().references('identities.id').onDelete('cascade'))
    .addColumn('fingerprint', 'varchar(64)', (c) => c.notNull().unique())
    .addColumn('key_type', 'varchar(64)', (c) => c.notNull())
    .addColumn('public_key', 'text', (c) => c.notNull())
    .addColumn('title', 'varchar(200)')
    .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('ssh_keys_identity').on('ssh_keys').columns(['identity_id', 'created_at']).execute();

  await db.schema
    .createTable('vms')
    .addColumn('id', 'varchar(128)', (c) => c.primaryKey())
    .addColumn('account_id', 'varchar(36)', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('name', 'varchar(200)')
    .addColumn('host', 'varchar(255)', (c) => c.notNull())
    .addColumn('port', 'integer', (c) => c.notNull())
    .addColumn('default_user', 'varchar(32)', (c) => c.notNull())
    .addColumn('host_key', 'text', (c) => c.notNull())
    .addColumn('created_at', 'varchar(32)', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('vms_account').on('vms').columns(['account_id', 'created_at']).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('vms').execute();
  await db.schema.dropTable('ssh_keys').execute();
}
