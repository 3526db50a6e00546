import crypto from 'node:crypto';
import dns from 'node:dns';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import ipaddr from 'ipaddr.js';
import { Agent, type Dispatcher, request } from 'undici';
import type { Access } from '../access/index.ts';
import type { Principal } from '../domain/access.ts';
import { DomainError, invalid } from '../domain/errors.ts';
import { repoDir } from '../git/repo-path.ts';
import type { RemoteAccess } from '../git/remote.ts';
import type { RepoRow, Store } from '../store/index.ts';
import { findRepoByRef } from './repo-ref.ts';

/**
 * The one guard for every URL the server fetches or posts to: clone_uri and pull, sources,
 * imports (git, tar, zip), webhook deliveries and github-sync. Three questions, in order:
 *
 * 1. What is it? http(s) (checked below), `file://` (a server path: only a server admin, only
 *    with PALISADE_ALLOW_PRIVATE_URLS=1, never inside the data folder), or a repository of
 *    this very server named by its HTTP URL (read as the caller, through the decision point,
 *    whatever the switch). Any other scheme is refused.
 * 2. Where does it go? Every address the host resolves to is classified with ipaddr.js, every
 *    IPv6 spelling included (mapped, compatible, NAT64, 6to4, Teredo, site-local, ULA,
 *    link-local, multicast, unspecified): only public unicast passes, unless the switch is on.
 * 3. Does the connection go there? The checked addresses are pinned: HTTP goes through an
 *    undici dispatcher whose lookup is this check (no second resolution a DNS rebinding could
 *    answer differently), git children get `http.curloptResolve` with the checked addresses.
 *
 * Credentials inside a URL are write-only: callers store the URL as given, but it is shown
 * only through `redactUrl`, and the credentials travel as an Authorization header (HTTP) or
 * through git's environment (never on a command line, never in a message).
 */

/** Why an address must not be reached, or undefined for a public unicast address. */
export function addressProblem(addr: string): string | undefined {
  let ip: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    ip = ipaddr.parse(addr.replace(/^\[|\]$/g, '').replace(/%.*$/, ''));
  } catch {
    return 'not an IP address';
  }
  if (ip.kind() === 'ipv4') {
    const range = ip.range();
    return range === 'unicast' ? undefined : range;
  }
  const v6 = ip as ipaddr.IPv6;
  const range = v6.range();
  const p = v6.parts;
  // Forms that carry an IPv4 address: judged by that address.
  if (range === 'ipv4Mapped') return embedded(v6.toIPv4Address().toString(), 'IPv4-mapped');
  if (range === 'rfc6052') {
    // 64:ff9b::/96 translates to the embedded IPv4 address; 64:ff9b:1::/48 is for local use
    if (p[0] === 0x64 && p[1] === 0xff9b && p[2] === 0 && p[3] === 0 && p[4] === 0 && p[5] === 0) return embedded(v4From(p[6]!, p[7]!), 'NAT64');
    return 'local-use NAT64';
  }
  if (range === '6to4') return embedded(v4From(p[1]!, p[2]!), '6to4');
  if (range !== 'unicast') return range;
  // ipaddr.js calls everything it has no name for "unicast", IPv4-compatible ::a.b.c.d
  // included: only the global unicast block 2000::/3 is reachable on the internet.
  if ((p[0]! & 0xe000) !== 0x2000) return 'not global unicast';
  return undefined;
}

const v4From = (hi: number, lo: number): string => `${hi >> 8}.${hi & 0xff}.${lo >> 8}.${lo & 0xff}`;
const embedded = (v4: string, form: string): string | undefined => {
  const problem = addressProblem(v4);
  return problem && `${form} ${problem}`;
};

/** A URL with its credentials (user and password) replaced by `***`, for anything shown or logged. */
export function redactUrl(raw: string): string {
  try {
    const u = new URL(raw);
    if (u.username || u.password) {
      u.username = '***';
      u.password = '';
    }
    return u.toString();
  } catch {
    // not a URL (an "owner/repo" name, or garbage): hide anything that looks like userinfo
    return raw.replace(/\/\/[^/@\s]*@/g, '//***@').slice(0, 300);
  }
}

/** Replaces every URL's credentials inside a free text (error messages from git and friends). */
export const redactText = (text: string): string => text.replace(/([a-z][a-z0-9+.-]*:\/\/)[^/@\s]*@/gi, '$1***@');

