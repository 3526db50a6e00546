import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Principal } from '../domain/access.ts';
import { invalid, notFound } from '../domain/errors.ts';
import { branchNameProblem } from '../domain/validate.ts';
import type { GitReader } from '../git/read.ts';
import { type HgEnv, runHg } from '../hg/runner.ts';
import { repoDir } from '../git/repo-path.ts';
import { leaseFor, type DeliveryRow, type Store, type TriggerRow } from '../store/index.ts';
import type { RefChange, RefEvents } from './events.ts';
import { type Outbound, outboundErrorText, redactUrl } from './outbound.ts';
import type { Repos } from './repos.ts';
import { createOnce } from './gateway-key.ts';
import { newId, now } from './secrets.ts';

/**
 * The Ed25519 key that signs webhook deliveries, kept in the data folder
 * (mode 0600) and published as a JWK set. Nodes sharing the data folder share the key.
 */
export class WebhookSigner {
  private readonly privateKey: crypto.KeyObject;
  readonly jwk: crypto.JsonWebKey & { kid: string; alg: string; use: string };

  constructor(dataDir: string) {
    const file = path.join(dataDir, 'webhook-signing-key.pem');
    let pem: string;
    try {
      pem = fs.readFileSync(file, 'utf8');
    } catch {
      const { privateKey } = crypto.generateKeyPairSync('ed25519');
      pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
      // Written whole to a private file, then linked into place (link fails if the name exists):
      // of several nodes starting at once on one shared folder exactly one key wins, every node
      // signs with it, and none reads half a key.
      createOnce(file, pem);
      pem = fs.readFileSync(file, 'utf8');
    }
    this.privateKey = crypto.createPrivateKey(pem);
    const pub = crypto.createPublicKey(this.privateKey).export({ format: 'jwk' });
    const kid = crypto.createHash('sha256').update(JSON.stringify({ crv: pub.crv, kty: pub.kty, x: pub.x })).digest('base64url');
    this.jwk = { ...pub, kid, alg: 'EdDSA', use: 'sig' };
  }

  /** A compact JWS (EdDSA) over {body_sha256, iat, exp, jti}: what x-freestyle-signature carries. */
  sign(body: string): string {
    const iat = Math.floor(Date.now() / 1000);
    const enc = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const input = `${enc({ alg: 'EdDSA', typ: 'JWT', kid: this.jwk.kid })}.${enc({ body_sha256: crypto.createHash('sha256').update(body).digest('hex'), iat, exp: iat + 300, jti: crypto.randomUUID() })}`;
    return `${input}.${crypto.sign(null, Buffer.from(input), this.privateKey).toString('base64url')}`;
  }
}

/** `*` one segment, `**` any depth, `?` one character. */
export function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const ch = glob[i]!;
    if (ch === '*' && glob[i + 1] === '*') {
      i++;
      if (glob[i + 1] === '/') {
        i++;
        re += '(?:.*/)?';
      } else re += '.*';
    } else if (ch === '*') re += '[^/]*';
    else if (ch === '?') re += '[^/]';
    else re += ch.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/** Branch names or globs, or path globs: one, or a list (the schema: at most 100, 300 characters each); null: all. */
export type NameFilter = string | readonly string[] | null;

/** The push a trigger fires on: `event` (only push) and its filters, each also under its singular name. */
export interface TriggerSpec {
  event?: 'push';
  branches?: NameFilter;
  branch?: NameFilter;
  globs?: NameFilter;
  glob?: NameFilter;
}

/** What a trigger does: a webhook (the only kind) to `endpoint`, also called `url`; the schema bounds it to 4096 characters. */
export interface WebhookSpec {
  type?: 'webhook';
  endpoint?: string;
  url?: string;
}

/**
 * A new trigger as the route's schema checked it. The SDK sends `{trigger, action}`; the same
 * fields are also read at the top level.
 */
export interface CreateTriggerInput extends TriggerSpec, WebhookSpec {
  trigger?: TriggerSpec;
  action?: (WebhookSpec & { action?: 'webhook' }) | 'webhook';
}

/** A filter as a list; an empty name would filter on nothing a push can have. */
function nameList(v: NameFilter | undefined, what: string): string[] | null {
  if (v === undefined || v === null) return null;
  const list = typeof v === 'string' ? [v] : [...v];
  if (list.includes('')) throw invalid(`${what} must be a list of at most 100 non-empty strings`);
  return list;
}

