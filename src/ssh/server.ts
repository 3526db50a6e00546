import net, { type Socket } from 'node:net';
import { Transform, type TransformCallback } from 'node:stream';
import type { FastifyBaseLogger } from 'fastify';
import ssh2, { type AuthContext, type ClientInfo, type Connection, type ServerChannel, type Session } from 'ssh2';
import type { Principal } from '../domain/access.ts';
import { isAccessDenied, isDomainError, isRateLimited } from '../domain/errors.ts';
import { safeGitProtocol } from '../git/smart-http.ts';
import type { GitService } from '../services/git-service.ts';
import type { HgService } from '../services/hg-service.ts';
import type { Authenticated, Users } from '../services/users.ts';
import { fingerprintOf } from '../services/ssh-public-key.ts';
import { loadHostKey } from './host-key.ts';
import { type Login, parseGitExec, parseHgExec, parseLogin } from './login.ts';

export interface SshOptions {
  dataDir: string;
  maxConnections: number;
  authTimeoutMs: number;
  /** connections one address may hold open before they authenticate */
  maxStartupsPerAddress: number;
  recheckMs: number;
  /** largest input of one git command (the push's pack), in bytes */
  maxPackBytes: number;
}

export interface SshDeps {
  users: Users;
  git: GitService;
  /** Mercurial's `hg -R <repo> serve --stdio` */
  hg: HgService;
  log: FastifyBaseLogger;
  /** the VM gateway: handles the sessions of a `<vmId>[+<user>]` login (absent: refused) */
  gateway?: GatewayHandler;
}

/** What the gateway gets for a VM login: the authenticated caller and the session to bridge. */
export interface GatewayHandler {
  session(conn: SshConnection, session: Session, login: Extract<Login, { mode: 'vm' }>): void;
}

const { Server, utils } = ssh2;
type Server = InstanceType<typeof Server>;

const MAX_AUTH_ATTEMPTS = 20;
/** One accepted TCP connection; `authenticated` ends its auth timer and per-address count. */
interface OpenSocket {
  socket: Socket;
  authenticated: () => void;
}

const principalLabel = (p: Principal): string => (p.kind === 'user' ? `user:${p.username}` : p.kind === 'identity' ? `identity:${p.identityId}` : p.kind);

/** Counts bytes through and fails once `max` is passed. */
class Meter extends Transform {
  bytes = 0;
  constructor(private readonly max = Number.POSITIVE_INFINITY) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.max) return cb(new Error('input too large'));
    cb(null, chunk);
  }
}

/** One SSH connection: its authentication, the credential it re-checks, its sessions. */
export class SshConnection {
  auth: Authenticated | undefined;
  login: Login | undefined;
  private attempts = 0;
  /** closed by the server (credential gone): sessions stop */
  readonly closed = new AbortController();
  /**
   * whether the credential was live (not revoked, account active) at the last check: only a
   * change from live to withdrawn ends the connection. A key of an inactive account's identity
   * still authenticates (the decision then refuses everything, as over HTTP), and its
   * connection must answer that refusal instead of being cut by the next periodic check.
   */
  private live = false;
  /** checks that live sessions add (the gateway: the grant still holds); any false ends the connection */
  readonly rechecks: (() => Promise<boolean>)[] = [];

  constructor(
    readonly client: Connection,
    readonly info: ClientInfo,
    private readonly server: SshServer,
  ) {}

  get principal(): Principal | undefined {
    return this.auth?.principal;
  }

  end(reason: string): void {
    if (this.closed.signal.aborted) return;
    this.server.deps.log.info({ ssh: { event: 'close', ip: this.info.ip, principal: this.principal && principalLabel(this.principal), reason } }, 'ssh connection closed');
    this.closed.abort();
    this.client.end();
  }