/** What a URL turned out to be, once checked. */
export type OutboundTarget =
  /** an http(s) URL whose host resolved to allowed addresses; `url` carries no credentials */
  | { kind: 'http'; url: URL; auth: { username: string; password: string } | undefined; addresses: string[]; shown: string }
  /** a server path an admin named: its real path, outside the data folder */
  | { kind: 'file'; path: string; shown: string }
  /** a repository of this server, already authorized for the caller to read */
  | { kind: 'self'; repo: RepoRow; shown: string };

/** What the URL is for: webhooks only ever POST over http(s); the rest fetch git or archives. */
export type OutboundUse = 'git' | 'archive' | 'webhook';

type Lookup = (host: string) => Promise<{ address: string; family: number }[]>;

export interface OutboundOptions {
  allowPrivate: boolean;
  dataDir: string;
  /** tests swap the resolver to prove pinning; production uses the system's */
  resolve?: Lookup;
}

const systemLookup: Lookup = (host) => dns.promises.lookup(host, { all: true, verbatim: true });

/** A failure of an outbound request, in words that are safe to show (no paths, no engine text). */
export function outboundErrorText(e: unknown): string {
  if (e instanceof DomainError) return e.message;
  const err = e as { code?: string; name?: string; cause?: { code?: string } };
  const code = err.code ?? err.cause?.code;
  if (code === 'PALISADE_ADDRESS_REFUSED') return 'the host resolves to a private or local address; refused';
  if (code === 'ECONNREFUSED') return 'connection refused';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'host not found';
  if (code === 'ECONNRESET' || code === 'UND_ERR_SOCKET') return 'connection reset';
  if (code === 'ETIMEDOUT' || code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || err.name === 'TimeoutError' || err.name === 'AbortError') return 'timed out';
  if (code?.startsWith('ERR_TLS') || code?.includes('CERT')) return 'TLS handshake failed';
  return 'request failed';
}

export class Outbound {
  /** host:port pairs this server answers on (set once listening), for recognising its own URLs */
  private readonly self = new Set<string>();
  private readonly resolve: Lookup;
  readonly dispatcher: Dispatcher;
  private dataDirReal: string | undefined;

  constructor(
    private readonly store: Store,
    private readonly access: Access,
    private readonly opts: OutboundOptions,
  ) {
    this.resolve = opts.resolve ?? systemLookup;
    // The pin: undici connects to what this lookup returns, and it returns only checked addresses.
    this.dispatcher = new Agent({
      connect: {
        lookup: (host: string, options: dns.LookupOptions, cb: (err: NodeJS.ErrnoException | null, address: string | dns.LookupAddress[], family?: number) => void) => {
          this.checkedAddresses(host).then(
            (addrs) => (options.all ? cb(null, addrs) : cb(null, addrs[0]!.address, addrs[0]!.family)),
            (err: NodeJS.ErrnoException) => cb(err, ''),
          );
        },
      } as Agent.Options['connect'],
      connections: 8,
      pipelining: 0,
    });
  }

  /** Tells the guard where this server listens, so that URLs naming it are recognised. */
  addSelf(host: string, port: number): void {
    const h = host.replace(/^\[|\]$/g, '').toLowerCase();
    const names = h === '0.0.0.0' || h === '::' ? ['127.0.0.1', 'localhost', '::1', ...localAddresses()] : h === '127.0.0.1' || h === '::1' ? [h, 'localhost'] : [h];
    for (const n of names) this.self.add(`${n}:${port}`);
  }

  /** Resolves `host` and checks every address; throws a refusal, or returns them in order. */
  private async checkedAddresses(host: string): Promise<{ address: string; family: number }[]> {
    const bare = host.replace(/^\[|\]$/g, '');
    const addrs = net.isIP(bare) ? [{ address: bare, family: net.isIP(bare) }] : await this.resolve(bare);
    if (addrs.length === 0) throw Object.assign(new Error('no address'), { code: 'ENOTFOUND' });
    if (!this.opts.allowPrivate) for (const a of addrs) if (addressProblem(a.address)) throw Object.assign(new Error('refused'), { code: 'PALISADE_ADDRESS_REFUSED' });
    return addrs;
  }