export interface WebhookOptions {
  /** first retry delay; doubles per attempt up to ten minutes */
  backoffMs: number;
  maxAttempts: number;
  timeoutMs: number;
  /** this node, as leases name it */
  nodeId: string;
  /** how long a claimed delivery stays this node's without renewal */
  leaseMs: number;
}

const triggerOut = (t: TriggerRow) => ({
  id: t.id,
  repositoryId: t.repo_id,
  trigger: { event: 'push' as const, branches: t.branches ? (JSON.parse(t.branches) as string[]) : null, globs: t.globs ? (JSON.parse(t.globs) as string[]) : null },
  // credentials in the endpoint are write-only: sent as Basic auth, never shown
  action: { action: 'webhook' as const, endpoint: redactUrl(t.endpoint) },
  managed: false,
  createdAt: t.created_at,
});

const deliveryOut = (d: DeliveryRow) => ({
  id: d.id,
  status: d.status,
  attempts: d.attempts,
  lastStatusCode: d.last_status_code,
  lastError: d.last_error,
  nextAttemptAt: d.status === 'pending' ? d.next_attempt_at : null,
  createdAt: d.created_at,
  deliveredAt: d.delivered_at,
  payload: JSON.parse(d.payload) as unknown,
});

/**
 * Push triggers and their webhook deliveries. A push (smart HTTP or the
 * commits endpoint) only queues rows in the database; a background loop
 * delivers them, signed, with exponential backoff, so a slow or absent
 * receiver never blocks a push and a restart loses nothing.
 */
export class Webhooks implements RefEvents {
  private timer: NodeJS.Timeout | undefined;
  private renewer: NodeJS.Timeout | undefined;
  private running = false;
  private kickPending = false;
  private readonly inflight = new Set<string>();

  constructor(
    private readonly store: Store,
    private readonly repos: Repos,
    private readonly reader: GitReader,
    private readonly dataDir: string,
    readonly signer: WebhookSigner,
    private readonly outbound: Outbound,
    private readonly opts: WebhookOptions,
    private readonly hg: HgEnv,
  ) {}

  // ---- trigger management (admin on the repository) -------------------------------

  /** Adds a push trigger (admin on the repository); the endpoint passes the SSRF guard as the caller. */
  async create(p: Principal, repo: string, body: CreateTriggerInput): Promise<{ triggerId: string }> {
    const row = await this.repos.get(p, repo, 'repo:admin');
    // the event can only be push and the action only webhook (the schema allows nothing else)
    const trig: TriggerSpec = body.trigger ?? body;
    const act: WebhookSpec = typeof body.action === 'object' ? body.action : body;
    const endpoint = act.endpoint ?? act.url;
    if (endpoint === undefined) throw invalid('action.endpoint must be a URL');
    await this.outbound.target(p, endpoint, 'webhook');
    const url = new URL(endpoint);
    const branches = nameList(trig.branches ?? trig.branch, 'trigger.branches');
    // names or globs: a glob is checked as the branch name it would be with its wildcards filled in
    for (const b of branches ?? []) if (branchNameProblem(b.replace(/\*\*?|\?/g, 'x'))) throw invalid(`Invalid branch in trigger.branches: ${b.slice(0, 100)}`);
    const globs = nameList(trig.globs ?? trig.glob, 'trigger.globs');
    const id = newId();
    await this.store.insertTrigger(this.store.db, {
      id,
      repo_id: row.id,
      event: 'push',
      branches: branches && JSON.stringify(branches),
      globs: globs && JSON.stringify(globs),
      endpoint: url.toString(),
      created_by: p.kind === 'user' ? p.userId : p.kind === 'identity' ? p.identityId : '',
      created_at: now(),
    });
    return { triggerId: id };
  }

  async list(p: Principal, repo: string) {
    const row = await this.repos.get(p, repo, 'repo:admin');
    return { triggers: (await this.store.listTriggers(this.store.db, row.id)).map(triggerOut) };
  }

  async delete(p: Principal, repo: string, triggerId: string): Promise<void> {
    const row = await this.repos.get(p, repo, 'repo:admin');
    if (!(await this.store.deleteTrigger(this.store.db, row.id, triggerId))) throw notFound(`Trigger not found: ${triggerId.slice(0, 64)}`, 'NOT_FOUND');
  }

