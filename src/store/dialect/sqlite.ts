import Database from 'better-sqlite3';
import { Kysely, SqliteDialect } from 'kysely';
import type { DB } from '../schema.ts';

/**
 * Opens the embedded SQLite database: WAL for concurrent readers, foreign keys
 * on (deleting an identity cascades to its tokens and grants), a busy timeout
 * so that a second process (the CLI) waits instead of failing.
 */
export function openSqlite(file: string): { db: Kysely<DB>; close: () => void } {
  const raw = new Database(file);
  raw.pragma('journal_mode = WAL');
  raw.pragma('synchronous = NORMAL');
  raw.pragma('foreign_keys = ON');
  raw.pragma('busy_timeout = 5000');
  const db = new Kysely<DB>({ dialect: new SqliteDialect({ database: raw }) });
  return { db, close: () => raw.close() };
}

/** Translates a driver error into the one fact services care about: a unique key was violated. */
export function isUniqueViolation(e: unknown): boolean {
  const code = (e as { code?: string } | null)?.code;
  return code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || code === '23505';
}