  /**
   * The one authentication step: what the client offers becomes a principal. git logins
   * authenticate with a registered key, or a password pair as for HTTP Basic; VM logins with
   * the identity's key, its token as password, or the token in the login name (`none`).
   */
  async authenticate(ctx: AuthContext): Promise<void> {
    const { users, log } = this.server.deps;
    const login = parseLogin(ctx.username);
    const ip = this.info.ip;
    const reject = (why: string) => {
      if (++this.attempts >= MAX_AUTH_ATTEMPTS) this.end('too many authentication attempts');
      else ctx.reject(['publickey', 'password']);
      if (why) log.info({ ssh: { event: 'auth', ip, login: login.mode, method: ctx.method, ok: false, why } }, 'ssh authentication refused');
    };
    try {
      let a: Authenticated | undefined;
      if (ctx.method === 'none') {
        // the token in the login name (Freestyle's CLI): only for VM logins
        if (login.mode !== 'vm' || !login.token) return reject('');
        a = await users.authenticateToken(login.token, ip);
      } else if (ctx.method === 'publickey') {
        a = await users.authenticateKey(fingerprintOf(ctx.key.data));
        if (!a) return reject('unknown key');
        // The first round only asks whether the key would do; the second carries the signature.
        if (!ctx.signature || !ctx.blob) return ctx.accept();
        const key = utils.parseKey(ctx.key.data);
        if (key instanceof Error || Array.isArray(key) || key.verify(ctx.blob, ctx.signature, ctx.hashAlgo) !== true) return reject('bad signature');
      } else if (ctx.method === 'password') {
        a = login.mode === 'vm' ? await users.authenticateToken(ctx.password, ip) : await users.authenticateBasic(ctx.username, ctx.password, ip);
      } else return reject('');
      if (!a) return reject('invalid credentials');
      // A VM login's principal must be an identity; the decision says so again, with its reason.
      this.live = (await users.revalidate(a.credential)) !== undefined;
      this.auth = a;
      this.login = login;
      log.info({ ssh: { event: 'auth', ip, login: login.mode, vm: login.mode === 'vm' ? login.vmId : undefined, method: ctx.method, principal: principalLabel(a.principal), ok: true } }, 'ssh authenticated');
      ctx.accept();
    } catch (e) {
      if (isRateLimited(e)) return reject('rate limited');
      if (isDomainError(e) && e.kind === 'unauthenticated') return reject('invalid credentials');
      log.error({ err: e }, 'ssh authentication failed');
      reject('error');
    }
  }

  /** Re-checks the credential and every session's own check; ends the connection when one fails. */
  async recheck(): Promise<void> {
    if (!this.auth || this.closed.signal.aborted) return;
    try {
      const p = await this.server.deps.users.revalidate(this.auth.credential);
      if (!p) {
        if (this.live) return this.end('credential revoked, removed or account deactivated');
        // never live (an inactive account's): it ends when the credential itself goes
        if (!(await this.server.deps.users.revalidate(this.auth.credential, { requireActive: false }))) return this.end('credential revoked or removed');
        return;
      }
      this.live = true;
      this.auth = { ...this.auth, principal: p };
      for (const check of this.rechecks) if (!(await check())) return this.end('access withdrawn');
    } catch (e) {
      this.server.deps.log.warn({ err: e }, 'ssh re-check failed');
    }
  }

  /** A session: git commands for git logins, the gateway for VM logins, nothing else ever. */
  onSession(session: Session): void {
    const login = this.login;
    if (login?.mode === 'vm') {
      if (this.server.deps.gateway) return this.server.deps.gateway.session(this, session, login);
      session.on('shell', (accept) => refuse(accept(), 'the VM gateway is not enabled on this server'));
      session.on('exec', (accept) => refuse(accept(), 'the VM gateway is not enabled on this server'));
      return;
    }
    const env: Record<string, string> = {};
    session.on('env', (accept, _reject, info) => {
      // only the protocol version travels; git sends GIT_PROTOCOL=version=2
      if (info.key === 'GIT_PROTOCOL') env.GIT_PROTOCOL = info.val;
      accept?.();
    });
    session.on('pty', (accept) => accept?.());
    session.on('window-change', (accept) => accept?.());
    session.on('shell', (accept) => refuse(accept(), `Hi${this.principal?.kind === 'user' ? ` ${this.principal.username}` : ''}! Palisade does not provide shell access; use git.`));
    session.on('subsystem', (_accept, reject) => reject());
    session.on('exec', (accept, _reject, info) => {
      const ch = accept();
      const hg = parseHgExec(info.command);
      void (hg ? this.runHg(ch, hg.repo) : this.runGit(ch, info.command, env)).catch((e: unknown) => {
        this.server.deps.log.error({ err: e }, 'ssh git command failed');
        refuse(ch, 'internal error');
      });
    });
  }