  private async trigger(p: Principal, repo: string, triggerId: string): Promise<TriggerRow> {
    const row = await this.repos.get(p, repo, 'repo:admin');
    const t = await this.store.findTrigger(this.store.db, row.id, triggerId);
    if (!t) throw notFound(`Trigger not found: ${triggerId.slice(0, 64)}`, 'NOT_FOUND');
    return t;
  }

  /** The delivery log of a trigger, newest first. */
  async deliveries(p: Principal, repo: string, triggerId: string) {
    const t = await this.trigger(p, repo, triggerId);
    return { deliveries: (await this.store.listDeliveries(this.store.db, t.id, 200)).map(deliveryOut) };
  }

  /** Queues a delivery again, whatever its state (a fresh attempt budget). */
  async redeliver(p: Principal, repo: string, triggerId: string, deliveryId: string) {
    const t = await this.trigger(p, repo, triggerId);
    const d = await this.store.findDelivery(this.store.db, t.id, deliveryId);
    if (!d) throw notFound(`Delivery not found: ${deliveryId.slice(0, 64)}`, 'NOT_FOUND');
    await this.store.updateDelivery(this.store.db, d.id, { status: 'pending', attempts: 0, next_attempt_at: now(), delivered_at: null });
    this.kick();
    return deliveryOut({ ...d, status: 'pending', attempts: 0, next_attempt_at: now(), delivered_at: null });
  }

  // ---- events --------------------------------------------------------------------

  /** Called after refs moved; queues deliveries in the background and never throws. */
  refsChanged(repoId: string, changes: RefChange[]): void {
    this.enqueue(repoId, changes).catch((err: unknown) => process.emitWarning(`webhook enqueue failed: ${(err as Error).message}`));
  }

  private async enqueue(repoId: string, changes: RefChange[]): Promise<void> {
    const branchChanges = changes.filter((c) => c.ref.startsWith('refs/heads/') && c.after);
    if (branchChanges.length === 0) return;
    const triggers = await this.store.listTriggers(this.store.db, repoId);
    if (triggers.length === 0) return;
    const repo = await this.store.findRepoById(this.store.db, repoId);
    if (!repo) return;
    let queued = 0;
    for (const c of branchChanges) {
      const branch = c.ref.slice('refs/heads/'.length);
      let files: string[] | undefined;
      for (const t of triggers) {
        const branches = t.branches ? (JSON.parse(t.branches) as string[]) : null;
        if (branches && !branches.some((b) => b === branch || globToRegExp(b).test(branch))) continue;
        const globs = t.globs ? (JSON.parse(t.globs) as string[]).map(globToRegExp) : null;
        if (globs) {
          files ??= repo.type === 'hg' ? await this.changedHgFiles(this.repos.folderOf(repo), c.before, c.after!) : await this.changedFiles(repoDir(this.dataDir, repoId), c.before, c.after!);
          if (!files.some((f) => globs.some((g) => g.test(f)))) continue;
        }
        const at = now();
        await this.store.insertDelivery(this.store.db, {
          id: newId(),
          trigger_id: t.id,
          payload: JSON.stringify({ event: 'branchUpdate', repoId, branch, commit: c.after }),
          status: 'pending',
          attempts: 0,
          next_attempt_at: at,
          last_error: null,
          last_status_code: null,
          created_at: at,
          delivered_at: null,
        });
        queued++;
      }
    }
    if (queued) this.kick();
  }

  private async changedFiles(dir: string, before: string | null, after: string): Promise<string[]> {
    const r = before ? await this.reader.run(dir, ['diff', '--name-only', '-z', '--no-renames', before, after], [before, after]) : await this.reader.run(dir, ['ls-tree', '-r', '--name-only', '-z', after], [after]);
    return r.stdout.toString('utf8').split('\0').filter(Boolean);
  }

  /** The files a Mercurial push changed between two changesets (ids from the push, checked as such). */
  private async changedHgFiles(dir: string, before: string | null, after: string): Promise<string[]> {
    if (!/^[0-9a-f]{40}$/.test(after) || (before !== null && !/^[0-9a-f]{40}$/.test(before))) return [];
    const revs = before ? ['--rev', before, '--rev', after] : ['--change', after];
    const r = await runHg(this.hg, ['-R', dir, 'status', '-n', '-0', ...revs], { cwd: dir, timeoutMs: 60_000, maxOutput: 16 << 20 }, [dir, after, ...(before ? [before] : [])]);
    return r.stdout.toString('utf8').split('\0').filter(Boolean);
  }

