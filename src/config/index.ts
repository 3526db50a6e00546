import crypto from 'node:crypto';
import path from 'node:path';

/** Everything the server reads from its environment and flags, frozen once at start. */
export interface Config {
  readonly dataDir: string;
  readonly host: string;
  readonly port: number;
  readonly adminApiKey: string | undefined;
  readonly databaseUrl: string | undefined;
  readonly sshPort: number | undefined;
  /** SSH listen address (default: the HTTP one). */
  readonly sshHost: string;
  /** SSH connections at once; beyond, new ones are closed at once. */
  readonly sshMaxConnections: number;
  /** How long an SSH connection may take to authenticate, in milliseconds. */
  readonly sshAuthTimeoutMs: number;
  readonly sshMaxStartupsPerAddress: number;
  /** How often live SSH sessions re-check their credential (revoked, removed, deactivated), in milliseconds. */
  readonly sshRecheckMs: number;
  readonly logLevel: string;
  /** Largest smart-HTTP request body (after gunzip) in bytes. */
  readonly maxPackBytes: number;
  /** Longest a git child process may run, in milliseconds. */
  readonly gitTimeoutMs: number;
  /** Longest shutdown waits for in-flight requests, in milliseconds. */
  readonly shutdownTimeoutMs: number;
  /** Largest JSON body on the REST APIs, in bytes. */
  readonly maxJsonBytes: number;
  /** Let outbound fetches (clone_uri, sources) reach private addresses and file:// (tests, closed networks). */
  readonly allowPrivateUrls: boolean;
  /** Longest an outbound fetch (pull, clone from a source) may run, in milliseconds. */
  readonly fetchTimeoutMs: number;
  /** First webhook retry delay in milliseconds; it doubles per attempt, up to ten minutes. */
  readonly webhookBackoffMs: number;
  /** Attempts before a webhook delivery is marked failed. */
  readonly webhookMaxAttempts: number;
  /** Largest tar/zip archive an import downloads, in bytes. */
  readonly maxImportBytes: number;
  /** Most bytes an imported archive may unpack to (tar stream after gunzip; zip entries). */
  readonly maxImportUnpackedBytes: number;
  /** Most entries (files, folders, links) in an imported archive. */
  readonly maxImportEntries: number;
  /** Largest single entry of an imported archive, in bytes. */
  readonly maxImportEntryBytes: number;
  /** Largest unpacked/compressed ratio of an imported archive (checked past 10 MiB unpacked). */
  readonly maxImportRatio: number;
  /** How often linked repositories sync with their remote, in milliseconds. */
  readonly syncIntervalMs: number;
  /** Largest body of a commits.create or repository-create request (file contents inline), in bytes. */
  readonly maxCommitBytes: number;
  /** JSON-RPC create_repo's repo_type when none is given: the seed's `hg`, or `git`. */
  readonly defaultRepoType: 'git' | 'hg';
  /** Failed authentications allowed per client address and per username or key, within the window. */
  readonly authFailureLimit: number;
  readonly authFailureWindowMs: number;
  /** git and grep children running for requests at once, server-wide. */
  readonly maxGitProcesses: number;
  /** Of those, for one client: a principal, or a client address when anonymous. */
  readonly maxGitProcessesPerClient: number;
  /** How long a request waits for a free process slot before it is answered 503, in milliseconds. */
  readonly gitQueueMs: number;
  /** Bytes of finished packs the pack-objects cache keeps (0: the cache is off). */
  readonly packCacheMaxBytes: number;
  /** How long the pack-objects cache serves a finished pack, in milliseconds. */
  readonly packCacheTtlMs: number;
  /** A request body that brings no byte for this long is dropped (and its git child killed), in milliseconds. */
  readonly bodyIdleTimeoutMs: number;
  /**
   * The URL users reach the server at (`https://git.example.com`), when a proxy stands in
   * front: the web's clone URLs and feeds use it, and `https` makes its cookies Secure.
   */
  readonly publicUrl: string | undefined;
  /** The longest life of a token or API key issued through the APIs, in seconds (undefined: no ceiling). */
  readonly maxTokenLifetimeSeconds: number | undefined;
  /** Audit records older than this many days are deleted (0: kept forever). */
  readonly auditRetentionDays: number;
  /** New repositories start with their default branch protected. */
  readonly protectDefaultBranch: boolean;
  /** this process among several on one database and data folder: leases name it (random per start unless set) */
  readonly nodeId: string;
  /** a push quarantine changed within this long is not swept (another node's push may be writing it) */
  readonly quarantineGraceMs: number;
  /** how long a claimed background job (a delivery, a sync run) stays this node's without renewal */
  readonly leaseMs: number;
}

