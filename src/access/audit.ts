import crypto from 'node:crypto';
import type { Principal } from '../domain/access.ts';
import type { AuditRow, Store } from '../store/index.ts';

/** What an audit record is about. */
export interface AuditTarget {
  kind: 'repo' | 'identity' | 'token' | 'user' | 'group' | 'vm' | 'server';
  id?: string | null;
  name?: string | null;
}

/** One thing that happened: who (undefined: the server's own background work), what, to what. */
export interface AuditEvent {
  actor: Principal | undefined;
  /** e.g. `token.create`, `grant.git`, `access.denied`, `ref.denied` */
  action: string;
  target: AuditTarget;
  outcome?: 'ok' | 'denied';
  /** structured detail: the facts of a denial, the fields of a change; never a secret */
  detail?: Record<string, unknown>;
}

export interface AuditOptions {
  /** records older than this many days are deleted (0: kept forever) */
  retentionDays: number;
  /** where a failed write is reported (the log); a failed write never fails the request */
  onError?: (err: unknown) => void;
}

const HOUR = 3_600_000;
/** identical denials (same actor, action, target, ref and reason) within this window are recorded once */
const DEDUPE_MS = 1000;
const MAX_DETAIL = 16_384;

const actorOf = (p: Principal | undefined): Pick<AuditRow, 'actor_kind' | 'actor_id' | 'actor_name'> => {
  if (!p) return { actor_kind: 'server', actor_id: null, actor_name: null };
  switch (p.kind) {
    case 'user':
      return { actor_kind: 'user', actor_id: p.userId, actor_name: p.username };
    case 'identity':
      return { actor_kind: 'identity', actor_id: p.identityId, actor_name: null };
    case 'system':
      return { actor_kind: 'system', actor_id: null, actor_name: 'console' };
    case 'anonymous':
      return { actor_kind: 'anonymous', actor_id: null, actor_name: null };
  }
};

/**
 * The audit log: one database table that the decision point (denials) and the services
 * (grants, tokens, identities, users) write to. Retention is kept on write: at most once an
 * hour per process, records past the retention are deleted (an idempotent delete, so several
 * nodes doing it is harmless). Writes never fail the request that caused them.
 */
export class AuditLog {
  private lastPrune = 0;
  private readonly recent = new Map<string, number>();

  constructor(
    private readonly store: Store,
    private readonly o: AuditOptions = { retentionDays: 90 },
  ) {}

  /** Writes one record (and prunes past the retention now and then). */
  async record(e: AuditEvent): Promise<void> {
    try {
      const at = Date.now();
      const actor = actorOf(e.actor);
      const outcome = e.outcome ?? 'ok';
      if (outcome === 'denied') {
        // a caller hammering what it may not do writes one record a second, not one a request
        const d = e.detail ?? {};
        const key = `${actor.actor_kind}:${actor.actor_id}:${e.action}:${e.target.kind}:${e.target.id ?? e.target.name}:${String(d.action ?? '')}:${String(d.ref ?? '')}:${String(d.reason ?? '')}`;
        const last = this.recent.get(key);
        if (last !== undefined && at - last < DEDUPE_MS) return;
        if (this.recent.size >= 10_000) this.recent.clear();
        this.recent.set(key, at);
      }
      let detail = e.detail ? JSON.stringify(e.detail) : null;
      if (detail && detail.length > MAX_DETAIL) detail = JSON.stringify({ truncated: true, text: detail.slice(0, MAX_DETAIL) });
      await this.store.insertAudit(this.store.db, {
        id: crypto.randomUUID(),
        at: new Date(at).toISOString(),
        ...actor,
        action: e.action.slice(0, 64),
        target_kind: e.target.kind,
        target_id: e.target.id?.slice(0, 255) ?? null,
        target_name: e.target.name?.slice(0, 255) ?? null,
        outcome,
        detail,
      });
      if (this.o.retentionDays > 0 && at - this.lastPrune > HOUR) await this.prune(at);
    } catch (err) {
      this.o.onError?.(err);
    }
  }

  /** Deletes the records past the retention; returns how many. */
  async prune(at = Date.now()): Promise<number> {
    this.lastPrune = at;
    if (this.o.retentionDays <= 0) return 0;
    return this.store.pruneAudit(this.store.db, new Date(at - this.o.retentionDays * 24 * HOUR).toISOString());
  }
}