  // ---- delivery loop -------------------------------------------------------------

  /** A lease from now for `ms` (default: the configured lease). */
  private lease(ms = this.opts.leaseMs) {
    return leaseFor(this.opts.nodeId, ms);
  }

  /**
   * Starts the loop: a poll every second, plus a kick whenever something is queued here. Deliveries
   * are claimed through the database with a lease, so however many nodes run the loop each attempt
   * is made by one; the leases of attempts in flight are renewed at a third of their length.
   */
  start(): void {
    this.timer = setInterval(() => this.kick(), 1000);
    this.timer.unref();
    this.renewer = setInterval(() => {
      void this.store.renewDeliveries(this.store.db, [...this.inflight], this.lease()).catch((err: unknown) => process.emitWarning(`webhook lease renewal failed: ${(err as Error).message}`));
    }, Math.max(250, Math.floor(this.opts.leaseMs / 3)));
    this.renewer.unref();
    this.kick();
  }

  /** Stops claiming; attempts in flight finish (up to their timeout) and keep their leases renewed until then. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    const deadline = Date.now() + this.opts.timeoutMs + 2000;
    while ((this.running || this.inflight.size) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    if (this.renewer) clearInterval(this.renewer);
    this.renewer = undefined;
  }

  kick(): void {
    if (this.running) {
      this.kickPending = true;
      return;
    }
    this.running = true;
    void this.drain()
      .catch((err: unknown) => process.emitWarning(`webhook delivery loop: ${(err as Error).message}`))
      .finally(() => {
        this.running = false;
        if (this.kickPending && this.timer) {
          this.kickPending = false;
          this.kick();
        }
      });
  }

  private async drain(): Promise<void> {
    while (this.timer) {
      this.kickPending = false;
      const due = await this.store.claimDeliveries(this.store.db, this.lease(), 20);
      if (due.length === 0) return;
      if (!this.timer) {
        // stopped while claiming: hand them back rather than leave them to expire
        await this.store.releaseDeliveries(this.store.db, due.map((d) => d.id), this.opts.nodeId);
        return;
      }
      await Promise.all(due.map((d) => this.attempt(d)));
    }
  }

  private async attempt(d: DeliveryRow & { endpoint: string }): Promise<void> {
    this.inflight.add(d.id);
    const attempts = d.attempts + 1;
    try {
      let status: number | null = null;
      let error: string | null = null;
      try {
        // The endpoint was checked when the trigger was made; DNS answers change, so check again,
        // and connect only to the addresses checked (the dispatcher's lookup is the guard).
        const target = await this.outbound.target(undefined, d.endpoint, 'webhook');
        const res = await this.outbound.request(target, {
          method: 'POST',
          timeoutMs: this.opts.timeoutMs,
          headers: { 'content-type': 'application/json', 'user-agent': 'Palisade-Webhook', 'x-freestyle-signature': this.signer.sign(d.payload), 'x-palisade-delivery': d.id },
          body: d.payload,
        });
        status = res.statusCode;
        // the answer's body is not needed: drain a little (keeps the connection reusable), then drop it
        await res.body.dump({ limit: 64 * 1024 }).catch(() => undefined);
        if (status < 200 || status >= 300) error = `HTTP ${status}`;
      } catch (e) {
        // a fixed sentence: never the URL (its credentials) nor an engine's message
        error = outboundErrorText(e);
      }
      // Recorded only while this node still holds the lease. A node that dies between sending
      // and this write leaves the attempt to be made again by another: the receiver may then
      // get a delivery twice (x-palisade-delivery names it), never zero times.
      if (error === null) {
        await this.store.finishDelivery(this.store.db, d.id, this.opts.nodeId, { status: 'delivered', attempts, last_status_code: status, last_error: null, delivered_at: now() });
      } else {
        const delay = Math.min(this.opts.backoffMs * 2 ** (attempts - 1), 600_000);
        const failed = attempts >= this.opts.maxAttempts;
        await this.store.finishDelivery(this.store.db, d.id, this.opts.nodeId, {
          status: failed ? 'failed' : 'pending',
          attempts,
          last_status_code: status,
          last_error: error,
          next_attempt_at: new Date(Date.now() + delay).toISOString(),
        });
      }
    } finally {
      this.inflight.delete(d.id);
    }
  }
}
