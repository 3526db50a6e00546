import type { Access, RefUpdate } from '../access/index.ts';
import type { Principal } from '../domain/access.ts';
import { conflict, invalid, isAccessDenied, notFound } from '../domain/errors.ts';
import { isObjectId } from '../domain/validate.ts';
import { ZERO_OID } from '../git/objects.ts';
import type { GitReader } from '../git/read.ts';
import { readRefs } from '../git/refs.ts';
import { fetchRefspecs, isAncestor, pushRefspecs } from '../git/remote.ts';
import { repoDir } from '../git/repo-path.ts';
import { casRef } from '../git/update-ref.ts';
import { leaseFor, type Store } from '../store/index.ts';
import type { RefChange, RefEvents } from './events.ts';
import { type Outbound, redactUrl } from './outbound.ts';
import type { ProcessSlots } from './process-slots.ts';
import { fetchFailure, type Repos } from './repos.ts';
import { now } from './secrets.ts';

const NS = 'refs/palisade-sync/heads/';

/** The remote to sync with, as the route's schema checked it (at most 2000 NUL-free characters each). */
export interface EnableSyncInput {
  /** "owner/repo" on GitHub, or any git URL */
  githubRepoName?: string;
  /** the same, under another name */
  remoteUrl?: string;
}

export interface SyncResult {
  pulled: string[];
  pushed: string[];
  conflicts: string[];
}

/**
 * Two-way sync with a remote (the SDK's github-sync, for any git URL):
 * fetch on a schedule and on demand, push after our own pushes, never force.
 * Branches that moved on both sides are conflicts: reported, left alone.
 */
