import type { FastifyBaseLogger } from 'fastify';
import ssh2, { type ClientChannel, type PseudoTtyInfo, type ServerChannel, type Session } from 'ssh2';
import type { Principal } from '../domain/access.ts';
import { type Gateway, GatewayRefusal, hostKeyAlgorithms, isGatewayRefusal, type VmTarget } from '../services/gateway.ts';
import { fingerprintOf } from '../services/ssh-public-key.ts';
import type { Login } from './login.ts';
import { type GatewayHandler, refuse, type SshConnection } from './server.ts';

type VmLogin = Extract<Login, { mode: 'vm' }>;

export interface VmGatewayOptions {
  /** how long dialling a VM may take, TCP and SSH handshake included, in milliseconds */
  connectTimeoutMs: number;
}

export interface VmGatewayDeps {
  gateway: Gateway;
  /** the gateway's private key (OpenSSH format), read when the first VM is dialled */
  /** the private key of an account's gateway key pair (the VM's registering account) */
  privateKey: (accountId: string) => string;
  log: FastifyBaseLogger;
}

/**
 * Environment variables passed on to the VM: the locale only (OpenSSH's own `SendEnv` /
 * Debian's `AcceptEnv` default). `TERM` travels in the pty request. Anything else could change
 * how the VM's shell or sshd behaves for a user who was granted a login, not a configuration
 * (`LD_PRELOAD`, `BASH_ENV`, `PATH`…), so it is refused here, whatever the VM's sshd accepts.
 */
const ENV_NAME_RE = /^(?:LANG|LANGUAGE|LC_[A-Z]{1,20})$/;
const ENV_VALUE_RE = /^[A-Za-z0-9_.@=:,+-]{0,100}$/;
const MAX_ENV = 20;

const principalLabel = (p: Principal | undefined): string | undefined => (p?.kind === 'identity' ? `identity:${p.identityId}` : p?.kind === 'user' ? `user:${p.username}` : p?.kind);

/** What a session asked for. */
type Request = { kind: 'shell' } | { kind: 'exec'; command: string } | { kind: 'subsystem'; name: string };

/**
 * The client connection's one connection to its VM: dialled at the first session (after the
 * decision), shared by every later session of the client connection, closed with it. Each
 * later session is decided again before it opens a channel; between sessions, the connection's
 * re-check (every PALISADE_SSH_RECHECK_SECONDS) ends everything once the decision says no.
 */
class Upstream {
  target: VmTarget | undefined;
  private ready: Promise<ssh2.Client> | undefined;

  constructor(
    private readonly conn: SshConnection,
    private readonly login: VmLogin,
    private readonly deps: VmGatewayDeps,
    private readonly opts: VmGatewayOptions,
  ) {}

  /** The connection to the VM, once it is decided (again) that this caller may use it. */
  async client(): Promise<ssh2.Client> {
    const p = this.conn.principal;
    if (!p) throw new GatewayRefusal('not authenticated');
    if (!this.ready) {
      this.ready = this.open(p);
      return this.ready;
    }
    const client = await this.ready;
    await this.deps.gateway.recheck(p, this.target!, this.login.linuxUser);
    return client;
  }

  private async open(p: Principal): Promise<ssh2.Client> {
    const target = await this.deps.gateway.open(p, this.login.vmId, this.login.linuxUser);
    this.target = target;
    const client = await this.dial(target);
    if (this.conn.closed.signal.aborted) {
      client.end();
      throw new GatewayRefusal('connection closed');
    }
    // one connection each way: the VM's goes with the client's, the client's with the VM's
    this.conn.closed.signal.addEventListener('abort', () => client.end(), { once: true });
    client.on('close', () => this.conn.end('VM connection closed'));
    // the listener re-checks the credential and the account; this re-checks the decision
    this.conn.rechecks.push(async () => {
      const now = this.conn.principal;
      try {
        if (!now) return false;
        await this.deps.gateway.recheck(now, target, this.login.linuxUser);
        return true;
      } catch (e) {
        if (!isGatewayRefusal(e)) throw e; // a database hiccup ends nothing
        this.deps.log.info({ ssh: { event: 'gateway-revoked', ip: this.conn.info.ip, principal: principalLabel(now), vm: target.vmId, linuxUser: target.linuxUser, why: e.message } }, 'ssh gateway login withdrawn');
        return false;
      }
    });
    return client;
  }

