import { type Compilable, CompiledQuery } from 'kysely';
import type { Conn } from './index.ts';

/**
 * A query on the request path whose SQL is compiled once. Kysely builds and compiles a query's
 * tree on every call; for the look-ups every git request makes (its repository, its token,
 * the decision's facts) that cost more than running them (bench: about a third of a request's
 * time on the 401 a git client gets first). `build` is called once with a placeholder per
 * argument; each call then runs the same SQL with the placeholders replaced by the arguments.
 * Every argument must be a string the builder passes as a bound value (never an identifier,
 * never spliced into the SQL text): a placeholder found outside the parameters, or missing
 * from them, is a programming error, thrown at the first call. `direct` gives, for a connection,
 * the way to run the SQL at once (ReadNow), when there is one.
 */
export function compiledOnce<A extends string[], R>(build: (c: Conn, ...args: A) => Compilable<R>, direct?: (c: Conn) => ReadNow | undefined): (c: Conn, ...args: A) => Promise<R | undefined> {
  let plan: { sql: string; parameters: readonly unknown[]; slots: (number | undefined)[] } | undefined;
  return async (c, ...args) => {
    if (!plan) {
      const marks = args.map((_, i) => `\u0000palisade-arg-${i}-${Math.random()}\u0000`) as A;
      const q = build(c, ...marks).compile();
      const slots = q.parameters.map((p) => {
        const i = marks.indexOf(p as string);
        return i < 0 ? undefined : i;
      });
      if (marks.some((m, i) => q.sql.includes(m) || !slots.includes(i))) throw new Error('compiledOnce: every argument must be one bound parameter');
      plan = { sql: q.sql, parameters: q.parameters, slots };
    }
    const p = plan;
    const parameters = p.parameters.map((v, i) => (p.slots[i] === undefined ? v : args[p.slots[i]!]));
    const now = direct?.(c)?.(p.sql, parameters);
    if (now) return now[0] as R | undefined;
    const { rows } = await c.executeQuery<R>(CompiledQuery.raw(p.sql, parameters));
    return rows[0];
  };
}

/**
 * Runs a read at once, without Kysely's round of promises and its connection mutex, when the
 * database can answer it now with only committed rows: the rows, or undefined when it cannot
 * (then the query goes through Kysely). SQLite's, for queries on the store's own connection
 * (never a transaction's, which runs its reads itself).
 */
export type ReadNow = (sql: string, parameters: readonly unknown[]) => unknown[] | undefined;
