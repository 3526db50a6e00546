// Expiring, labelled tokens: identity tokens (v1 and v5) and users' API keys (user API and
// JSON-RPC) take a name and an end; listings show id, name, createdAt, expiresAt, lastUsedAt and
// never the secret; a token that expires mid-test stops working for git (HTTP and SSH, a live
// session included), REST and JSON-RPC, exactly like a revoked one; lastUsedAt is written at most
// once a minute; a server-wide ceiling binds what the APIs issue.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { git, gitOk, makeWorkTree, repoUrl, tmpDir } from '../helpers/git.ts';
import { api, startServer, type TestServer } from '../helpers/server.ts';
import { SshClient } from '../helpers/ssh.ts';

let s: TestServer;
let capped: TestServer;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function rpc(server: TestServer, key: string, method: string, args: object): Promise<{ result: any; error: string | null }> {
  return (await (await fetch(`${server.url}/_admin/api`, { method: 'POST', body: JSON.stringify({ id: 1, api_key: key, method, args }) })).json()) as { result: any; error: string | null };
}

before(async () => {
  [s, capped] = await Promise.all([startServer({ PALISADE_SSH_PORT: '0', PALISADE_SSH_RECHECK_SECONDS: '1' }), startServer({ PALISADE_MAX_TOKEN_LIFETIME_SECONDS: '3600' })]);
});
after(async () => {
  await Promise.all([s?.stop(), capped?.stop()]);
});