  /** `hg -R <repo> serve --stdio`: decided through the hg service, hg's own protocol on the channel. */
  private async runHg(ch: ServerChannel, repo: string): Promise<void> {
    const { hg, log } = this.server.deps;
    const p = this.principal!;
    const started = Date.now();
    const ac = new AbortController();
    const abort = () => ac.abort();
    ch.on('close', abort);
    this.closed.signal.addEventListener('abort', abort, { once: true });
    const input = new Meter(this.server.options.maxPackBytes);
    ch.on('error', () => input.destroy());
    ch.pipe(input);
    const output = new Meter();
    output.pipe(ch, { end: false });
    try {
      const r = await hg.serveSsh(p, repo, { input, output, errOutput: ch.stderr, signal: ac.signal });
      log.info({ ssh: { event: 'hg', ip: this.info.ip, principal: principalLabel(p), repo, outcome: r.code === 0 ? 'ok' : 'failed', code: r.code, bytesIn: input.bytes, bytesOut: output.bytes, ms: Date.now() - started } }, 'ssh hg command');
      if (!ch.destroyed) {
        ch.exit(r.code ?? 1);
        ch.end();
      }
    } catch (e) {
      log.info({ ssh: { event: 'hg', ip: this.info.ip, principal: principalLabel(p), repo, outcome: 'refused', why: e instanceof Error ? e.message : String(e) } }, 'ssh hg command');
      refuse(ch, gitRefusal(e));
    } finally {
      this.closed.signal.removeEventListener('abort', abort);
    }
  }

  private async runGit(ch: ServerChannel, command: string, env: Record<string, string>): Promise<void> {
    const { git, log } = this.server.deps;
    const p = this.principal!;
    const g = parseGitExec(command);
    if (!g) return refuse(ch, 'Palisade serves git (git-upload-pack, git-receive-pack, git-upload-archive) and Mercurial (hg -R <repo> serve --stdio) only');
    const started = Date.now();
    const ac = new AbortController();
    const abort = () => ac.abort();
    ch.on('close', abort);
    this.closed.signal.addEventListener('abort', abort, { once: true });
    const audit = (outcome: string, extra: object = {}) =>
      log.info({ ssh: { event: 'git', ip: this.info.ip, principal: principalLabel(p), command: g.command, repo: g.repo, outcome, ms: Date.now() - started, ...extra } }, 'ssh git command');
    let session;
    try {
      // Decided before any process starts; a refusal says as much as smart HTTP's does.
      session = await git.open(p, g.repo, g.command, { protocol: safeGitProtocol(env.GIT_PROTOCOL), signal: ac.signal });
    } catch (e) {
      audit('refused', { why: e instanceof Error ? e.message : String(e) });
      return refuse(ch, gitRefusal(e));
    }
    const input = new Meter(this.server.options.maxPackBytes);
    ch.on('error', () => input.destroy());
    ch.pipe(input);
    const output = new Meter();
    output.pipe(ch, { end: false });
    try {
      const r = await session.serve(input, output, ch.stderr);
      audit(r.code === 0 ? 'ok' : 'failed', { code: r.code, idle: r.idle || undefined, bytesIn: input.bytes, bytesOut: output.bytes });
      if (input.bytes > this.server.options.maxPackBytes) ch.stderr.write('ERROR: the push is larger than this server accepts\n');
      if (!ch.destroyed) {
        ch.exit(r.code ?? 1);
        ch.end();
      }
    } finally {
      session.close();
      this.closed.signal.removeEventListener('abort', abort);
    }
  }
}

/** SSH's one error mapper for git: a line git prints after "remote:"-less `fatal:`. */
function gitRefusal(e: unknown): string {
  if (isAccessDenied(e)) return e.kind === 'forbidden' ? 'Permission denied: write access to this repository is required to push' : 'Repository not found';
  if (isDomainError(e) && e.kind === 'unavailable') return `The server is busy; try again in ${e.retryAfterSeconds ?? 1} s`;
  if (isDomainError(e)) return e.message;
  return 'internal error';
}

/** Writes one line to the client's stderr and ends the channel with status 1: never a shell. */
export function refuse(ch: ServerChannel, message: string): void {
  if (ch.destroyed) return;
  ch.stderr.write(`ERROR: ${message}\n`);
  ch.exit(1);
  ch.end();
}