/** The environment variables Palisade reads, with their meaning; `--help` prints this table. */
export const ENV_DOC: ReadonlyArray<[string, string]> = [
  ['PALISADE_DATA_DIR', 'data folder: SQLite database and bare repositories (default ./data)'],
  ['PALISADE_HOST', 'HTTP listen address (default 127.0.0.1)'],
  ['PALISADE_PORT', 'HTTP port (default 8080; 0 picks a free port)'],
  ['PALISADE_ADMIN_API_KEY', 'API key of the admin user created on first start (default: generated, printed once, written to DATA/admin-api-key)'],
  ['DATABASE_URL', 'postgres://… selects PostgreSQL instead of the embedded SQLite (same schema and behaviour)'],
  ['PALISADE_SSH_PORT', 'SSH listener for git over SSH and the VM gateway (default off; 0 picks a free port, printed as "ssh listening on HOST:PORT")'],
  ['PALISADE_SSH_HOST', 'SSH listen address (default: PALISADE_HOST)'],
  ['PALISADE_SSH_MAX_CONNECTIONS', 'SSH connections at once; beyond, new ones are closed (default 256)'],
  ['PALISADE_SSH_AUTH_TIMEOUT_SECONDS', 'how long an SSH connection may take to authenticate (default 30)'],
  ['PALISADE_SSH_MAX_STARTUPS_PER_ADDRESS', 'SSH connections one address may hold open before they authenticate; beyond, new ones are closed (default 64)'],
  ['PALISADE_SSH_RECHECK_SECONDS', 'how often live SSH sessions re-check their key, token or password and account, and gateway sessions their VM grant (default 2)'],
  ['PALISADE_LOG_LEVEL', 'pino log level: fatal, error, warn, info, debug (default info)'],
  ['PALISADE_MAX_PACK_BYTES', 'largest git request body in bytes, after gunzip (default 2147483648)'],
  ['PALISADE_GIT_TIMEOUT_SECONDS', 'longest run of one git process serving a request (default 3600)'],
  ['PALISADE_SHUTDOWN_TIMEOUT_SECONDS', 'how long SIGTERM waits for in-flight requests (default 30)'],
  ['PALISADE_MAX_JSON_BYTES', 'largest JSON request body on the REST APIs (default 1048576)'],
  ['PALISADE_ALLOW_PRIVATE_URLS', '1: let outbound URLs (clone_uri, pull, source, import, webhooks, github-sync) reach loopback, private addresses and file://, and the SSH gateway reach VMs on loopback and link-local addresses (default 0: refused)'],
  ['PALISADE_FETCH_TIMEOUT_SECONDS', 'longest run of one outbound fetch: pull, source, import, sync (default 600)'],
  ['PALISADE_WEBHOOK_BACKOFF_MS', 'first webhook retry delay; doubles per attempt up to 10 minutes (default 1000)'],
  ['PALISADE_WEBHOOK_MAX_ATTEMPTS', 'attempts before a webhook delivery is marked failed (default 15)'],
  ['PALISADE_MAX_IMPORT_BYTES', 'largest tar/zip archive a repository import downloads (default 268435456)'],
  ['PALISADE_MAX_IMPORT_UNPACKED_BYTES', 'most bytes an imported tar/zip may unpack to; more is a 400 IMPORT_TOO_LARGE (default 1073741824)'],
  ['PALISADE_MAX_IMPORT_ENTRIES', 'most entries (files, folders, links) in an imported tar/zip (default 100000)'],
  ['PALISADE_MAX_IMPORT_ENTRY_BYTES', 'largest single file in an imported tar/zip (default 104857600)'],
  ['PALISADE_MAX_IMPORT_RATIO', 'largest unpacked/compressed size ratio of an imported tar.gz/zip, checked past 10 MiB unpacked (default 200)'],
  ['PALISADE_MAX_COMMIT_BYTES', 'largest JSON body of commits.create and repository creation with files (default 104857600)'],
  ['PALISADE_MAX_GIT_PROCESSES', 'git and grep processes serving requests at once, server-wide (default 32); four times as many requests may wait for one'],
  ['PALISADE_MAX_GIT_PROCESSES_PER_CLIENT', 'of those, for one client: an authenticated principal, or one address (IPv6: one /64) when anonymous (default 16); four times as many may wait for one'],
  ['PALISADE_GIT_QUEUE_SECONDS', 'how long a request waits for a free git process before it is answered 503 with Retry-After (default 30; 0: at once)'],
  ['PALISADE_PACK_CACHE', '0: no pack-objects cache; identical concurrent or repeated fetches each run their own pack-objects (default 1)'],
  ['PALISADE_PACK_CACHE_MAX_BYTES', 'bytes of packs the pack-objects cache keeps under DATA/cache/packs; a larger pack is streamed to every fetch that asks for it while it runs, then removed (default 1073741824; 0: the cache is off)'],
  ['PALISADE_PACK_CACHE_TTL_SECONDS', 'how long a finished pack serves identical fetches (same repository, wanted and had objects) (default 120)'],
  ['PALISADE_BODY_IDLE_TIMEOUT_SECONDS', 'a request body that brings no byte for this long is dropped, its git process killed and the connection closed (default 30)'],
  ['PALISADE_SYNC_INTERVAL_SECONDS', 'how often repositories linked with github-sync fetch from their remote (default 300)'],
  ['PALISADE_DEFAULT_REPO_TYPE', 'repo_type of JSON-RPC create_repo when none is given: hg (the seed\'s default) or git (default hg)'],
  ['PALISADE_AUTH_FAILURE_LIMIT', 'failed authentications allowed per client address and per username or key within the window; then 429 with Retry-After (default 20)'],
  ['PALISADE_AUTH_FAILURE_WINDOW_SECONDS', 'the window of that limit, in seconds (default 60)'],
  ['PALISADE_PUBLIC_URL', 'the URL users reach the server at, e.g. https://git.example.com behind a TLS proxy: clone URLs and feeds in the web pages use it, and https makes the sign-in cookie Secure (default: the Host the browser sent)'],
  ['PALISADE_MAX_TOKEN_LIFETIME_SECONDS', 'longest life of an access token or API key issued through the APIs: a token asked without an end gets it, one asked beyond it is refused (default: no ceiling; the CLI is not bound)'],
  ['PALISADE_AUDIT_RETENTION_DAYS', 'audit records older than this are deleted (default 90; 0 keeps them forever)'],
  ['PALISADE_NODE_ID', 'this node\'s name in leases of background work, when several nodes share one PostgreSQL and data folder (default: random per start; logged at start)'],
  ['PALISADE_QUARANTINE_GRACE_SECONDS', 'the quarantine folder of an interrupted push is removed only once nothing in it changed for this long, since on a shared data folder it may be another node\'s push in flight (default 0 with SQLite, one node; with PostgreSQL the git timeout, 3600: a live push\'s receive-pack never runs longer)'],
  ['PALISADE_LEASE_SECONDS', 'how long a node holds a claimed delivery or sync run without renewing it; a node that dies loses its claims after this and another node takes them over (default 60)'],
  ['PALISADE_PROTECT_DEFAULT_BRANCH', '1: new repositories start with their default branch protected (no force push or deletion below admin) (default 0)'],
];

