// Stored credentials shown to readers. The attack: a user with read access called JSON-RPC
// get_repo/get_repos and read `clone_uri` with its password; GET …/github-sync returned
// `githubRepoName` with it; webhook endpoints with `user:pass@` were listed in clear and echoed in
// `lastError`; tar/zip import errors echoed them. Credentials inside any URL the server stores
// are write-only now: kept and used (as Basic auth), never returned or logged (shown as ***).
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { api, startServer, type TestServer } from '../helpers/server.ts';

const SECRET = 'hunter2-s3cr3t';
const USER = 'deploy-bot';

const rpc = async (s: TestServer, key: string, method: string, args: object) => {
  const r = await fetch(`${s.url}/_admin/api`, { method: 'POST', body: JSON.stringify({ id: 1, api_key: key, method, args }) });
  return (await r.json()) as { result: any; error: string | null };
};

describe('credentials in stored URLs are write-only', () => {
  let s: TestServer;
  let readerKey: string;
  let receiver: http.Server;
  let rport = 0;
  const authSeen: string[] = [];
  let answer = 500;
  before(async () => {
    s = await startServer({ PALISADE_ALLOW_PRIVATE_URLS: '1', PALISADE_WEBHOOK_BACKOFF_MS: '100', PALISADE_WEBHOOK_MAX_ATTEMPTS: '3' });
    readerKey = await s.createUser('reader');
    // plays every remote: a webhook receiver, a git server that wants credentials, an archive host
    receiver = http.createServer((req, res) => {
      authSeen.push(String(req.headers.authorization ?? ''));
      req.resume();
      req.on('end', () => {
        res.statusCode = req.url?.startsWith('/hook') ? answer : 401;
        if (res.statusCode === 401) res.setHeader('WWW-Authenticate', 'Basic realm="x"');
        res.end(`you sent ${req.headers.authorization ?? 'nothing'}`);
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    rport = (receiver.address() as AddressInfo).port;
  });
  after(async () => {
    receiver.close();
    receiver.closeAllConnections();
    await s.stop();
  });
  const withCreds = (p: string) => `http://${USER}:${SECRET}@127.0.0.1:${rport}${p}`;
  const basic = `Basic ${Buffer.from(`${USER}:${SECRET}`).toString('base64')}`;

  test('JSON-RPC clone_uri: used for the fetch, never shown by get_repo or get_repos', async () => {
    // a repository whose upstream is a readable repository of this server, named with credentials
    await rpc(s, s.adminKey, 'create_repo', { repo_name: 'up/src', owner_name: 'admin' });
    const created = await rpc(s, s.adminKey, 'create_repo', { repo_name: 'creds/mirror', owner_name: 'admin', clone_uri: `http://${USER}:${SECRET}@127.0.0.1:${s.port}/up/src.git` });
    assert.equal(created.error, null);
    await rpc(s, s.adminKey, 'grant_user_permission', { repo_name: 'creds/mirror', username: 'reader', perm: 'repository.read' });
    for (const key of [readerKey, s.adminKey]) {
      const one = await rpc(s, key, 'get_repo', { repo_name: 'creds/mirror' });
      assert.equal(one.result.clone_uri, `http://***@127.0.0.1:${s.port}/up/src.git`);
      const all = await rpc(s, key, 'get_repos', {});
      assert.ok(!JSON.stringify(all).includes(SECRET));
    }
    // a remote that answers 401: the credentials travel (as Basic auth), the error does not echo them
    const viaRemote = await rpc(s, s.adminKey, 'create_repo', { repo_name: 'creds/remote', owner_name: 'admin', clone_uri: withCreds('/git/x.git') });
    assert.match(viaRemote.error ?? '', /Could not clone/);
    assert.ok(!viaRemote.error!.includes(SECRET) && !viaRemote.error!.includes(USER), viaRemote.error!);
    assert.ok(authSeen.includes(basic), 'git sent the stored credentials as Basic auth');
  });

  test('github-sync: the remote\'s credentials are used and never returned', async () => {
    const { repoId } = (await api(s, 'POST', '/git/v1/repo', { key: s.adminKey, body: { name: 'creds/synced' } })).body;
    const before = authSeen.length;
    const en = await api(s, 'POST', `/git/v1/repo/${repoId}/github-sync`, { key: s.adminKey, body: { githubRepoName: withCreds('/git/sync.git') } });
    assert.equal(en.status, 200, JSON.stringify(en.body));
    for (let i = 0; i < 50 && authSeen.length === before; i++) await new Promise((r) => setTimeout(r, 100));
    assert.ok(authSeen.slice(before).includes(basic), 'the background sync authenticated with them');
    await rpc(s, s.adminKey, 'grant_user_permission', { repo_name: 'creds/synced', username: 'reader', perm: 'repository.read' });
    for (const key of [readerKey, s.adminKey]) {
      const got = await api(s, 'GET', `/git/v1/repo/${repoId}/github-sync`, { key });
      assert.equal(got.status, 200);
      assert.ok(!JSON.stringify(got.body).includes(SECRET) && !JSON.stringify(got.body).includes(USER), JSON.stringify(got.body));
      assert.equal(got.body.githubRepoName, `http://***@127.0.0.1:${rport}/git/sync.git`);
    }
  });

  test('webhooks: credentials sent as Basic auth, listed as ***, absent from the delivery log', async () => {
    const { repoId } = (await api(s, 'POST', '/git/v1/repo', { key: s.adminKey, body: { name: 'creds/hooked' } })).body;
    const t = await api(s, 'POST', `/git/v1/repo/${repoId}/trigger`, { key: s.adminKey, body: { trigger: { event: 'push' }, action: { action: 'webhook', endpoint: withCreds('/hook') } } });
    assert.equal(t.status, 200, JSON.stringify(t.body));
    const before = authSeen.length;
    answer = 500; // fails: lastError is recorded
    await api(s, 'POST', `/git/v1/repo/${repoId}/commits`, { key: s.adminKey, body: { message: 'm', files: [{ path: 'a', content: 'b' }] } });
    for (let i = 0; i < 50 && authSeen.length - before < 2; i++) await new Promise((r) => setTimeout(r, 100));
    assert.ok(authSeen.slice(before).every((a) => a === basic) && authSeen.length > before, 'each attempt carried Basic auth');
    const list = await api(s, 'GET', `/git/v1/repo/${repoId}/trigger`, { key: s.adminKey });
    assert.equal(list.body.triggers[0].action.endpoint, `http://***@127.0.0.1:${rport}/hook`);
    const deliveries = await api(s, 'GET', `/git/v1/repo/${repoId}/trigger/${t.body.triggerId}/deliveries`, { key: s.adminKey });
    assert.equal(deliveries.body.deliveries[0].lastError, 'HTTP 500');
    assert.ok(!JSON.stringify([list.body, deliveries.body]).includes(SECRET));
  });

  test('tar and zip import errors do not echo the URL\'s credentials; nothing is logged', async () => {
    for (const type of ['tar', 'zip']) {
      const r = await api(s, 'POST', '/git/v1/repo', { key: s.adminKey, body: { import: { type, url: withCreds(`/archive.${type}`), commitMessage: 'x' } } });
      assert.equal(r.status, 400);
      assert.ok(!JSON.stringify(r.body).includes(SECRET) && !JSON.stringify(r.body).includes(USER), JSON.stringify(r.body));
    }
    assert.ok(!s.logs().includes(SECRET), 'the server never logged the secret');
  });
});
