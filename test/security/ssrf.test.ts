// SSRF regressions. The attack: on the old guard, `http://[::ffff:127.0.0.1]:PORT/` (which Node
// normalises to `[::ffff:7f00:1]`) reached loopback from every outbound surface (source, import
// git/tar/zip, JSON-RPC clone_uri and pull, trigger webhooks, github-sync), and `[::7f00:1]`,
// `64:ff9b::7f00:1`, `2002:7f00:1::`, `fec0::1`, `[::ffff:a9fe:a9fe]` passed as well. A guard that
// checks a name and then lets the connection resolve it again can also be walked past by DNS
// rebinding. Now one guard classifies every address with ipaddr.js and pins the connection to the
// addresses it checked (undici's lookup for HTTP, git's http.curloptResolve for git children).
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { Access } from '../../src/access/index.ts';
import { runGit } from '../../src/git/runner.ts';
import { addressProblem, Outbound, redactUrl } from '../../src/services/outbound.ts';
import type { Store } from '../../src/store/index.ts';
import { tmpDir } from '../helpers/git.ts';
import { api, startServer, type TestServer } from '../helpers/server.ts';

describe('SSRF guard: every spelling of an address', () => {
  test('address table', () => {
    // [address, refused?]
    const rows: [string, boolean][] = [
      // IPv4
      ['127.0.0.1', true],
      ['127.1.2.3', true],
      ['10.1.2.3', true],
      ['172.16.0.1', true],
      ['172.31.255.255', true],
      ['192.168.1.1', true],
      ['169.254.169.254', true], // cloud metadata
      ['100.64.0.1', true], // CGNAT
      ['0.0.0.0', true],
      ['0.1.2.3', true],
      ['224.0.0.1', true],
      ['255.255.255.255', true],
      ['192.0.2.1', true], // documentation
      ['198.18.0.1', true], // benchmarking
      ['240.0.0.1', true],
      ['172.32.0.1', false],
      ['93.184.216.34', false],
      ['8.8.8.8', false],
      // IPv6
      ['::1', true],
      ['::', true],
      ['fe80::1', true], // link-local
      ['fe80::1%eth0', true],
      ['fec0::1', true], // deprecated site-local
      ['fd00::1', true], // ULA
      ['fc00::1', true],
      ['ff02::1', true], // multicast
      ['::ffff:127.0.0.1', true], // IPv4-mapped
      ['::ffff:7f00:1', true], // the same, as Node normalises it
      ['::ffff:a9fe:a9fe', true], // mapped metadata address
      ['::ffff:10.0.0.1', true],
      ['::7f00:1', true], // IPv4-compatible (deprecated)
      ['::127.0.0.1', true],
      ['64:ff9b::7f00:1', true], // NAT64 of loopback
      ['64:ff9b::a9fe:a9fe', true],
      ['64:ff9b:1::1', true], // local-use NAT64
      ['2002:7f00:1::', true], // 6to4 of loopback
      ['2002:a00:1::1', true], // 6to4 of 10.0.0.1
      ['2001:0:4136:e378:8000:63bf:3fff:fdd2', true], // Teredo
      ['2001:db8::1', true], // documentation
      ['100::1', true], // discard-only
      ['::ffff:0:7f00:1', true], // RFC 6145
      ['2606:4700::1111', false],
      ['2a00:1450:4001:82b::200e', false],
      ['::ffff:93.184.216.34', false], // mapped public address
      ['64:ff9b::5db8:d822', false], // NAT64 of a public address
      ['2002:5db8:d822::1', false], // 6to4 of a public address
      // not addresses at all
      ['localhost', true],
      ['', true],
    ];
    for (const [addr, refused] of rows) assert.equal(addressProblem(addr) !== undefined, refused, `${addr}: ${addressProblem(addr) ?? 'allowed'}`);
  });

  test('URL spellings: WHATWG normalisation and the guard agree', async () => {
    const guard = new Outbound({} as Store, {} as Access, { allowPrivate: false, dataDir: tmpDir() });
    const refused = [
      'http://127.0.0.1:9/x.git',
      'http://[::1]/x',
      'http://[::ffff:127.0.0.1]:8080/x.git',
      'http://[::ffff:7f00:1]/x',
      'http://[::7f00:1]/x',
      'http://[64:ff9b::7f00:1]/x',
      'http://[2002:7f00:1::]/x',
      'http://[fec0::1]/x',
      'http://[::ffff:a9fe:a9fe]/latest/meta-data',
      'http://169.254.169.254/latest/meta-data',
      'http://0x7f000001/',
      'http://2130706433/',
      'http://0177.0.0.1/',
      'http://127.1/',
      'http://localhost:9/x.git',
      'http://LOCALHOST./x',
      'http://10.0.0.1/',
      'ext::sh -c id',
      'ftp://example.com/x',
      'gopher://127.0.0.1/',
      'file:///etc/passwd',
    ];
    for (const url of refused) await assert.rejects(guard.target(undefined, url, 'git'), /not allowed|private or local|Invalid URL|scheme|resolve/, url);
    const ok = await guard.target(undefined, 'http://user:secret@93.184.216.34/x.git', 'git');
    assert.equal(ok.kind, 'http');
    assert.equal(ok.shown, 'http://***@93.184.216.34/x.git');
    if (ok.kind === 'http') assert.equal(ok.url.href, 'http://93.184.216.34/x.git', 'the credentials leave the URL');
  });

  test('redactUrl hides user and password, whatever the form', () => {
    assert.equal(redactUrl('https://user:pw@example.com/a.git'), 'https://***@example.com/a.git');
    assert.equal(redactUrl('https://ghp_token@example.com/a.git'), 'https://***@example.com/a.git');
    assert.equal(redactUrl('https://example.com/a.git'), 'https://example.com/a.git');
    assert.equal(redactUrl('owner/repo'), 'owner/repo');
    assert.ok(!redactUrl('not a url //user:pw@host').includes('pw'));
  });
});