  /**
   * Dials the checked addresses in turn (the next only when the previous one could not be
   * reached) and logs in as the Linux user with the gateway key. The VM must show the
   * registered host key; the only host key algorithms offered are those of that key, so a VM
   * with several host keys shows the registered one.
   */
  private async dial(t: VmTarget): Promise<ssh2.Client> {
    let last: unknown;
    for (const address of t.addresses) {
      try {
        return await this.dialOne(t, address);
      } catch (e) {
        last = e;
        if (!(e instanceof Unreachable)) throw e;
      }
    }
    this.deps.log.warn({ ssh: { event: 'gateway-dial', vm: t.vmId, host: t.host, port: t.port, err: last instanceof Error ? last.message : String(last) } }, 'ssh gateway cannot reach the VM');
    throw new GatewayRefusal('VM unreachable');
  }

  private dialOne(t: VmTarget, address: string): Promise<ssh2.Client> {
    return new Promise((resolve, reject) => {
      const client = new ssh2.Client();
      let presented: Buffer | undefined;
      let handshake = false;
      client.once('ready', () => resolve(client));
      client.once('handshake', () => (handshake = true));
      client.on('error', (e: Error & { level?: string }) => {
        client.end();
        if (presented && !presented.equals(t.hostKey.blob)) {
          this.deps.log.warn({ ssh: { event: 'gateway-host-key', vm: t.vmId, host: t.host, address, port: t.port, expected: t.hostKey.fingerprint, presented: fingerprintOf(presented) } }, 'ssh gateway: the VM presented another host key than the registered one; refused');
          // the client learns only that the VM cannot be reached: a registration of someone else's
          // address must not tell what answers there (the log has the detail)
          return reject(new GatewayRefusal('VM unreachable'));
        }
        if (e.level === 'client-authentication') {
          this.deps.log.warn({ ssh: { event: 'gateway-login', vm: t.vmId, host: t.host, linuxUser: t.linuxUser } }, 'ssh gateway: the VM refused the gateway key');
          return reject(new GatewayRefusal('VM unreachable'));
        }
        if (handshake) {
          this.deps.log.warn({ ssh: { event: 'gateway-dial', vm: t.vmId, host: t.host, address, port: t.port, err: e.message } }, 'ssh gateway: the connection to the VM failed');
          return reject(new GatewayRefusal('VM unreachable'));
        }
        reject(new Unreachable(e.message));
      });
      try {
        client.connect({
          host: address,
          port: t.port,
          username: t.linuxUser,
          privateKey: this.deps.privateKey(t.accountId),
          // compared as wire blobs: the registered key, nothing else, not even another key of the VM
          hostVerifier: (key: Buffer) => {
            presented = key;
            return key.equals(t.hostKey.blob);
          },
          algorithms: { serverHostKey: hostKeyAlgorithms(t.hostKey.type) as ssh2.ServerHostKeyAlgorithm[] },
          readyTimeout: this.opts.connectTimeoutMs,
          keepaliveInterval: 15_000,
          keepaliveCountMax: 4,
          ident: 'Palisade-gateway',
        });
      } catch (e) {
        reject(new Unreachable(e instanceof Error ? e.message : String(e)));
      }
    });
  }
}

/** A connection that failed before the SSH handshake: the next address may do. */
class Unreachable extends Error {}

/**
 * The VM gateway: bridges each session of a `<vmId>[+<linuxUser>]` login to a session on the
 * VM, opened by Palisade with its own key as the Linux user the decision allowed. Shells
 * (with or without a pty), exec (with or without a pty) and the sftp subsystem are bridged
 * with window changes, signals, stdout and stderr both ways (backpressure through SSH
 * windows), EOF, and the exit status or signal. Port forwarding, agent and X11 forwarding are
 * never offered (the listener refuses them: no handler). Each session writes one audit record.
 */
export class VmGateway implements GatewayHandler {
  private readonly upstreams = new WeakMap<SshConnection, Upstream>();

  constructor(
    private readonly deps: VmGatewayDeps,
    private readonly opts: VmGatewayOptions,
  ) {}