export class ConfigError extends Error {}

function int(env: NodeJS.ProcessEnv, name: string, def: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return def;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) throw new ConfigError(`${name} must be an integer between ${min} and ${max}, got ${JSON.stringify(raw)}`);
  return n;
}

/** A node's name: what the operator set (1-64 of [A-Za-z0-9._-]), or a random one per process. */
function nodeId(raw: string | undefined): string {
  if (raw === undefined || raw === '') return `node-${crypto.randomBytes(6).toString('hex')}`;
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(raw)) throw new ConfigError(`PALISADE_NODE_ID must be 1-64 characters of A-Z a-z 0-9 . _ -, got ${JSON.stringify(raw.slice(0, 80))}`);
  return raw;
}

function repoType(raw: string | undefined): 'git' | 'hg' {
  if (raw === undefined || raw === '') return 'hg';
  if (raw === 'git' || raw === 'hg') return raw;
  throw new ConfigError(`PALISADE_DEFAULT_REPO_TYPE must be hg or git, got ${JSON.stringify(raw)}`);
}

/** PALISADE_PUBLIC_URL as an origin and path without a trailing slash; ConfigError unless http(s). */
function publicUrl(raw: string | undefined): string | undefined {
  if (!raw) return undefined;
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new ConfigError(`PALISADE_PUBLIC_URL must be an http:// or https:// URL, got ${JSON.stringify(raw)}`);
  }
  if ((u.protocol !== 'http:' && u.protocol !== 'https:') || u.username || u.password || u.search || u.hash) throw new ConfigError('PALISADE_PUBLIC_URL must be an http:// or https:// URL without credentials, query or fragment');
  return `${u.origin}${u.pathname}`.replace(/\/+$/, '');
}

