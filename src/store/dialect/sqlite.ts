import Database from 'better-sqlite3';
import { Kysely, SqliteDialect } from 'kysely';
import type { ReadNow } from '../compiled.ts';
import type { DB } from '../schema.ts';

/**
 * Opens the embedded SQLite database: WAL for concurrent readers, foreign keys
 * on (deleting an identity cascades to its tokens and grants), a busy timeout
 * so that a second process (the CLI) waits instead of failing.
 */
export function openSqlite(file: string): { db: Kysely<DB>; close: () => void; readNow: ReadNow } {
  const raw = new Database(file);
  raw.pragma('journal_mode = WAL');
  raw.pragma('synchronous = NORMAL');
  raw.pragma('foreign_keys = ON');
  raw.pragma('busy_timeout = 5000');
  // The default 2 MB page cache makes look-ups on a large grant table miss: measured
  // p99 of the access decision 238 µs -> 75 µs with these two (bench/access.ts).
  raw.pragma('cache_size = -65536');
  raw.pragma('mmap_size = 268435456');
  // every statement that may write, run on this connection, counts here (see readNow's answers)
  let writes = 0;
  const cached = withStatementCache(raw, () => void writes++);
  const db = new Kysely<DB>({ dialect: new SqliteDialect({ database: cached }) });
  // Another process's commit (the CLI's) changes this; this connection's own writes do not.
  const dataVersion = raw.prepare('PRAGMA data_version').pluck();
  // The answers of the request path's reads while nothing was written: a git client's three
  // requests ask the same token, repository and facts again. Any write on this connection and
  // any other process's commit clears them, before the next read; no other node shares the file.
  const answers = new Map<string, unknown[]>();
  let answered = { writes, version: dataVersion.get() as number };
  // The one connection is Kysely's, behind a mutex that every query awaits; a read of the
  // request path runs on it at once instead, unless a transaction is open on it (another
  // request's, between its awaits), whose uncommitted rows it must not see: then it waits its
  // turn through Kysely like any query.
  const readNow: ReadNow = (sql, parameters) => {
    if (raw.inTransaction) return undefined;
    const version = dataVersion.get() as number;
    if (writes !== answered.writes || version !== answered.version) {
      answers.clear();
      answered = { writes, version };
    }
    const key = `${sql}\u0000${JSON.stringify(parameters)}`;
    let rows = answers.get(key);
    if (!rows) {
      const stmt = cached.prepare(sql);
      if (!stmt.reader || !stmt.readonly) return undefined;
      rows = stmt.all(parameters as unknown[]) as unknown[];
      if (answers.size >= 10_000) answers.clear();
      answers.set(key, rows);
    }
    // each caller gets rows of its own (callers may change what they were given)
    return rows.map((r) => ({ ...(r as object) }));
  };
  return { db, close: () => raw.close(), readNow };
}

/** Translates a driver error into the one fact services care about: a unique key was violated. */
export function isUniqueViolation(e: unknown): boolean {
  const code = (e as { code?: string } | null)?.code;
  return code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || code === '23505';
}

/**
 * Kysely prepares every query anew; SQLite's prepare costs more than most of
 * our indexed look-ups. The queries are built from a fixed set of shapes, so
 * their SQL strings repeat and the prepared statements can be reused. The
 * cache is bounded and simply cleared when full. `onWrite` is called before
 * each run of a statement that may write (not `readonly` in SQLite's terms), and
 * before any other call on the connection but `close` (`exec`, `pragma`,
 * `transaction`…: Kysely makes none, and whatever might is counted as a write).
 */
function withStatementCache(raw: Database.Database, onWrite: () => void): Database.Database {
  const cache = new Map<string, Database.Statement>();
  const prepare = raw.prepare.bind(raw);
  return new Proxy(raw, {
    get(target, prop, receiver) {
      if (prop === 'prepare') {
        return (sql: string) => {
          let stmt = cache.get(sql);
          if (!stmt) {
            if (cache.size >= 500) cache.clear();
            stmt = prepare(sql);
            if (!stmt.readonly) countWrites(stmt, onWrite);
            cache.set(sql, stmt);
          }
          return stmt;
        };
      }
      const v = Reflect.get(target, prop, receiver);
      if (typeof v !== 'function') return v;
      if (prop === 'close') return v.bind(target);
      return (...a: unknown[]) => {
        onWrite();
        return (v as (...a: unknown[]) => unknown).apply(target, a);
      };
    },
  });
}

/** Calls `onWrite` before every run of `stmt` (run, all, get, iterate). */
function countWrites(stmt: Database.Statement, onWrite: () => void): void {
  const target = stmt as unknown as Record<string, (...a: unknown[]) => unknown>;
  for (const m of ['run', 'all', 'get', 'iterate']) {
    const f = target[m]!.bind(stmt);
    target[m] = (...a: unknown[]) => {
      onWrite();
      return f(...a);
    };
  }
}