  private upstream(conn: SshConnection, login: VmLogin): Upstream {
    let u = this.upstreams.get(conn);
    if (!u) {
      u = new Upstream(conn, login, this.deps, this.opts);
      this.upstreams.set(conn, u);
    }
    return u;
  }

  session(conn: SshConnection, session: Session, login: VmLogin): void {
    const upstream = this.upstream(conn, login);
    let pty: PseudoTtyInfo | undefined;
    const env: Record<string, string> = {};
    let up: ClientChannel | undefined;
    let started = false;

    session.on('env', (accept, reject, info) => {
      if (!started && ENV_NAME_RE.test(info.key) && ENV_VALUE_RE.test(info.val) && (info.key in env || Object.keys(env).length < MAX_ENV)) {
        env[info.key] = info.val;
        accept?.();
      } else reject?.();
    });
    session.on('pty', (accept, reject, info) => {
      if (started) return reject?.();
      pty = info;
      accept?.();
    });
    session.on('window-change', (accept, _reject, info) => {
      if (up) up.setWindow(info.rows, info.cols, info.height, info.width);
      else if (pty) pty = { ...pty, rows: info.rows, cols: info.cols, width: info.width, height: info.height };
      accept?.();
    });
    session.on('signal', (accept, reject, info) => {
      try {
        if (!up) return reject?.();
        up.signal(info.name);
        accept?.();
      } catch {
        reject?.(); // a name ssh2 does not know
      }
    });
    // x11-req, auth-agent-req: no handler, so the listener refuses them
    const start = (accept: () => ServerChannel | undefined, req: Request) => {
      if (started) return;
      started = true;
      // Accepted at once: the client may send input right after its request, and ssh2 drops
      // data for a session whose request is still unanswered. The channel is paused (its SSH
      // window holds the client back) until the VM's side is open; a refusal comes on it.
      const ch = accept();
      if (!ch) return;
      // errors end the session through close; a write racing a close must not throw
      ch.on('error', () => undefined);
      ch.stderr.on('error', () => undefined);
      ch.pause();
      void this.bridge(conn, login, upstream, ch, req, pty, env, (c) => (up = c)).catch((e: unknown) => {
        this.deps.log.error({ err: e }, 'ssh gateway session failed');
        ch.destroy();
      });
    };
    session.on('shell', (accept) => start(accept, { kind: 'shell' }));
    session.on('exec', (accept, _reject, info) => start(accept, { kind: 'exec', command: info.command }));
    session.on('subsystem', (accept, reject, info) => {
      // sftp only: another subsystem a VM defines is a program the grant does not name
      if (info.name !== 'sftp') return reject?.();
      start(accept, { kind: 'subsystem', name: info.name });
    });
  }

