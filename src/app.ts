import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { Access, AuditLog } from './access/index.ts';
import { AutoGc } from './services/auto-gc.ts';
import type { Config } from './config/index.ts';
import type { GitEnv } from './git/runner.ts';
import { gitRestRoutes } from './http/gitrest/routes.ts';
import { adminRoutes } from './http/admin/routes.ts';
import { restPrincipal } from './http/credentials.ts';
import { identityRoutes } from './http/identity/routes.ts';
import { identityV5Routes } from './http/identity-v5/routes.ts';
import { registerDocs, registerOpenApi } from './http/openapi.ts';
import * as rootSchemas from './http/root-schemas.ts';
import { clientErrorHandler, frameworkErrorHandler, registerRoot } from './http/root.ts';
import { rpcRoutes } from './http/rpc/routes.ts';
import { smartHttpRoutes } from './http/smarthttp/routes.ts';
import { smartHttpFastPath } from './http/smarthttp/fast-path.ts';
import { userRoutes } from './http/user/routes.ts';
import { vmRoutes } from './http/vm/routes.ts';
import { CatFilePool, GitReader } from './git/read.ts';
import { closeRefUpdaters } from './git/update-ref.ts';
import { closeLaunchers } from './git/runner.ts';
import { AuditQueries } from './services/audit.ts';
import { Commits } from './services/commits.ts';
import { Jobs } from './services/jobs.ts';
import { GitService } from './services/git-service.ts';
import { HgService } from './services/hg-service.ts';
import { HgWebWorker } from './hg/web.ts';
import { Grants } from './services/grants.ts';
import { ProcessSlots } from './services/process-slots.ts';
import { PackCache } from './git/pack-cache.ts';
import { RepoContent } from './services/repo-content.ts';
import type { RefEvents } from './services/events.ts';
import { RemoteSync } from './services/remote-sync.ts';
import { RepoImport } from './services/repo-import.ts';
import { Search } from './services/search.ts';
import { SshKeys } from './services/ssh-keys.ts';
import { GatewayKey } from './services/gateway-key.ts';
import { Gateway } from './services/gateway.ts';
import { Groups } from './services/groups.ts';
import { Identities } from './services/identities.ts';
import { Outbound } from './services/outbound.ts';
import { Repos } from './services/repos.ts';
import { Users } from './services/users.ts';
import { Vms } from './services/vms.ts';
import { WebhookSigner, Webhooks } from './services/webhooks.ts';
import { VmGateway } from './ssh/gateway.ts';
import { SshServer } from './ssh/server.ts';
import { Browse } from './services/browse.ts';
import { Sessions } from './services/sessions.ts';
import { registerWebConstraint, webRoutes } from './web/routes.ts';
import { routesOwn } from './web/dispatch.ts';
import { Store } from './store/index.ts';
import { isRateLimited } from './domain/errors.ts';
import type { Principal } from './domain/access.ts';

export interface Services {
  store: Store;
  access: Access;
  users: Users;
  repos: Repos;
  identities: Identities;
  groups: Groups;
  grants: Grants;
  content: RepoContent;
  commits: Commits;
  pool: CatFilePool;
  webhooks: Webhooks;
  importer: RepoImport;
  search: Search;
  sync: RemoteSync;
  /** every listener of ref changes: webhooks and remote sync */
  events: RefEvents;
  git: GitEnv;
  /** the one guard for outbound URLs; told where the server listens once it does */
  outbound: Outbound;
  /** resolve, authorize and run git for the transports */
  gitService: GitService;
  /** the pack-objects cache for identical fetches (undefined when off); listens once the app is ready */
  packCache: PackCache | undefined;
  /** the same for Mercurial's wire protocol, through a warm hgweb worker */
  hgService: HgService;
  hgWorker: HgWebWorker;
  /** SSH public keys of identities and users */
  sshKeys: SshKeys;
  /** the VM registry */
  vms: Vms;
  /** the audit log, as admins read it */
  audit: AuditQueries;
  /** the SSH gateway's key pair (DATA/ssh/gateway_ed25519), loaded on first use */
  gatewayKey: GatewayKey;
  /** the SSH gateway's decisions and what it dials */
  gateway: Gateway;
  /** web sign-in sessions */
  sessions: Sessions;
  /** periodic background jobs, claimed by name through the database (one node runs each) */
  jobs: Jobs;
  /** this process's name in leases (PALISADE_NODE_ID, or random) */
  nodeId: string;
  /** the web pages' reading side */
  browse: Browse;
}

