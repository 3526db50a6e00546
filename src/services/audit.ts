import type { Access } from '../access/index.ts';
import type { Principal } from '../domain/access.ts';
import { invalid } from '../domain/errors.ts';
import type { AuditRow, Store } from '../store/index.ts';
import type { PageQuery } from './types.ts';

/** One audit record as the admin API shows it. */
export interface AuditEntry {
  id: string;
  at: string;
  actor: { kind: string; id: string | null; name: string | null };
  action: string;
  target: { kind: string; id: string | null; name: string | null };
  outcome: string;
  detail: unknown;
}

const entry = (r: AuditRow): AuditEntry => ({
  id: r.id,
  at: r.at,
  actor: { kind: r.actor_kind, id: r.actor_id, name: r.actor_name },
  action: r.action,
  target: { kind: r.target_kind, id: r.target_id, name: r.target_name },
  outcome: r.outcome,
  detail: r.detail === null ? null : (JSON.parse(r.detail) as unknown),
});

/** Reading the audit log: the server's administration (`server:admin`). */
export class AuditQueries {
  constructor(
    private readonly store: Store,
    private readonly access: Access,
  ) {}

  /**
   * Records newest first; `since` (RFC 3339) from that time on, `actor` and `target` an id or a
   * name (a username, a repository's full name).
   */
  async list(p: Principal, q: PageQuery & { since?: string; actor?: string; target?: string }): Promise<{ entries: AuditEntry[]; total: number; offset: number }> {
    await this.access.require(p, 'server:admin', { kind: 'server' });
    let since: string | undefined;
    if (q.since !== undefined) {
      const t = Date.parse(q.since);
      if (Number.isNaN(t)) throw invalid('since must be an RFC 3339 date-time, e.g. 2030-01-01T00:00:00Z');
      since = new Date(t).toISOString();
    }
    const { limit = 100, offset = 0 } = q;
    const { rows, total } = await this.store.listAudit(this.store.db, { since, actor: q.actor, target: q.target, limit, offset });
    return { entries: rows.map(entry), total, offset };
  }
}