/** Flags given on the command line; they win over the environment. */
export interface Flags {
  port?: string;
  host?: string;
  data?: string;
}

/** Builds the frozen Config from environment and flags; throws ConfigError with a clear message. */
export function loadConfig(env: NodeJS.ProcessEnv, flags: Flags = {}): Config {
  const merged = { ...env };
  if (flags.port !== undefined) merged.PALISADE_PORT = flags.port;
  if (flags.host !== undefined) merged.PALISADE_HOST = flags.host;
  if (flags.data !== undefined) merged.PALISADE_DATA_DIR = flags.data;
  const sshRaw = merged.PALISADE_SSH_PORT;
  return Object.freeze({
    dataDir: path.resolve(merged.PALISADE_DATA_DIR || './data'),
    host: merged.PALISADE_HOST || '127.0.0.1',
    port: int(merged, 'PALISADE_PORT', 8080, 0, 65535),
    adminApiKey: merged.PALISADE_ADMIN_API_KEY || undefined,
    databaseUrl: merged.DATABASE_URL || undefined,
    sshPort: sshRaw ? int(merged, 'PALISADE_SSH_PORT', 0, 0, 65535) : undefined,
    sshHost: merged.PALISADE_SSH_HOST || merged.PALISADE_HOST || '127.0.0.1',
    sshMaxConnections: int(merged, 'PALISADE_SSH_MAX_CONNECTIONS', 256, 1, 100_000),
    sshAuthTimeoutMs: int(merged, 'PALISADE_SSH_AUTH_TIMEOUT_SECONDS', 30, 1, 3600) * 1000,
    sshMaxStartupsPerAddress: int(merged, 'PALISADE_SSH_MAX_STARTUPS_PER_ADDRESS', 64, 1, 100_000),
    sshRecheckMs: int(merged, 'PALISADE_SSH_RECHECK_SECONDS', 2, 1, 3600) * 1000,
    logLevel: merged.PALISADE_LOG_LEVEL || 'info',
    maxPackBytes: int(merged, 'PALISADE_MAX_PACK_BYTES', 2 * 1024 ** 3, 1024, Number.MAX_SAFE_INTEGER),
    gitTimeoutMs: int(merged, 'PALISADE_GIT_TIMEOUT_SECONDS', 3600, 1, 86400) * 1000,
    shutdownTimeoutMs: int(merged, 'PALISADE_SHUTDOWN_TIMEOUT_SECONDS', 30, 0, 3600) * 1000,
    maxJsonBytes: int(merged, 'PALISADE_MAX_JSON_BYTES', 1024 * 1024, 1024, 1024 ** 3),
    allowPrivateUrls: merged.PALISADE_ALLOW_PRIVATE_URLS === '1' || merged.PALISADE_ALLOW_PRIVATE_URLS === 'true',
    fetchTimeoutMs: int(merged, 'PALISADE_FETCH_TIMEOUT_SECONDS', 600, 1, 86400) * 1000,
    webhookBackoffMs: int(merged, 'PALISADE_WEBHOOK_BACKOFF_MS', 1000, 10, 3_600_000),
    webhookMaxAttempts: int(merged, 'PALISADE_WEBHOOK_MAX_ATTEMPTS', 15, 1, 100),
    maxImportBytes: int(merged, 'PALISADE_MAX_IMPORT_BYTES', 256 * 1024 * 1024, 1024, Number.MAX_SAFE_INTEGER),
    // 1 GiB unpacked, 100 MiB a file (GitHub's hard limit per file), 100k entries (a large monorepo
    // snapshot), ratio 200: source code packs 3-10x, gzip peaks near 1030x on zeros, so a bomb
    // trips the ratio within its first tens of MiB while real archives stay far below it.
    maxImportUnpackedBytes: int(merged, 'PALISADE_MAX_IMPORT_UNPACKED_BYTES', 1024 ** 3, 1024, Number.MAX_SAFE_INTEGER),
    maxImportEntries: int(merged, 'PALISADE_MAX_IMPORT_ENTRIES', 100_000, 1, 10_000_000),
    maxImportEntryBytes: int(merged, 'PALISADE_MAX_IMPORT_ENTRY_BYTES', 100 * 1024 * 1024, 1, Number.MAX_SAFE_INTEGER),
    maxImportRatio: int(merged, 'PALISADE_MAX_IMPORT_RATIO', 200, 1, 1_000_000),
    syncIntervalMs: int(merged, 'PALISADE_SYNC_INTERVAL_SECONDS', 300, 1, 86400) * 1000,
    maxCommitBytes: int(merged, 'PALISADE_MAX_COMMIT_BYTES', 100 * 1024 * 1024, 1024, 1024 ** 3),
    defaultRepoType: repoType(merged.PALISADE_DEFAULT_REPO_TYPE),
    authFailureLimit: int(merged, 'PALISADE_AUTH_FAILURE_LIMIT', 20, 1, 1_000_000),
    authFailureWindowMs: int(merged, 'PALISADE_AUTH_FAILURE_WINDOW_SECONDS', 60, 1, 86400) * 1000,
    maxGitProcesses: int(merged, 'PALISADE_MAX_GIT_PROCESSES', 32, 1, 100_000),
    maxGitProcessesPerClient: int(merged, 'PALISADE_MAX_GIT_PROCESSES_PER_CLIENT', 16, 1, 100_000),
    gitQueueMs: int(merged, 'PALISADE_GIT_QUEUE_SECONDS', 30, 0, 3600) * 1000,
    packCacheMaxBytes: merged.PALISADE_PACK_CACHE === '0' || merged.PALISADE_PACK_CACHE === 'false' ? 0 : int(merged, 'PALISADE_PACK_CACHE_MAX_BYTES', 1024 ** 3, 0, Number.MAX_SAFE_INTEGER),
    packCacheTtlMs: int(merged, 'PALISADE_PACK_CACHE_TTL_SECONDS', 120, 1, 86400) * 1000,
    bodyIdleTimeoutMs: int(merged, 'PALISADE_BODY_IDLE_TIMEOUT_SECONDS', 30, 1, 86400) * 1000,
    publicUrl: publicUrl(merged.PALISADE_PUBLIC_URL),
    maxTokenLifetimeSeconds: merged.PALISADE_MAX_TOKEN_LIFETIME_SECONDS ? int(merged, 'PALISADE_MAX_TOKEN_LIFETIME_SECONDS', 0, 1, 10 * 366 * 86400) : undefined,
    auditRetentionDays: int(merged, 'PALISADE_AUDIT_RETENTION_DAYS', 90, 0, 100_000),
    protectDefaultBranch: merged.PALISADE_PROTECT_DEFAULT_BRANCH === '1' || merged.PALISADE_PROTECT_DEFAULT_BRANCH === 'true',
    nodeId: nodeId(merged.PALISADE_NODE_ID),
    leaseMs: int(merged, 'PALISADE_LEASE_SECONDS', 60, 1, 86400) * 1000,
    // on a shared folder, a live push's quarantine changed within the git timeout (receive-pack dies at it)
    quarantineGraceMs: int(merged, 'PALISADE_QUARANTINE_GRACE_SECONDS', merged.DATABASE_URL ? int(merged, 'PALISADE_GIT_TIMEOUT_SECONDS', 3600, 1, 86400) : 0, 0, 86400) * 1000,
  });
}