describe('SSRF guard: connections go where the guard looked (DNS rebinding)', () => {
  let s: TestServer;
  let repoId: string;
  before(async () => {
    s = await startServer();
    repoId = (await api(s, 'POST', '/git/v1/repo', { key: s.adminKey, body: { public: true, import: { type: 'files', files: { 'a.txt': 'a' }, commitMessage: 'one' } } })).body.repoId;
  });
  after(() => s.stop());

  // A name no DNS server knows: only the guard's own answer can send a connection anywhere.
  const flip = (first: string, later: string) => {
    let calls = 0;
    return async (_host: string) => [{ address: calls++ === 0 ? first : later, family: 4 }];
  };

  test('git children connect to the address the guard checked (http.curloptResolve)', async () => {
    // first answer loopback (allowed by the switch here), every later answer somewhere else:
    // a git that resolved the name again would fail, a pinned one reaches the server
    const guard = new Outbound({} as Store, {} as Access, { allowPrivate: true, dataDir: s.dataDir, resolve: flip('127.0.0.1', '127.0.0.2') });
    const t = await guard.target(undefined, `http://rebind.invalid:${s.port}/${repoId}.git`, 'git');
    const remote = guard.gitRemote(t);
    assert.ok(remote.config.some((c) => c === `http.curloptResolve=rebind.invalid:${s.port}:127.0.0.1`));
    const r = await runGit({ home: tmpDir() }, ['-c', 'protocol.allow=never', '-c', 'protocol.http.allow=always', ...remote.config.flatMap((c) => ['-c', c]), 'ls-remote', '--', remote.url], { timeoutMs: 20_000, env: remote.env }, [remote.url]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout.toString(), /refs\/heads\/main/);
    await guard.close();
  });

  test('HTTP requests connect only through the checking lookup', async () => {
    const pinned = new Outbound({} as Store, {} as Access, { allowPrivate: true, dataDir: s.dataDir, resolve: async () => [{ address: '127.0.0.1', family: 4 }] });
    const res = await pinned.request(await pinned.target(undefined, `http://pinned.invalid:${s.port}/healthz`, 'webhook'), { method: 'GET', timeoutMs: 5000 });
    assert.equal(res.statusCode, 200);
    await res.body.text();
    await pinned.close();
    // The name resolved to a public address when checked, to loopback when connecting: the
    // connection-time lookup is the guard too, so the rebound answer is refused.
    const rebinding = new Outbound({} as Store, {} as Access, { allowPrivate: false, dataDir: s.dataDir, resolve: flip('93.184.216.34', '127.0.0.1') });
    const t = await rebinding.target(undefined, `http://rebind.invalid:${s.port}/healthz`, 'webhook');
    await assert.rejects(rebinding.request(t, { method: 'GET', timeoutMs: 5000 }), (e: Error & { code?: string; cause?: { code?: string } }) => (e.code ?? e.cause?.code) === 'PALISADE_ADDRESS_REFUSED');
    await rebinding.close();
  });
});

