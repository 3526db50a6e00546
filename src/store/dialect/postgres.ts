import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import type { DB } from '../schema.ts';

/**
 * Opens PostgreSQL (DATABASE_URL): a small pool; the same schema and queries as
 * SQLite. Counts come back as strings (bigint); the store converts them.
 */
export function openPostgres(url: string): { db: Kysely<DB>; close: () => Promise<void> } {
  const pool = new pg.Pool({ connectionString: url, max: 10 });
  // An idle client's error (the server restarted) must not crash the process; the pool replaces it.
  pool.on('error', () => undefined);
  // Nor may a client's error while it is checked out (a connection terminated mid-query, as
  // when the database goes away while background work holds a connection): pg emits it as an
  // 'error' event besides failing the query, and without a listener that event ends the process.
  pool.on('connect', (client) => {
    client.on('error', () => undefined);
  });
  const db = new Kysely<DB>({ dialect: new PostgresDialect({ pool }) });
  return { db, close: () => pool.end().catch(() => undefined) };
}