/**
 * The data folder holds the database, keys and every repository: only the
 * server's own user may read it. What is created from now on is covered by
 * the process umask (0o077, set by the CLI); this tightens a folder made
 * before: the folder itself, the files in it (database, WAL, keys) and its
 * sub-folders (which close off everything below them).
 */
function tightenDataDir(dataDir: string): void {
  let entries: fs.Dirent[];
  try {
    fs.chmodSync(dataDir, 0o700);
    entries = fs.readdirSync(dataDir, { withFileTypes: true });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  for (const e of entries) {
    if (e.isFile()) fs.chmodSync(path.join(dataDir, e.name), 0o600);
    else if (e.isDirectory()) fs.chmodSync(path.join(dataDir, e.name), 0o700);
  }
}

/** Opens the store and wires the services (no HTTP); the CLI's admin commands use this alone. */
export async function openServices(config: Config): Promise<Services> {
  tightenDataDir(config.dataDir);
  const store = await Store.open(config.dataDir, config.databaseUrl);
  const home = path.join(config.dataDir, 'git-home');
  fs.mkdirSync(home, { recursive: true, mode: 0o700 });
  const git: GitEnv = { home };
  const audit = new AuditLog(store, { retentionDays: config.auditRetentionDays, onError: (err) => process.emitWarning(`audit log write failed: ${(err as Error).message}`) });
  const access = new Access(store, audit);
  const outbound = new Outbound(store, access, { allowPrivate: config.allowPrivateUrls, dataDir: config.dataDir });
  const tokenOpts = { maxTokenLifetimeSeconds: config.maxTokenLifetimeSeconds };
  const users = new Users(store, access, { failures: config.authFailureLimit, windowMs: config.authFailureWindowMs }, tokenOpts);
  // git and grep children started for requests: bounded server-wide and per client
  const slots = new ProcessSlots({ max: config.maxGitProcesses, perClient: config.maxGitProcessesPerClient, queueMs: config.gitQueueMs });
  const repos = new Repos(store, access, config.dataDir, { git, hg: { home }, slots, outbound, fetchTimeoutMs: config.fetchTimeoutMs, protectDefaultBranch: config.protectDefaultBranch });
  const identities = new Identities(store, access, repos, tokenOpts);
  const groups = new Groups(store, access);
  const grants = new Grants(store, repos, access);
  const pool = new CatFilePool(git);
  const reader = new GitReader(git, pool);
  const content = new RepoContent(repos, reader, config.dataDir, slots);
  // Who holds a lease: the node's name and this process, so that two processes given the same
  // PALISADE_NODE_ID (one env file for every replica) never both hold one.
  const leaseOwner = `${config.nodeId}.${crypto.randomBytes(3).toString('hex')}`;
  const webhooks = new Webhooks(store, repos, reader, config.dataDir, new WebhookSigner(config.dataDir), outbound, {
    backoffMs: config.webhookBackoffMs,
    maxAttempts: config.webhookMaxAttempts,
    timeoutMs: 10_000,
    nodeId: leaseOwner,
    leaseMs: config.leaseMs,
  }, { home });
  const sync = new RemoteSync(store, repos, reader, config.dataDir, webhooks, outbound, slots, { timeoutMs: config.fetchTimeoutMs, intervalMs: config.syncIntervalMs, nodeId: leaseOwner, leaseMs: config.leaseMs }, access);
  const events: RefEvents = {
    refsChanged(repoId, changes) {
      webhooks.refsChanged(repoId, changes);
      sync.refsChanged(repoId, changes);
    },
  };
  const jobs = new Jobs(store, { nodeId: leaseOwner, leaseMs: config.leaseMs });
  // git gc --auto after pushes and API commits, in the background (one per repository, two at once)
  // in the foreground (gc.autoDetach off): the job's claim, the bound and the timeout cover the repack itself
  const autoGc = new AutoGc((dir) => reader.run(dir, ['-c', 'gc.autoDetach=false', '-c', 'maintenance.autoDetach=false', 'gc', '--auto', '--quiet'], [], undefined, 1 << 20, 30 * 60_000), jobs);
  const commits = new Commits(repos, reader, config.dataDir, events, access, autoGc);
  const importer = new RepoImport(repos, commits, reader, config.dataDir, {
    outbound,
    fetchTimeoutMs: config.fetchTimeoutMs,
    maxArchiveBytes: config.maxImportBytes,
    archiveLimits: { maxUnpackedBytes: config.maxImportUnpackedBytes, maxEntries: config.maxImportEntries, maxEntryBytes: config.maxImportEntryBytes, maxRatio: config.maxImportRatio },
    slots,
    zipBuffers: new ProcessSlots({ max: 2, perClient: 1, queueMs: config.gitQueueMs }),
  });
  const hgWorker = new HgWebWorker({ home }, path.join(config.dataDir, 'run'));
  const hgService = new HgService(repos, slots, events, hgWorker, { timeoutMs: config.gitTimeoutMs, hg: { home }, runDir: path.join(config.dataDir, 'run') });
  const packCache = config.packCacheMaxBytes > 0
    ? new PackCache({ git, dataDir: config.dataDir, runDir: path.join(config.dataDir, 'run'), cacheDir: path.join(config.dataDir, 'cache', 'packs'), maxBytes: config.packCacheMaxBytes, ttlMs: config.packCacheTtlMs, timeoutMs: config.gitTimeoutMs })
    : undefined;
  const gitService = new GitService(repos, slots, events, { git, dataDir: config.dataDir, timeoutMs: config.gitTimeoutMs, idleTimeoutMs: config.bodyIdleTimeoutMs, quarantineGraceMs: config.quarantineGraceMs, uploadPackRun: () => packCache?.uploadPackRun(), pool, autoGc }, access);
  const gatewayKey = new GatewayKey(config.dataDir);
  const sshKeys = new SshKeys(store, access);
  const vms = new Vms(store, access, gatewayKey);
  const gateway = new Gateway(store, access, { allowPrivate: config.allowPrivateUrls });
  const sessions = new Sessions(store, access, users);
  const browse = new Browse(store, access, repos, reader, config.dataDir, slots);
  return { store, access, users, repos, identities, groups, grants, content, commits, pool, webhooks, importer, search: new Search(repos, reader, config.dataDir, slots), sync, events, git, outbound, gitService, packCache, hgService, hgWorker, sshKeys, vms, gatewayKey, gateway, sessions, browse, jobs, nodeId: config.nodeId, audit: new AuditQueries(store, access) };
}

/** Where the web surface learns the SSH port once SSH listens (buildSsh is called after buildApp). */
const sshPorts = new WeakMap<FastifyInstance, { port: number | undefined }>();

/** The REST APIs' prefixes: their unknown routes want credentials too. */
const API_PREFIXES = ['/v5/', '/identity/v1/', '/git/v1/', '/user/v1/', '/vm/v1/', '/admin/v1/'];

/**
 * The composition root: builds the Fastify app with one plugin per surface.
 * It never listens; `cli/serve` does.
 */
export async function buildApp(config: Config, services: Services): Promise<FastifyInstance> {
  // Git's smart HTTP is offered each request before the framework routes it (fast-path.ts).
  let gitFirst: ((req: IncomingMessage, res: ServerResponse) => boolean) | undefined;
  let draining = false;
  const app = Fastify({
    // the server Fastify would make (its http options, timeouts), with git's fast path in front
    serverFactory: (handler, options) => {
      const o = options as { http?: http.ServerOptions; keepAliveTimeout: number; requestTimeout: number; connectionTimeout: number };
      const server = http.createServer(o.http ?? {}, (req, res) => {
        if (!gitFirst?.(req, res)) handler(req, res);
      });
      server.keepAliveTimeout = o.keepAliveTimeout;
      server.requestTimeout = o.requestTimeout;
      server.setTimeout(o.connectionTimeout);
      return server;
    },
    logger: { level: config.logLevel },
    bodyLimit: config.maxJsonBytes,
    requestTimeout: 0, // pushes and clones may run long; the git child has its own limit, bodies an idle timeout
    connectionTimeout: 0,
    // a client must finish its request line and headers within this (Node's own check, every 5 s)
    http: { headersTimeout: 20_000, connectionsCheckingInterval: 5_000 },
    clientErrorHandler,
    frameworkErrors: frameworkErrorHandler,
    keepAliveTimeout: 65_000,
    forceCloseConnections: 'idle',
    // A request that reached this node before it stopped listening is served (with `Connection:
    // close`), not answered 503: behind a balancer that 503 would go to the client, while the
    // node can still do the work; new connections are refused and go to another node.
    return503OnClosing: false,
    // a repository's full name may be 255 characters (URL-encoded in a REST path: more)
    routerOptions: { maxParamLength: 1024 },
  });
  const { users, repos, identities, access, groups, grants } = services;

  registerRoot(app, { bodyIdleTimeoutMs: config.bodyIdleTimeoutMs });
  const smartHttp = { users, git: services.gitService, hg: services.hgService, maxPackBytes: config.maxPackBytes, bodyIdleTimeoutMs: config.bodyIdleTimeoutMs };
  gitFirst = smartHttpFastPath(smartHttp, app.log, () => draining, routesOwn);
  // set before the server stops listening: what is accepted from then on is answered with `Connection: close`
  app.addHook('preClose', (done) => {
    draining = true;
    done();
  });
  // An unknown route under a REST API answers as its routes do: 401 to a caller without (valid)
  // credentials, 404 to one with them. Smart HTTP's catch-all sends here whatever is not git's.
  // (answered here, not thrown: the route that called this may have another surface's mapper)
  app.setNotFoundHandler(async (req, reply) => {
    if (API_PREFIXES.some((p) => req.url.startsWith(p))) {
      const p = await restPrincipal(req, users).catch((e: unknown) => e);
      if (isRateLimited(p)) return reply.status(429).header('Retry-After', String(p.retryAfterSeconds)).send({ code: p.code, message: p.message });
      if (p instanceof Error || (p as Principal).kind === 'anonymous') return reply.status(401).send({ code: 'UNAUTHORIZED', message: p instanceof Error ? p.message : 'An API key is required' });
    }
    return reply.status(404).send({ code: 'NOT_FOUND', message: 'Route not found' });
  });
  await registerOpenApi(app); // first: it collects every route registered after it
  registerDocs(app);
  app.get('/healthz', { schema: rootSchemas.healthz }, async () => {
    await services.store.db.selectFrom('users').select('id').limit(1).execute();
    return { status: 'ok' };
  });
  await app.register(identityRoutes, { prefix: '/identity/v1', users, identities, sshKeys: services.sshKeys });
  await app.register(identityV5Routes, { prefix: '/v5', users, identities });
  await app.register(adminRoutes, { prefix: '/admin/v1', users, audit: services.audit });
  await app.register(userRoutes, { prefix: '/user/v1', users, sshKeys: services.sshKeys });
  await app.register(vmRoutes, { prefix: '/vm/v1', users, vms: services.vms });
  await app.register(gitRestRoutes, { prefix: '/git/v1', users, repos, content: services.content, commits: services.commits, webhooks: services.webhooks, importer: services.importer, search: services.search, sync: services.sync, maxCommitBytes: config.maxCommitBytes });
  app.get('/.well-known/jwks.json', { schema: rootSchemas.jwks }, async () => ({ keys: [services.webhooks.signer.jwk] }));
  await app.register(rpcRoutes, { prefix: '/_admin/api', users, groups, repos, grants, access, sshKeys: services.sshKeys, defaultRepoType: config.defaultRepoType });
  // Git's smart HTTP keeps its catch-all; the web's own catch-all takes, by route constraint,
  // the requests web/dispatch.ts classifies as pages (browsers, and `/-/` URLs).
  registerWebConstraint(app);
  await app.register(smartHttpRoutes, smartHttp);
  const ssh = { port: config.sshPort || undefined };
  sshPorts.set(app, ssh);
  await app.register(webRoutes, {
    users,
    repos,
    groups,
    grants,
    identities,
    sshKeys: services.sshKeys,
    vms: services.vms,
    webhooks: services.webhooks,
    content: services.content,
    browse: services.browse,
    sessions: services.sessions,
    publicUrl: config.publicUrl,
    sshPort: () => ssh.port,
    secureCookies: config.publicUrl?.startsWith('https://') ?? false,
  });
  let closing = false;
  app.addHook('onReady', async () => {
    if (services.packCache) {
      const log = app.log.child({ component: 'pack-cache' });
      services.packCache.setLog((level, obj, msg) => log[level](obj, msg));
      // without it upload-pack runs pack-objects itself: the server still serves, uncached
      await services.packCache.listen().catch((err: unknown) => app.log.warn({ err }, 'pack cache did not start; fetches run uncached'));
    }
    // retention: what passed it while the server was down goes now, then at most hourly on write
    void services.access.audit.prune().catch((err: unknown) => app.log.warn({ err }, 'audit prune failed'));
    services.webhooks.start();
    services.sync.start();
    // Pushes killed with an earlier process left their quarantine behind: sweep in the background.
    void services.gitService
      .sweepAll(() => closing)
      .then((n) => n && app.log.info({ removed: n }, 'removed quarantine folders of interrupted pushes'))
      .catch((err: unknown) => app.log.warn({ err }, 'quarantine sweep failed'));
    // With a grace (a shared data folder), what was too fresh at start is swept later: once
    // every ten minutes by whichever node claims the job.
    if (config.quarantineGraceMs > 0) {
      services.jobs.every('quarantine-sweep', 10 * 60_000, () => services.gitService.sweepAll(() => closing), (err) => app.log.warn({ err }, 'quarantine sweep failed'));
    }
    // Pack files a crashed process left: swept by whichever node claims the job (each process
    // drops its own expired packs on its own timer).
    const packCache = services.packCache;
    if (packCache) services.jobs.every('pack-cache-sweep', packCache.cleanupIntervalMs, async () => packCache.sweepOrphans(), (err) => app.log.warn({ err }, 'pack cache sweep failed'));
  });
  app.addHook('onClose', async () => {
    closing = true;
    services.sync.stop();
    await Promise.all([services.webhooks.stop(), services.jobs.stop()]);
    services.pool.close();
    closeRefUpdaters();
    closeLaunchers();
    await services.outbound.close();
    services.hgWorker.close();
    services.packCache?.close();
  });
  return app;
}

/**
 * The SSH surface (git over SSH, the VM gateway), built when PALISADE_SSH_PORT is set; it never
 * listens either: `cli/serve` does. It logs through the HTTP app's logger.
 */
export function buildSsh(config: Config, services: Services, app: FastifyInstance): SshServer | undefined {
  if (config.sshPort === undefined) return undefined;
  const log = app.log.child({ surface: 'ssh' });
  const gateway = new VmGateway({ gateway: services.gateway, privateKey: (accountId) => services.gatewayKey.get(accountId).privateKey, log }, { connectTimeoutMs: 15_000 });
  const server = new SshServer(
    { dataDir: config.dataDir, maxConnections: config.sshMaxConnections, authTimeoutMs: config.sshAuthTimeoutMs, maxStartupsPerAddress: config.sshMaxStartupsPerAddress, recheckMs: config.sshRecheckMs, maxPackBytes: config.maxPackBytes },
    { users: services.users, git: services.gitService, hg: services.hgService, log, gateway },
  );
  // the web's clone URLs show the port SSH bound (`0` picks one)
  const listen = server.listen.bind(server);
  server.listen = async (port: number, host: string) => {
    const bound = await listen(port, host);
    const site = sshPorts.get(app);
    if (site) site.port = bound;
    return bound;
  };
  return server;
}