  /**
   * Checks `raw` for `use` on behalf of `caller` (undefined: a URL stored earlier, checked
   * when it was stored, now used by a background job). Throws `invalid` with a reason that
   * never shows the URL's credentials.
   */
  async target(caller: Principal | undefined, raw: string, use: OutboundUse): Promise<OutboundTarget> {
    if (typeof raw !== 'string' || raw.length === 0 || raw.length > 2048 || /[\0-\x1f\x7f]/.test(raw)) throw invalid('Invalid URL');
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw invalid(`Invalid URL: ${redactUrl(raw).slice(0, 200)}`);
    }
    const shown = redactUrl(url.href);
    if (url.protocol === 'file:') {
      if (use === 'webhook') throw invalid('a webhook endpoint must be an http(s) URL');
      return this.fileTarget(caller, url, shown);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw invalid(`URL scheme ${url.protocol.slice(0, 20)} is not allowed; use http(s)`);
    if (caller && use === 'git') {
      const self = await this.selfTarget(caller, url, shown);
      if (self) return self;
    }
    let auth: { username: string; password: string } | undefined;
    try {
      auth = url.username || url.password ? { username: decodeURIComponent(url.username), password: decodeURIComponent(url.password) } : undefined;
    } catch {
      throw invalid(`Invalid URL: ${shown.slice(0, 200)} (malformed percent-encoding in its credentials)`);
    }
    const clean = new URL(url.href);
    clean.username = '';
    clean.password = '';
    let addresses: string[];
    try {
      addresses = (await this.checkedAddresses(url.hostname)).map((a) => a.address);
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (code === 'PALISADE_ADDRESS_REFUSED') throw invalid(`URL host ${url.hostname.slice(0, 100)} resolves to a private or local address; refused`);
      throw invalid(`Cannot resolve host ${url.hostname.slice(0, 100)}`);
    }
    return { kind: 'http', url: clean, auth, addresses, shown };
  }