export class RemoteSync implements RefEvents {
  private readonly running = new Map<string, Promise<SyncResult>>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly store: Store,
    private readonly repos: Repos,
    private readonly reader: GitReader,
    private readonly dataDir: string,
    private readonly events: RefEvents,
    private readonly outbound: Outbound,
    private readonly slots: ProcessSlots,
    private readonly opts: { timeoutMs: number; intervalMs: number; nodeId: string; leaseMs: number },
    private readonly access: Access,
  ) {}

  /** The remote's URL for a name; checked as the caller who links it (file:// only for admins). */
  private async urlFor(p: Principal, name: string): Promise<string> {
    const url = /^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/.test(name) ? `https://github.com/${name}.git` : name;
    const t = await this.outbound.target(p, url, 'git');
    // A sync runs in the background, without a caller to read this server's repositories as.
    if (t.kind === 'self') throw invalid('github-sync cannot link two repositories of this server');
    return new URL(url).href;
  }

  /** The link, or 404; the message says 404 because SDK 0.1.46 maps only such errors to `null`. */
  async get(p: Principal, repo: string) {
    const row = await this.repos.getGit(p, repo, 'repo:read');
    const s = await this.store.findSync(this.store.db, row.id);
    if (!s) throw notFound('No sync is configured for this repository (404)', 'NOT_FOUND');
    // Credentials in the remote's URL are write-only.
    return { githubRepoName: redactUrl(s.remote_name), remoteUrl: redactUrl(s.remote_url), lastSyncedAt: s.last_synced_at, lastError: s.last_error };
  }

  async enable(p: Principal, repo: string, body: EnableSyncInput): Promise<Record<string, never>> {
    const row = await this.repos.getGit(p, repo, 'repo:admin');
    const name = body.githubRepoName ?? body.remoteUrl;
    // either name will do, so the schema cannot require one
    if (!name) throw invalid('githubRepoName must be "owner/repo" or a git URL');
    const url = await this.urlFor(p, name);
    await this.store.upsertSync(this.store.db, { repo_id: row.id, remote_name: name, remote_url: url, created_at: now(), last_synced_at: null, last_error: null, last_state: null });
    this.background(row.id);
    return {};
  }

  async disable(p: Principal, repo: string): Promise<Record<string, never>> {
    const row = await this.repos.getGit(p, repo, 'repo:admin');
    if (!(await this.store.deleteSync(this.store.db, row.id))) throw notFound('No sync is configured for this repository (404)', 'NOT_FOUND');
    return {};
  }

  /** Syncs now; a branch that moved on both sides is a 409 GIT_HUB_SYNC_CONFLICT. */
  async syncNow(p: Principal, repo: string): Promise<SyncResult> {
    const row = await this.repos.getGit(p, repo, 'repo:write');
    if (!(await this.store.findSync(this.store.db, row.id))) throw notFound('No sync is configured for this repository (404)', 'NOT_FOUND');
    // on demand: one slot of the caller's account in the process pool; the refs it moves here are the caller's to move
    const r = await this.slots.run(p, () => this.sync(row.id, p));
    if (r.conflicts.length) throw conflict(`GitHub Sync Conflict: branch ${r.conflicts.join(', ')} moved on both sides; nothing was forced`, 'GIT_HUB_SYNC_CONFLICT');
    return r;
  }

  refsChanged(repoId: string, changes: RefChange[]): void {
    if (changes.some((c) => c.ref.startsWith('refs/heads/'))) this.background(repoId);
  }

  private background(repoId: string): void {
    void this.store
      .findSync(this.store.db, repoId)
      .then((s) => (s ? this.sync(repoId) : undefined))
      .catch(() => undefined);
  }

  start(): void {
    this.timer = setInterval(() => {
      void this.store
        .listSyncs(this.store.db)
        // one after the other: a scheduled round never runs more git processes than one sync does
        .then(async (all) => {
          // every node's timer fires; a repository another node synced within this round, or is syncing now, is skipped
          const since = new Date(Date.now() - this.opts.intervalMs * 0.9).toISOString();
          for (const s of all) await this.sync(s.repo_id, undefined, since).catch(() => undefined);
        })
        .catch(() => undefined);
    }, this.opts.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /**
   * One sync of a repository at a time; a request while one runs waits for it and runs again.
   * The branches it moves here are decided first, all of them, for `p` (a sync on demand) or
   * for the link itself (undefined: the background, which protected branches bind): one
   * refused moves none (AccessDenied).
   */
  sync(repoId: string, p?: Principal, notSyncedSince?: string): Promise<SyncResult> {
    const prev = this.running.get(repoId) ?? Promise.resolve(undefined);
    const next = prev.catch(() => undefined).then(() => this.leased(repoId, p, notSyncedSince));
    this.running.set(repoId, next);
    void next.finally(() => {
      if (this.running.get(repoId) === next) this.running.delete(repoId);
    }).catch(() => undefined);
    return next;
  }

  private lease() {
    return leaseFor(this.opts.nodeId, this.opts.leaseMs);
  }

  /**
   * One sync under the repository's lease in the database, so that of several nodes one syncs
   * a repository at a time. A periodic run (`notSyncedSince`) that finds it held, or done
   * recently, is skipped; any other run waits for the lease (up to the fetch timeout), since
   * it has news the running one may not have seen. The lease is renewed while git runs.
   */
  private async leased(repoId: string, p: Principal | undefined, notSyncedSince: string | undefined): Promise<SyncResult> {
    const none: SyncResult = { pulled: [], pushed: [], conflicts: [] };
    const deadline = Date.now() + this.opts.timeoutMs;
    while (!(await this.store.claimSync(this.store.db, repoId, this.lease(), notSyncedSince))) {
      if (notSyncedSince !== undefined || !(await this.store.findSync(this.store.db, repoId))) return none;
      if (Date.now() > deadline) throw conflict('Another node is syncing this repository; try again', 'SYNC_BUSY');
      await new Promise((r) => setTimeout(r, 250));
    }
    const renew = setInterval(() => {
      void this.store.claimSync(this.store.db, repoId, this.lease()).catch(() => undefined);
    }, Math.max(250, Math.floor(this.opts.leaseMs / 3)));
    try {
      return await this.syncOnce(repoId, p);
    } finally {
      clearInterval(renew);
      await this.store.releaseSync(this.store.db, repoId, this.opts.nodeId).catch(() => undefined);
    }
  }

  private async syncOnce(repoId: string, p: Principal | undefined): Promise<SyncResult> {
    const link = await this.store.findSync(this.store.db, repoId);
    const row = await this.store.findRepoById(this.store.db, repoId);
    if (!link || !row) return { pulled: [], pushed: [], conflicts: [] };
    const dir = repoDir(this.dataDir, repoId);
    const fopts = { timeoutMs: this.opts.timeoutMs };
    const result: SyncResult = { pulled: [], pushed: [], conflicts: [] };
    try {
      // Checked again at every use (DNS answers change) and pinned to the addresses checked.
      const remote = this.outbound.gitRemote(await this.outbound.target(undefined, link.remote_url, 'git'));
      await fetchRefspecs(this.reader.g, dir, remote, [`+refs/heads/*:${NS}*`], { ...fopts, prune: true });
      const theirs = await readRefs(dir, NS);
      const local = await this.reader.heads(dir);
      const names = new Set([...[...theirs.keys()].map((r) => r.slice(NS.length)), ...[...local.keys()].map((r) => r.slice('refs/heads/'.length))]);
      // What both sides had last time tells a deletion on one side from a new branch on the other.
      const base = (link.last_state ? JSON.parse(link.last_state) : {}) as Record<string, string>;
      const finalLocal = new Map<string, string>();
      const finalRemote = new Map<string, string>();
      const toPush: string[] = [];
      const toDeleteRemote: string[] = [];
      const moved: RefChange[] = [];
      /** the moves of local branches: planned first, decided together, then made */
      const plan: { b: string; before: string | null; after: string | null }[] = [];
      for (const b of [...names].sort()) {
        const r = theirs.get(`${NS}${b}`);
        const l = local.get(`refs/heads/${b}`);
        if (l) finalLocal.set(b, l);
        if (r) finalRemote.set(b, r);
        if (r === l || (r && !isObjectId(r)) || (l && !isObjectId(l))) continue;
        if (!l) {
          if (base[b] === r) toDeleteRemote.push(b); // deleted here since the last sync
          else plan.push({ b, before: null, after: r! });
        } else if (!r) {
          // deleted on the remote since the last sync, and unchanged here: delete here too
          if (base[b] === l) plan.push({ b, before: l, after: null });
          else toPush.push(b);
        } else if (await isAncestor(this.reader.g, dir, l, r)) plan.push({ b, before: l, after: r });
        else if (await isAncestor(this.reader.g, dir, r, l)) toPush.push(b);
        else result.conflicts.push(b);
      }
      // Nothing is ever forced: every update is a fast-forward. A refused branch refuses the sync.
      const updates: RefUpdate[] = plan.map((m) => ({ ref: `refs/heads/${m.b}`, op: m.before === null ? 'create' : m.after === null ? 'delete' : 'update', force: false }));
      if (updates.length) await this.access.requireRefs(p, row, updates);
      for (const m of plan) {
        const ref = `refs/heads/${m.b}`;
        if (await casRef(this.reader.g, dir, ref, m.after ?? ZERO_OID, m.before ?? ZERO_OID)) {
          result.pulled.push(m.b);
          if (m.after === null) finalLocal.delete(m.b);
          else finalLocal.set(m.b, m.after);
          moved.push({ ref, before: m.before, after: m.after });
        } else if (m.before !== null) result.conflicts.push(m.b); // a new branch that appeared here meanwhile is left alone
      }
      if (toPush.length || toDeleteRemote.length) {
        const specs = [...toPush.map((b) => `refs/heads/${b}:refs/heads/${b}`), ...toDeleteRemote.map((b) => `:refs/heads/${b}`)];
        const pushed = await pushRefspecs(this.reader.g, dir, remote, specs, fopts);
        if (pushed.ok) {
          result.pushed.push(...toPush, ...toDeleteRemote);
          for (const b of toPush) finalRemote.set(b, finalLocal.get(b)!);
          for (const b of toDeleteRemote) finalRemote.delete(b);
        } else result.conflicts.push(...toPush, ...toDeleteRemote);
      }
      const state: Record<string, string> = {};
      for (const [b, oid] of finalLocal) if (finalRemote.get(b) === oid) state[b] = oid;
      await this.store.updateSync(this.store.db, repoId, { last_state: JSON.stringify(state) });
      if (moved.length) this.events.refsChanged(repoId, moved);
      await this.store.updateSync(this.store.db, repoId, { last_synced_at: now(), last_error: result.conflicts.length ? `conflict on ${result.conflicts.join(', ')}` : null });
      return result;
    } catch (e) {
      await this.store.updateSync(this.store.db, repoId, { last_error: (isAccessDenied(e) ? `refused: ${e.message}` : fetchFailure(e)).slice(0, 500) }).catch(() => undefined);
      throw e;
    }
  }
}