  private async bridge(conn: SshConnection, login: VmLogin, upstream: Upstream, ch: ServerChannel, req: Request, pty: PseudoTtyInfo | undefined, env: Record<string, string>, setUp: (up: ClientChannel) => void): Promise<void> {
    const started = Date.now();
    let clientGone = false;
    ch.once('close', () => (clientGone = true));
    const audit = (fields: object) => {
      const t = upstream.target;
      this.deps.log.info(
        {
          ssh: {
            event: 'gateway',
            ip: conn.info.ip,
            principal: principalLabel(conn.principal),
            vm: login.vmId,
            // the decided user; before a decision, the one asked for (none: the VM's default)
            linuxUser: t?.linuxUser ?? login.linuxUser,
            request: req.kind === 'subsystem' ? `subsystem:${req.name}` : req.kind,
            pty: !!pty,
            ms: Date.now() - started,
            ...fields,
          },
        },
        'ssh gateway session',
      );
    };
    let opened: Opened;
    try {
      const client = await upstream.client();
      opened = await openChannel(client, req, pty, env);
    } catch (e) {
      const why = isGatewayRefusal(e) ? e.message : 'VM unreachable';
      if (!isGatewayRefusal(e)) this.deps.log.warn({ err: e }, 'ssh gateway session failed');
      audit({ allowed: false, why });
      ch.resume();
      refuse(ch, why);
      return;
    }
    const { up } = opened;
    if (clientGone) {
      up.close();
      audit({ allowed: true, bytesIn: 0, bytesOut: 0, why: 'client closed before the VM answered' });
      return;
    }
    setUp(up);
    let bytesIn = 0;
    let bytesOut = 0;
    // client → VM, with EOF; pipe() pauses the client's channel when the VM's window is full
    ch.on('data', (d: Buffer) => (bytesIn += d.length));
    ch.pipe(up);
    // VM → client, stdout and stderr; ended by hand, after the exit status
    up.on('data', (d: Buffer) => (bytesOut += d.length));
    up.stderr.on('data', (d: Buffer) => (bytesOut += d.length));
    up.pipe(ch, { end: false });
    up.stderr.pipe(ch.stderr, { end: false });
    up.on('error', () => undefined);
    up.stderr.on('error', () => undefined);
    ch.once('close', () => {
      up.close();
      // nobody reads what the VM still sends: drop it, so that its channel can end
      up.resume();
      up.stderr.resume();
    });
    const ended = (r: NodeJS.ReadableStream & { readableEnded: boolean }) => new Promise<void>((done) => (r.readableEnded ? done() : r.once('end', () => done()).once('close', () => done())));
    // an empty write calls back once every write before it went out (ssh2 waits for window)
    const flushed = (w: NodeJS.WritableStream) =>
      new Promise<void>((done) => {
        if (!w.writable || clientGone) return done();
        ch.once('close', () => done());
        w.write(Buffer.alloc(0), () => done());
      });
    // the VM's channel closes once its stdout is read to the end
    await opened.closed;
    await ended(up.stderr as unknown as NodeJS.ReadableStream & { readableEnded: boolean });
    await Promise.all([flushed(ch), flushed(ch.stderr)]);
    // the exit status after the last byte of output, then EOF and close
    const exit = opened.exit();
    if (exit && 'code' in exit) ch.exit(exit.code);
    else if (exit) {
      try {
        ch.exit(exit.signal, exit.dump, exit.desc);
      } catch {
        ch.exit(255); // a signal name ssh2 cannot send
      }
    } else if (!clientGone) ch.stderr.write('ERROR: VM connection lost\n');
    ch.end();
    audit({ allowed: true, bytesIn, bytesOut, ...(exit && 'code' in exit ? { exitStatus: exit.code } : exit ? { exitSignal: exit.signal } : { why: clientGone ? 'client closed' : 'VM connection lost' }) });
  }
}

type Exit = { code: number } | { signal: string; dump: boolean; desc: string };

/** The VM's side of a session, with what it reports from the moment it opened. */
interface Opened {
  up: ClientChannel;
  /** the exit status or signal, once the VM sent it */
  exit(): Exit | undefined;
  /** settles when the VM's channel closed (after its stdout ended) */
  closed: Promise<void>;
}

/**
 * Opens the VM's side of a session: pty and environment first, then the shell, command or
 * subsystem. The exit and close listeners go on in ssh2's own callback: a short command's exit
 * status and close can arrive in the same read as the channel's confirmation, before any
 * awaiting code runs.
 */
function openChannel(client: ssh2.Client, req: Request, pty: PseudoTtyInfo | undefined, env: Record<string, string>): Promise<Opened> {
  const ptyOpts = pty && { rows: pty.rows, cols: pty.cols, width: pty.width, height: pty.height, term: pty.term, modes: pty.modes };
  const envOpt = Object.keys(env).length ? env : undefined;
  return new Promise((resolve, reject) => {
    const done = (err: Error | undefined, up: ClientChannel) => {
      if (err) return reject(new GatewayRefusal(`VM refused the session (${err.message.slice(0, 100)})`));
      let exit: Exit | undefined;
      up.on('exit', (code: number | null, signal?: string, dump?: boolean, desc?: string) => {
        exit = typeof code === 'number' ? { code } : { signal: signal ?? 'SIGKILL', dump: !!dump, desc: desc ?? '' };
      });
      const closed = new Promise<void>((r) => up.once('close', () => r()));
      resolve({ up, exit: () => exit, closed });
    };
    try {
      if (req.kind === 'shell') client.shell(ptyOpts ?? false, { env: envOpt }, done);
      else if (req.kind === 'exec') client.exec(req.command, { pty: ptyOpts, env: envOpt }, done);
      else client.subsys(req.name, done);
    } catch {
      reject(new GatewayRefusal('VM unreachable')); // the connection went away in between
    }
  });
}