describe('expiring, labelled tokens', () => {
  test('name and end at creation; listings show them, never the secret; refused ends', async () => {
    const id = (await api(s, 'POST', '/identity/v1/identities', { key: s.adminKey })).body.id;
    const before = Date.now();
    const a = await api(s, 'POST', `/identity/v1/identities/${id}/tokens`, { key: s.adminKey, body: { name: 'ci', ttlSeconds: 3600 } });
    assert.equal(a.status, 200, JSON.stringify(a.body));
    assert.equal(a.body.name, 'ci');
    const end = Date.parse(a.body.expiresAt);
    assert.ok(end >= before + 3600_000 - 1000 && end <= Date.now() + 3600_000 + 1000, a.body.expiresAt);
    const b = await api(s, 'POST', `/v5/identities/${id}/tokens`, { key: s.adminKey, body: { expiresAt: '2099-01-01T00:00:00Z' } });
    assert.equal(b.body.expiresAt, '2099-01-01T00:00:00.000Z');
    assert.equal(b.body.name, null);
    const c = await api(s, 'POST', `/identity/v1/identities/${id}/tokens`, { key: s.adminKey });
    assert.equal(c.body.expiresAt, null, 'no end asked, no ceiling: never');
    const list = (await api(s, 'GET', `/identity/v1/identities/${id}/tokens`, { key: s.adminKey })).body.tokens;
    assert.deepEqual(list.map((t: any) => Object.keys(t).sort().join()), Array(3).fill('createdAt,expiresAt,id,lastUsedAt,name'));
    assert.deepEqual(list.map((t: any) => [t.id, t.name, t.expiresAt]), [[a.body.id, 'ci', a.body.expiresAt], [b.body.id, null, b.body.expiresAt], [c.body.id, null, null]]);
    assert.ok(!JSON.stringify(list).includes('pal_'), 'never a secret');
    assert.deepEqual((await api(s, 'GET', `/v5/identities/${id}/tokens`, { key: s.adminKey })).body, list, 'v5 lists the same tokens');
    for (const body of [{ expiresAt: '2000-01-01T00:00:00Z' }, { expiresAt: 'tomorrow' }, { ttlSeconds: 0 }, { ttlSeconds: 60, expiresAt: '2099-01-01T00:00:00Z' }, { name: 'x'.repeat(201) }]) {
      const r = await api(s, 'POST', `/identity/v1/identities/${id}/tokens`, { key: s.adminKey, body });
      assert.equal(r.status, 400, JSON.stringify(body));
    }
  });

  test('lastUsedAt: written on use, at most once a minute', async () => {
    const id = (await api(s, 'POST', '/identity/v1/identities', { key: s.adminKey })).body.id;
    const t = (await api(s, 'POST', `/identity/v1/identities/${id}/tokens`, { key: s.adminKey, body: { name: 'probe' } })).body;
    const lastUsed = async () => (await api(s, 'GET', `/identity/v1/identities/${id}/tokens`, { key: s.adminKey })).body.tokens[0].lastUsedAt;
    assert.equal(await lastUsed(), null);
    assert.equal((await api(s, 'GET', `/identity/v1/identities/${id}`, { key: t.token })).status, 200);
    const first = await lastUsed();
    assert.ok(first && Math.abs(Date.parse(first) - Date.now()) < 10_000, String(first));
    await sleep(50);
    for (let i = 0; i < 5; i++) await api(s, 'GET', `/identity/v1/identities/${id}`, { key: t.token });
    assert.equal(await lastUsed(), first, 'not written again within the minute');
  });

  test('a token that expires mid-test stops working for git over HTTP, REST and JSON-RPC, as a revoked one', async () => {
    const repo = (await api(s, 'POST', '/git/v1/repo', { key: s.adminKey, body: { name: 'expiry/http' } })).body.repoId;
    const id = (await api(s, 'POST', '/identity/v1/identities', { key: s.adminKey })).body.id;
    await api(s, 'POST', `/identity/v1/identities/${id}/permissions/git/${repo}`, { key: s.adminKey, body: { permission: 'write' } });
    const t = (await api(s, 'POST', `/identity/v1/identities/${id}/tokens`, { key: s.adminKey, body: { ttlSeconds: 3 } })).body;
    const userKey = await s.createUser('expiring');
    const k = (await api(s, 'POST', '/user/v1/api-keys', { key: userKey, body: { name: 'short', ttlSeconds: 3 } })).body;
    assert.ok(k.token.startsWith('pal_'));
    // works now
    const wc = await makeWorkTree(1);
    await gitOk(['push', repoUrl(s.url, repo, 'x-access-token', t.token), 'main'], { cwd: wc });
    assert.equal((await api(s, 'GET', `/git/v1/repo/${repo}`, { key: t.token })).status, 200);
    assert.equal((await api(s, 'GET', '/user/v1/api-keys', { key: k.token })).status, 200);
    assert.equal((await rpc(s, k.token, 'get_repos', {})).error, null);
    await sleep(Math.max(0, Date.parse(t.expiresAt) - Date.now(), Date.parse(k.expiresAt) - Date.now()) + 300);
    // refused everywhere, with the answers a revoked token gets
    const cloned = await git(['clone', '--bare', repoUrl(s.url, repo, 'x-access-token', t.token), tmpDir()]);
    assert.notEqual(cloned.code, 0);
    assert.match(cloned.stderr, /Authentication failed|401/);
    const rest = await api(s, 'GET', `/git/v1/repo/${repo}`, { key: t.token });
    assert.deepEqual([rest.status, rest.body.code], [401, 'UNAUTHORIZED']);
    const revoked = await api(s, 'GET', `/git/v1/repo/${repo}`, { key: 'pal_never-issued' });
    assert.deepEqual(rest.body, revoked.body, 'the same answer as an unknown or revoked token');
    assert.equal((await api(s, 'GET', '/user/v1/api-keys', { key: k.token })).status, 401);
    assert.equal((await rpc(s, k.token, 'get_repos', {})).error, 'Invalid API KEY');
    // the expiry is in the audit log, once
    const audit = (await api(s, 'GET', `/admin/v1/audit?target=${t.id}`, { key: s.adminKey })).body.entries;
    assert.deepEqual(audit.map((e: any) => [e.action, e.outcome]), [['token.expired', 'denied'], ['token.create', 'ok']]);
    assert.equal(audit[0].actor.id, id);
    assert.equal(audit[0].detail.facts[0].fact, 'credential');
  });

  test('a live SSH session ends when its token expires, and the next one is refused', async () => {
    await api(s, 'POST', '/_admin/api', { rawBody: JSON.stringify({ id: 1, api_key: s.adminKey, method: 'create_repo', args: { repo_name: 'expiry/ssh', owner_name: 'admin', private: true } }) });
    const wc = await makeWorkTree(1);
    await gitOk(['push', repoUrl(s.url, 'expiry/ssh', 'admin', s.adminKey), 'main'], { cwd: wc });
    const id = (await api(s, 'POST', '/identity/v1/identities', { key: s.adminKey })).body.id;
    await api(s, 'POST', `/identity/v1/identities/${id}/permissions/git/expiry%2Fssh`, { key: s.adminKey, body: { permission: 'read' } });
    const t = (await api(s, 'POST', `/identity/v1/identities/${id}/tokens`, { key: s.adminKey, body: { ttlSeconds: 4 } })).body;
    const c = new SshClient(s);
    const o = c.options({ password: t.token });
    // git-upload-pack waits for the client's wants: the session stays open until something ends it
    const child = spawn('ssh', [...o.args, 'x-access-token@127.0.0.1', 'git-upload-pack expiry/ssh'], { env: { PATH: process.env.PATH, HOME: c.dir, ...o.env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString('latin1')));
    for (let i = 0; i < 100 && !out.includes('0000'); i++) await sleep(50);
    assert.match(out, /refs\/heads\/main/, 'the session is live');
    const code = await new Promise<number | null>((r) => child.once('exit', r));
    const late = Date.now() - Date.parse(t.expiresAt);
    assert.notEqual(code, 0);
    assert.ok(late > -500 && late < 4000, `closed ${late} ms after the token's end`);
    const again = await c.git(['ls-remote', c.url('x-access-token', 'expiry/ssh')], { password: t.token });
    assert.notEqual(again.code, 0, 'the next connection is refused');
  });

  test("users' API keys: the user API and JSON-RPC, with names and ends", async () => {
    const key = await s.createUser('keyholder');
    const made = await api(s, 'POST', '/user/v1/api-keys', { key, body: { name: 'laptop' } });
    assert.equal(made.status, 200, JSON.stringify(made.body));
    assert.equal((await api(s, 'GET', '/git/v1/repo', { key: made.body.token })).status, 200, 'the new key works');
    const listed = (await api(s, 'GET', '/user/v1/api-keys', { key })).body.keys;
    assert.equal(listed.length, 2, 'the CLI key and the new one');
    assert.deepEqual(listed[1], { id: made.body.id, name: 'laptop', createdAt: made.body.createdAt, expiresAt: null, lastUsedAt: listed[1].lastUsedAt });
    // an admin over JSON-RPC
    const r = await rpc(s, s.adminKey, 'add_user_api_key', { username: 'keyholder', name: 'ci', ttl_seconds: 600 });
    assert.equal(r.error, null);
    assert.ok(r.result.api_key.startsWith('pal_'));
    assert.equal(r.result.name, 'ci');
    assert.ok(Date.parse(r.result.expires_at) > Date.now() + 590_000);
    const keys = (await rpc(s, s.adminKey, 'get_user_api_keys', { username: 'keyholder' })).result;
    assert.deepEqual(keys.map((k: any) => k.name), [null, 'laptop', 'ci']);
    assert.ok(!JSON.stringify(keys).includes('pal_'));
    assert.deepEqual(Object.keys(keys[2]).sort(), ['created_on', 'expires_at', 'id', 'last_used_on', 'name']);
    assert.equal((await rpc(s, s.adminKey, 'add_user_api_key', { username: 'keyholder', expires_at: '2000-01-01T00:00:00Z' })).error, 'expiresAt is in the past');
    assert.match((await rpc(s, key, 'get_user_api_keys', { username: 'keyholder' })).error!, /admin/, 'admins only');
    // revoked: its next use fails
    assert.deepEqual((await rpc(s, s.adminKey, 'delete_user_api_key', { username: 'keyholder', key_id: r.result.id })).result.success, true);
    assert.equal((await api(s, 'GET', '/git/v1/repo', { key: r.result.api_key })).status, 401);
    assert.equal((await api(s, 'DELETE', `/user/v1/api-keys/${made.body.id}`, { key })).status, 200);
    assert.equal((await api(s, 'GET', '/git/v1/repo', { key: made.body.token })).status, 401);
    assert.equal((await api(s, 'DELETE', `/user/v1/api-keys/${made.body.id}`, { key })).body.code, 'API_KEY_NOT_FOUND');
    // an identity token is no account
    const id = (await api(s, 'POST', '/identity/v1/identities', { key })).body.id;
    const tok = (await api(s, 'POST', `/identity/v1/identities/${id}/tokens`, { key })).body.token;
    assert.equal((await api(s, 'POST', '/user/v1/api-keys', { key: tok, body: {} })).status, 403);
  });

  test("another user's API keys: out of reach through the user API and JSON-RPC", async () => {
    const owner = await s.createUser('keyowner');
    const stranger = await s.createUser('keystranger');
    const made = (await api(s, 'POST', '/user/v1/api-keys', { key: owner, body: { name: 'owned' } })).body;
    // the user API is the caller's own keys: another's key id is not found, and keeps working
    const del = await api(s, 'DELETE', `/user/v1/api-keys/${made.id}`, { key: stranger });
    assert.equal(del.status, 404);
    assert.equal(del.body.code, 'API_KEY_NOT_FOUND');
    assert.ok(!(await api(s, 'GET', '/user/v1/api-keys', { key: stranger })).body.keys.some((k: any) => k.id === made.id), "not in the stranger's listing");
    assert.equal((await api(s, 'GET', '/git/v1/repo', { key: made.token })).status, 200, 'still works');
    // JSON-RPC's user key methods are an admin's: a user may neither add nor revoke, even its own
    for (const [method, args] of [
      ['add_user_api_key', { username: 'keyowner' }],
      ['add_user_api_key', { username: 'keystranger' }],
      ['delete_user_api_key', { username: 'keyowner', key_id: made.id }],
      ['get_user_api_keys', { username: 'keyowner' }],
    ] as const) {
      const r = await rpc(s, stranger, method, args);
      assert.equal(r.result, null, `${method} as a user: ${JSON.stringify(r)}`);
      assert.match(r.error!, /admin/, method);
    }
    assert.deepEqual((await api(s, 'GET', '/user/v1/api-keys', { key: owner })).body.keys.map((k: any) => k.name), [null, 'owned'], 'nothing was added to the owner');
    assert.equal((await api(s, 'GET', '/git/v1/repo', { key: made.token })).status, 200, 'and nothing revoked');
  });

  test('the server-wide ceiling: a token without an end gets it, one beyond it is refused; the console is not bound', async () => {
    const id = (await api(capped, 'POST', '/identity/v1/identities', { key: capped.adminKey })).body.id;
    const plain = (await api(capped, 'POST', `/identity/v1/identities/${id}/tokens`, { key: capped.adminKey })).body;
    const left = Date.parse(plain.expiresAt) - Date.now();
    assert.ok(left > 3590_000 && left <= 3600_000, `${left} ms`);
    const within = await api(capped, 'POST', `/v5/identities/${id}/tokens`, { key: capped.adminKey, body: { ttlSeconds: 60 } });
    assert.equal(within.status, 200);
    for (const body of [{ ttlSeconds: 7200 }, { expiresAt: '2099-01-01T00:00:00Z' }]) {
      const r = await api(capped, 'POST', `/identity/v1/identities/${id}/tokens`, { key: capped.adminKey, body });
      assert.deepEqual([r.status, r.body.code], [400, 'TOKEN_LIFETIME_TOO_LONG'], JSON.stringify(body));
      assert.match(r.body.message, /3600 seconds/);
    }
    const apiKey = (await api(capped, 'POST', '/user/v1/api-keys', { key: capped.adminKey, body: {} })).body;
    assert.ok(Date.parse(apiKey.expiresAt) - Date.now() <= 3600_000, 'API keys too');
    await capped.createUser('console-made');
    const keys = (await rpc(capped, capped.adminKey, 'get_user_api_keys', { username: 'console-made' })).result;
    assert.equal(keys[0].expires_at, null, 'a key made at the console is not bound by the ceiling');
  });
});