/**
 * The SSH listener: git over SSH and the VM gateway on one port, one authentication step, one
 * decision point (through the services). Off unless PALISADE_SSH_PORT is set.
 */
export class SshServer {
  readonly server: Server;
  readonly hostKey: { fingerprint: string; publicLine: string };
  private readonly connections = new Set<SshConnection>();
  /** the TCP listener: sockets are counted and timed here, then handed to ssh2 */
  private readonly listener = net.createServer((socket) => this.onSocket(socket));
  /** every open socket by `address:port`, and whether it authenticated */
  private readonly sockets = new Map<string, OpenSocket>();
  /** unauthenticated sockets per address */
  private readonly pendingByIp = new Map<string, number>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    readonly options: SshOptions,
    readonly deps: SshDeps,
  ) {
    const key = loadHostKey(options.dataDir);
    this.hostKey = { fingerprint: key.fingerprint, publicLine: key.publicLine };
    this.server = new Server({ hostKeys: [key.privateKey], ident: 'Palisade', keepaliveInterval: 15_000, keepaliveCountMax: 4 }, (client, info) => this.onConnection(client, info));
    this.timer = setInterval(() => {
      for (const c of this.connections) void c.recheck();
    }, options.recheckMs);
    this.timer.unref();
  }

  /**
   * Every TCP connection, from accept: counted against PALISADE_SSH_MAX_CONNECTIONS and, until
   * it authenticates, against a per-address bound; dropped if it has not authenticated within
   * PALISADE_SSH_AUTH_TIMEOUT_SECONDS. (ssh2 reports a connection only once the client's version
   * line arrived: a socket that never sends one would otherwise be neither counted nor timed.)
   */
  private onSocket(socket: Socket): void {
    socket.on('error', () => undefined);
    const ip = socket.remoteAddress ?? '';
    const pending = this.pendingByIp.get(ip) ?? 0;
    if (this.sockets.size >= this.options.maxConnections || pending >= this.options.maxStartupsPerAddress) {
      this.deps.log.warn({ ssh: { event: 'refused', ip, why: 'too many connections' } }, 'ssh connection refused');
      socket.destroy();
      return;
    }
    this.pendingByIp.set(ip, pending + 1);
    let waiting = true;
    const settle = () => {
      if (!waiting) return;
      waiting = false;
      clearTimeout(timer);
      const n = (this.pendingByIp.get(ip) ?? 1) - 1;
      if (n <= 0) this.pendingByIp.delete(ip);
      else this.pendingByIp.set(ip, n);
    };
    const timer = setTimeout(() => {
      if (waiting) {
        this.deps.log.info({ ssh: { event: 'refused', ip, why: 'authentication took too long' } }, 'ssh connection dropped');
        socket.destroy();
      }
    }, this.options.authTimeoutMs);
    timer.unref();
    const key = `${ip}:${socket.remotePort}`;
    this.sockets.set(key, { socket, authenticated: settle });
    socket.once('close', () => {
      settle();
      this.sockets.delete(key);
    });
    this.server.injectSocket(socket);
  }

  private onConnection(client: Connection, info: ClientInfo): void {
    client.on('error', () => undefined);
    const open = this.sockets.get(`${info.ip}:${info.port}`);
    const conn = new SshConnection(client, info, this);
    this.connections.add(conn);
    client.on('authentication', (ctx) => void conn.authenticate(ctx));
    client.on('ready', () => {
      open?.authenticated();
      client.on('session', (accept) => conn.onSession(accept()));
    });
    client.on('close', () => {
      this.connections.delete(conn);
      conn.closed.abort();
    });
  }

  /** Listens; resolves with the bound port. */
  listen(port: number, host: string): Promise<number> {
    return new Promise((resolve, reject) => {
      this.listener.once('error', reject);
      this.listener.listen(port, host, () => {
        this.listener.off('error', reject);
        const addr = this.listener.address();
        resolve(typeof addr === 'object' && addr ? addr.port : port);
      });
    });
  }

  /** Stops accepting, ends every connection. */
  async close(): Promise<void> {
    clearInterval(this.timer);
    for (const c of this.connections) c.end('server shutting down');
    for (const { socket } of this.sockets.values()) socket.destroy();
    await new Promise<void>((r) => this.listener.close(() => r()));
  }
}