  /** `file://`: a server admin's migration path, with the switch on, outside the data folder. */
  private async fileTarget(caller: Principal | undefined, url: URL, shown: string): Promise<OutboundTarget> {
    if (url.host !== '') throw invalid('file:// URLs must not name a host');
    // Everyone but a server admin gets the same answer whatever the switch: no server paths.
    if (caller !== undefined && !(await this.access.authorize(caller, 'server:admin', { kind: 'server' })).allowed) {
      throw invalid('file:// URLs are not allowed; name a repository by its http(s) URL');
    }
    if (!this.opts.allowPrivate) throw invalid('file:// URLs are not allowed (an admin may use them when PALISADE_ALLOW_PRIVATE_URLS=1)');
    let real: string;
    try {
      real = fs.realpathSync(decodeURIComponent(url.pathname));
    } catch {
      throw invalid('The path of the file:// URL does not exist', 'SOURCE_NOT_FOUND');
    }
    this.dataDirReal ??= fs.realpathSync(this.opts.dataDir);
    const rel = path.relative(this.dataDirReal, real);
    if (rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel))) throw invalid('file:// URLs must not point inside the data folder');
    return { kind: 'file', path: real, shown };
  }

  /**
   * A URL naming one of this server's own repositories (`http://<this host:port>/<id or
   * name>[.git]`): the caller must be allowed to read it; missing and hidden look the same.
   * Undefined when the URL is not this server's.
   */
  private async selfTarget(caller: Principal, url: URL, shown: string): Promise<OutboundTarget | undefined> {
    const port = url.port || (url.protocol === 'https:' ? '443' : '80');
    if (!this.self.has(`${url.hostname.replace(/^\[|\]$/g, '').toLowerCase()}:${port}`)) return undefined;
    let path: string;
    try {
      path = decodeURIComponent(url.pathname);
    } catch {
      throw invalid(`Repository not found on this server: ${shown.slice(0, 300)}`, 'SOURCE_NOT_FOUND');
    }
    const m = /^\/(.+?)(?:\.git)?\/?$/.exec(path);
    const repo = m ? await findRepoByRef(this.store, m[1]!) : undefined;
    const d = repo && (await this.access.authorize(caller, 'repo:read', { kind: 'repo', repoId: repo.id }));
    if (!repo || !d?.allowed) throw invalid(`Repository not found on this server: ${shown.slice(0, 300)}`, 'SOURCE_NOT_FOUND');
    return { kind: 'self', repo, shown };
  }

  /** How a git child reaches a checked target: the URL, the pin, and credentials in its environment. */
  gitRemote(t: OutboundTarget): RemoteAccess {
    if (t.kind === 'file') return { url: `file://${t.path}`, allowFile: true, config: [], env: {} };
    if (t.kind === 'self') return { url: `file://${repoDir(this.opts.dataDir, t.repo.id)}`, allowFile: true, config: [], env: {} };
    const port = t.url.port || (t.url.protocol === 'https:' ? '443' : '80');
    const host = t.url.hostname.replace(/^\[|\]$/g, '');
    const config: string[] = [];
    // curl connects to the checked addresses only; an IP literal needs no pin.
    if (!net.isIP(host)) config.push(`http.curloptResolve=${host}:${port}:${t.addresses.map((a) => (net.isIPv6(a) ? `[${a}]` : a)).join(',')}`);
    const env: Record<string, string> = {};
    if (t.auth) {
      env.GIT_CONFIG_COUNT = '1';
      env.GIT_CONFIG_KEY_0 = 'http.extraHeader';
      env.GIT_CONFIG_VALUE_0 = `Authorization: Basic ${Buffer.from(`${t.auth.username}:${t.auth.password}`).toString('base64')}`;
    }
    return { url: t.url.href, allowFile: false, config, env };
  }

  /**
   * One HTTP request to a checked http(s) target through the pinned dispatcher: no redirects,
   * a time limit, credentials as Basic auth. The caller reads (and bounds) the body.
   */
  async request(t: OutboundTarget, init: { method: 'GET' | 'POST'; headers?: Record<string, string>; body?: string; timeoutMs: number; signal?: AbortSignal }): Promise<Dispatcher.ResponseData> {
    if (t.kind !== 'http') throw invalid('not an http(s) URL');
    const headers: Record<string, string> = { 'user-agent': 'Palisade', ...init.headers };
    if (t.auth) headers.authorization = `Basic ${Buffer.from(`${t.auth.username}:${t.auth.password}`).toString('base64')}`;
    const signal = init.signal ? AbortSignal.any([init.signal, AbortSignal.timeout(init.timeoutMs)]) : AbortSignal.timeout(init.timeoutMs);
    return request(t.url, { method: init.method, headers, body: init.body, signal, dispatcher: this.dispatcher, headersTimeout: init.timeoutMs, bodyTimeout: init.timeoutMs });
  }

  /**
   * A private, short-lived relay for a client that cannot be pinned itself (Mercurial's HTTP
   * client has no resolve override): it listens on loopback under a random path, and forwards
   * each request under that path to the checked target through the pinned dispatcher (no
   * redirects, the target's credentials added, only the protocol's own headers passed). The
   * client talks plain HTTP to the relay; the relay speaks http(s) to the target. Close it when
   * the fetch is over.
   */
  async relay(t: OutboundTarget, timeoutMs: number): Promise<{ url: string; close: () => void }> {
    if (t.kind !== 'http') throw invalid('not an http(s) URL');
    const secret = crypto.randomBytes(24).toString('hex');
    const base = t.url.pathname.replace(/\/+$/, '');
    const server = http.createServer((req, res) => {
      const prefix = `/${secret}`;
      if (!req.url?.startsWith(prefix)) {
        res.writeHead(404).end();
        return;
      }
      const rest = req.url.slice(prefix.length);
      const target = new URL(t.url.href);
      const q = rest.indexOf('?');
      target.pathname = base + (q < 0 ? rest : rest.slice(0, q)).replace(/^\/?/, '/').replace(/\/$/, '');
      target.search = q < 0 ? '' : rest.slice(q);
      const headers: Record<string, string> = { 'user-agent': 'Palisade' };
      for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string' && (/^x-hg/i.test(k) || k === 'accept' || k === 'content-type' || k === 'content-length' || k === 'accept-encoding')) headers[k] = v;
      if (t.auth) headers.authorization = `Basic ${Buffer.from(`${t.auth.username}:${t.auth.password}`).toString('base64')}`;
      const method = req.method === 'POST' ? 'POST' : 'GET';
      request(target, { method, headers, body: method === 'POST' ? req : undefined, dispatcher: this.dispatcher, headersTimeout: timeoutMs, bodyTimeout: timeoutMs, signal: AbortSignal.timeout(timeoutMs) }).then(
        (up) => {
          const out: Record<string, string | string[]> = {};
          for (const [k, v] of Object.entries(up.headers)) if (v !== undefined && !['connection', 'transfer-encoding', 'keep-alive', 'set-cookie'].includes(k)) out[k] = v;
          res.writeHead(up.statusCode, out);
          up.body.pipe(res);
          up.body.once('error', () => res.destroy());
        },
        () => res.writeHead(502).end(),
      );
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    const timer = setTimeout(() => server.close(), timeoutMs);
    timer.unref();
    return {
      url: `http://127.0.0.1:${port}/${secret}`,
      close: () => {
        clearTimeout(timer);
        server.close();
        server.closeAllConnections();
      },
    };
  }

  async close(): Promise<void> {
    await this.dispatcher.close().catch(() => undefined);
  }
}

function localAddresses(): string[] {
  return Object.values(os.networkInterfaces())
    .flat()
    .filter((i): i is NonNullable<typeof i> => !!i)
    .map((i) => i.address.toLowerCase());
}