describe('SSRF: IPv4-mapped loopback on every outbound surface of a default server', () => {
  let s: TestServer;
  let hits = 0;
  let receiver: http.Server;
  let mapped: string;
  before(async () => {
    s = await startServer();
    // Something worth stealing on loopback: it counts every request that reaches it.
    receiver = http.createServer((_req, res) => {
      hits++;
      res.end('secret');
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    mapped = `http://[::ffff:127.0.0.1]:${(receiver.address() as AddressInfo).port}`;
  });
  after(async () => {
    receiver.close();
    await s.stop();
  });

  test('source, import git/tar/zip, clone_uri, webhooks and github-sync all refuse it, and nothing is created', async () => {
    const refusedCreate = async (body: object) => {
      const r = await api(s, 'POST', '/git/v1/repo', { key: s.adminKey, body: { name: `ssrf/${Math.random().toString(36).slice(2)}`, ...body } });
      assert.equal(r.status, 400, JSON.stringify(r.body));
      assert.match(r.body.message, /private or local address/);
    };
    await refusedCreate({ source: { url: `${mapped}/x.git` } });
    for (const type of ['git', 'tar', 'zip']) await refusedCreate({ import: { type, url: `${mapped}/x.${type}`, commitMessage: 'x' } });
    for (const spelling of ['[::ffff:7f00:1]', '[::7f00:1]', '[64:ff9b::7f00:1]', '[2002:7f00:1::]', 'localhost', '0x7f000001']) {
      await refusedCreate({ source: { url: `http://${spelling}:${(receiver.address() as AddressInfo).port}/x.git` } });
    }
    const rpc = await fetch(`${s.url}/_admin/api`, { method: 'POST', body: JSON.stringify({ id: 1, api_key: s.adminKey, method: 'create_repo', args: { repo_name: 'ssrf/rpc', clone_uri: `${mapped}/x.git` } }) });
    assert.match(((await rpc.json()) as { error: string }).error, /private or local address/);

    const list = await api(s, 'GET', '/git/v1/repo?limit=1000', { key: s.adminKey });
    assert.ok(!list.body.repositories.some((r: { name: string }) => r.name?.startsWith('ssrf/')), 'no repository was left behind');

    const { repoId } = (await api(s, 'POST', '/git/v1/repo', { key: s.adminKey, body: {} })).body;
    const hook = await api(s, 'POST', `/git/v1/repo/${repoId}/trigger`, { key: s.adminKey, body: { trigger: { event: 'push' }, action: { action: 'webhook', endpoint: `${mapped}/hook` } } });
    assert.equal(hook.status, 400);
    const sync = await api(s, 'POST', `/git/v1/repo/${repoId}/github-sync`, { key: s.adminKey, body: { githubRepoName: `${mapped}/x.git` } });
    assert.equal(sync.status, 400);
    assert.equal(hits, 0, 'the loopback service was never reached');
  });
});

// Stored URLs are checked again at each use. The attack: a URL accepted while the operator had
// PALISADE_ALLOW_PRIVATE_URLS=1 (or whose name pointed at a public address when stored) keeps
// being fetched later. Here a clone_uri, a webhook endpoint and a github-sync remote on loopback
// are stored by a server with the switch on; after a restart with the switch off, pull, the
// webhook delivery and the background sync all refuse to connect.
describe('SSRF: stored URLs are checked again at each use', () => {
  let upstream: TestServer;
  let s: TestServer;
  let restarted: TestServer | undefined;
  let hits = 0;
  let receiver: http.Server;
  before(async () => {
    upstream = await startServer();
    s = await startServer({ PALISADE_ALLOW_PRIVATE_URLS: '1', PALISADE_SYNC_INTERVAL_SECONDS: '1', PALISADE_WEBHOOK_BACKOFF_MS: '100' });
    receiver = http.createServer((req, res) => {
      hits++;
      req.resume();
      req.on('end', () => res.end('ok'));
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  });
  after(async () => {
    receiver.close();
    receiver.closeAllConnections();
    await restarted?.stop();
    await s.stop();
    await upstream.stop();
  });

  test('pull, webhook deliveries and github-sync refuse a loopback URL once the switch is off', async () => {
    const up = (await api(upstream, 'POST', '/git/v1/repo', { key: upstream.adminKey, body: { name: 'up/pub', public: true, import: { type: 'files', files: { 'a.txt': 'a' }, commitMessage: 'a' } } })).body.repoId;
    const rpc = async (srv: TestServer, method: string, args: object) =>
      (await (await fetch(`${srv.url}/_admin/api`, { method: 'POST', body: JSON.stringify({ id: 1, api_key: srv.adminKey, method, args }) })).json()) as { result: any; error: string | null };
    assert.equal((await rpc(s, 'create_repo', { repo_name: 'mirror/up', owner_name: 'admin', clone_uri: `${upstream.url}/${up}.git` })).error, null);
    const { repoId } = (await api(s, 'POST', '/git/v1/repo', { key: s.adminKey, body: { name: 'hooked/one' } })).body;
    const hookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
    assert.equal((await api(s, 'POST', `/git/v1/repo/${repoId}/trigger`, { key: s.adminKey, body: { trigger: { event: 'push' }, action: { action: 'webhook', endpoint: hookUrl } } })).status, 200);
    assert.equal((await api(s, 'POST', `/git/v1/repo/${repoId}/github-sync`, { key: s.adminKey, body: { githubRepoName: `${upstream.url}/${up}.git` } })).status, 200);
    for (let i = 0; i < 50 && (await api(s, 'GET', `/git/v1/repo/${repoId}/git/refs/heads/`, { key: s.adminKey })).body.branches.length === 0; i++) await new Promise((r) => setTimeout(r, 100));

    // the same data folder and database, the switch off
    await new Promise<void>((resolve) => {
      s.proc.once('exit', () => resolve());
      s.proc.kill('SIGTERM');
    });
    restarted = await startServer({ PALISADE_SYNC_INTERVAL_SECONDS: '1', PALISADE_WEBHOOK_BACKOFF_MS: '100' }, { reuse: s });
    hits = 0;
    const since = new Date().toISOString();
    const pull = await rpc(restarted, 'pull', { repo_name: 'mirror/up' });
    assert.match(pull.error ?? '', /private or local address/);
    await api(restarted, 'POST', `/git/v1/repo/${repoId}/commits`, { key: restarted.adminKey, body: { message: 'm', files: [{ path: 'b.txt', content: 'b' }] } });
    const sync = await api(restarted, 'POST', `/git/v1/repo/${repoId}/github-sync/sync`, { key: restarted.adminKey });
    assert.equal(sync.status, 400, JSON.stringify(sync.body));
    await new Promise((r) => setTimeout(r, 1500));
    const triggers = (await api(restarted, 'GET', `/git/v1/repo/${repoId}/trigger`, { key: restarted.adminKey })).body.triggers;
    const all = (await api(restarted, 'GET', `/git/v1/repo/${repoId}/trigger/${triggers[0].id}/deliveries`, { key: restarted.adminKey })).body.deliveries;
    const log = all.filter((d: { createdAt: string }) => d.createdAt >= since);
    assert.ok(log.length >= 1 && log.every((d: { status: string; lastError: string | null }) => d.status !== 'delivered' && /private or local/.test(d.lastError ?? '')), JSON.stringify(log));
    assert.equal(hits, 0, 'the loopback receiver was never reached after the restart');
    const linked = (await api(restarted, 'GET', `/git/v1/repo/${repoId}/github-sync`, { key: restarted.adminKey })).body;
    assert.match(linked.lastError ?? '', /private or local/);
  });
});
