// Raw HTTP: status codes and `{code, message}` bodies of the Identity API and repository endpoints.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { api, startServer, type TestServer } from '../helpers/server.ts';

let s: TestServer;
let admin: string;
const GHOST = '00000000-0000-4000-8000-000000000000';

before(async () => {
  s = await startServer();
  admin = s.adminKey;
});
after(() => s.stop());

async function newIdentity(key = admin): Promise<string> {
  const r = await api(s, 'POST', '/identity/v1/identities', { key });
  assert.equal(r.status, 200);
  return r.body.id;
}
async function newRepo(key = admin, body: object = {}): Promise<string> {
  const r = await api(s, 'POST', '/git/v1/repo', { key, body });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body.repoId;
}

describe('Identity API over raw HTTP', () => {
  test('401 without or with a bad API key, with a JSON error body', async () => {
    for (const headers of [{}, { authorization: 'Bearer pal_nope' }, { authorization: 'Token abc' }] as Record<string, string>[]) {
      const r = await api(s, 'GET', '/identity/v1/identities', { headers });
      assert.equal(r.status, 401, JSON.stringify(r.body));
      assert.equal(r.body.code, 'UNAUTHORIZED');
      assert.equal(typeof r.body.code, 'string');
      assert.equal(typeof r.body.message, 'string');
    }
  });

  test('400 for bad access level, malformed ids, bad JSON and non-object bodies; nothing is written', async () => {
    const id = await newIdentity();
    const repo = await newRepo();
    const bad = await api(s, 'POST', `/identity/v1/identities/${id}/permissions/git/${repo}`, { key: admin, body: { permission: 'admin' } });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.code, 'BAD_REQUEST');
    assert.match(bad.body.message, /read.*write/);
    const missing = await api(s, 'POST', `/identity/v1/identities/${id}/permissions/git/${repo}`, { key: admin, body: {} });
    assert.equal(missing.status, 400);
    const json = await api(s, 'POST', `/identity/v1/identities/${id}/permissions/git/${repo}`, { key: admin, rawBody: '{"permission":', headers: { 'content-type': 'application/json' } });
    assert.equal(json.status, 400);
    assert.match(json.body.message, /JSON/);
    const arr = await api(s, 'POST', `/identity/v1/identities/${id}/permissions/git/${repo}`, { key: admin, body: ['read'] });
    assert.equal(arr.status, 400);
    const malformed = await api(s, 'GET', '/identity/v1/identities/not-a-uuid/tokens', { key: admin });
    assert.equal(malformed.status, 400);
    assert.match(malformed.body.message, /identity id/);
    const badToken = await api(s, 'DELETE', `/identity/v1/identities/${id}/tokens/not-a-token-id`, { key: admin });
    assert.equal(badToken.status, 400);
    assert.match(badToken.body.message, /token id/);
    const badVm = await api(s, 'POST', `/identity/v1/identities/${id}/permissions/vm/${encodeURIComponent('-rf')}`, { key: admin, body: {} });
    assert.equal(badVm.status, 400);
    const badUsers = await api(s, 'POST', `/identity/v1/identities/${id}/permissions/vm/vm1`, { key: admin, body: { allowedUsers: ['ok', 'Not Valid'] } });
    assert.equal(badUsers.status, 400);
    const badLimit = await api(s, 'GET', '/identity/v1/identities?limit=-1', { key: admin });
    assert.equal(badLimit.status, 400);
    // nothing was written by any of the above
    assert.equal((await api(s, 'GET', `/identity/v1/identities/${id}/permissions/git`, { key: admin })).body.repositories.length, 0);
    assert.equal((await api(s, 'GET', `/identity/v1/identities/${id}/permissions/vm`, { key: admin })).body.total, 0);
  });

  test('404 for unknown identity, repository, token and grant; 409 on a second POST grant', async () => {
    const id = await newIdentity();
    const repo = await newRepo();
    const cases: [string, string, object | undefined, string][] = [
      ['DELETE', `/identity/v1/identities/${GHOST}`, undefined, 'IDENTITY_NOT_FOUND'],
      ['POST', `/identity/v1/identities/${GHOST}/tokens`, undefined, 'IDENTITY_NOT_FOUND'],
      ['DELETE', `/identity/v1/identities/${id}/tokens/${GHOST}`, undefined, 'NOT_FOUND'],
      ['POST', `/identity/v1/identities/${id}/permissions/git/${GHOST}`, { permission: 'read' }, 'REPO_NOT_FOUND'],
      ['PUT', `/identity/v1/identities/${id}/permissions/git/${repo}`, { permission: 'read' }, 'PERMISSION_NOT_FOUND'],
      ['DELETE', `/identity/v1/identities/${id}/permissions/git/${repo}`, undefined, 'PERMISSION_NOT_FOUND'],
      ['GET', `/identity/v1/identities/${id}/permissions/vm/vm-1`, undefined, 'VM_PERMISSION_NOT_FOUND'],
      ['PUT', `/identity/v1/identities/${id}/permissions/vm/vm-1`, { allowedUsers: null }, 'VM_PERMISSION_NOT_FOUND'],
      ['DELETE', `/identity/v1/identities/${id}/permissions/vm/vm-1`, undefined, 'VM_PERMISSION_NOT_FOUND'],
      ['GET', `/git/v1/repo/${GHOST}`, undefined, 'REPO_NOT_FOUND'],
    ];
    for (const [method, path, body, code] of cases) {
      const r = await api(s, method, path, { key: admin, body });
      assert.equal(r.status, 404, `${method} ${path}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.code, code, `${method} ${path}`);
    }
    assert.equal((await api(s, 'POST', `/identity/v1/identities/${id}/permissions/git/${repo}`, { key: admin, body: { permission: 'read' } })).status, 200);
    const dup = await api(s, 'POST', `/identity/v1/identities/${id}/permissions/git/${repo}`, { key: admin, body: { permission: 'write' } });
    assert.equal(dup.status, 409);
    assert.equal(dup.body.code, 'PERMISSION_ALREADY_EXISTS');
    assert.equal((await api(s, 'GET', `/identity/v1/identities/${id}/permissions/git/${repo}`, { key: admin })).body.accessLevel, 'read');
  });

  test('managed identities: hidden unless include_managed, and cannot be deleted or modified', async () => {
    const plain = await api(s, 'GET', '/identity/v1/identities?limit=1000', { key: admin });
    assert.ok(plain.body.identities.every((i: { managed: boolean }) => !i.managed));
    const all = await api(s, 'GET', '/identity/v1/identities?limit=1000&include_managed=true', { key: admin });
    const managed = all.body.identities.filter((i: { managed: boolean }) => i.managed);
    assert.ok(managed.length >= 1, 'the admin user is backed by a managed identity');
    assert.equal(all.body.total, plain.body.total + managed.length);
    const camel = await api(s, 'GET', '/identity/v1/identities?limit=1000&includeManaged=true', { key: admin });
    assert.equal(camel.body.total, all.body.total);
    const del = await api(s, 'DELETE', `/identity/v1/identities/${managed[0].id}`, { key: admin });
    assert.equal(del.status, 403);
    assert.equal(del.body.code, 'CANNOT_DELETE_MANAGED_IDENTITY');
    const tok = await api(s, 'POST', `/identity/v1/identities/${managed[0].id}/tokens`, { key: admin });
    assert.equal(tok.status, 403);
    assert.equal(tok.body.code, 'CANNOT_MODIFY_MANAGED_IDENTITY');
    const bad = await api(s, 'GET', '/identity/v1/identities?include_managed=maybe', { key: admin });
    assert.equal(bad.status, 400);
  });

  test('limit and offset page the identity listing', async () => {
    const key = await s.createUser('pager');
    const ids = [await newIdentity(key), await newIdentity(key), await newIdentity(key)];
    const p1 = await api(s, 'GET', '/identity/v1/identities?limit=2', { key });
    assert.deepEqual(p1.body, { identities: ids.slice(0, 2).map((id) => ({ id, managed: false })), offset: 0, total: 3 });
    const p2 = await api(s, 'GET', '/identity/v1/identities?limit=2&offset=2', { key });
    assert.deepEqual(p2.body, { identities: [{ id: ids[2], managed: false }], offset: 2, total: 3 });
  });

  test('a non-admin account sees and manages only its own identities and repositories', async () => {
    const alice = await s.createUser('alice');
    const bob = await s.createUser('bob');
    const aliceId = await newIdentity(alice);
    const aliceRepo = await newRepo(alice, { name: 'alice/private' });
    const bobRepo = await newRepo(bob, { name: 'bob/private' });

    const bobList = await api(s, 'GET', '/identity/v1/identities', { key: bob });
    assert.ok(!bobList.body.identities.some((i: { id: string }) => i.id === aliceId));
    for (const [m, p] of [
      ['DELETE', `/identity/v1/identities/${aliceId}`],
      ['POST', `/identity/v1/identities/${aliceId}/tokens`],
      ['GET', `/identity/v1/identities/${aliceId}/tokens`],
      ['GET', `/identity/v1/identities/${aliceId}/permissions/git`],
      ['GET', `/identity/v1/identities/${aliceId}`],
      ['GET', `/identity/v1/identities/${aliceId}/permissions/git/${bobRepo}/explain`],
      ['GET', `/v5/identities/${aliceId}/tokens`],
    ] as const) {
      const r = await api(s, m, p, { key: bob });
      assert.equal(r.status, 404, `${m} ${p}`);
      assert.equal(r.body.code, 'IDENTITY_NOT_FOUND');
    }
    const repos = await api(s, 'GET', '/git/v1/repo', { key: bob });
    assert.deepEqual(repos.body.repositories.map((r: { id: string }) => r.id), [bobRepo]);
    const peek = await api(s, 'GET', `/git/v1/repo/${aliceRepo}`, { key: bob });
    assert.equal(peek.status, 404);
    assert.equal(peek.body.code, 'REPO_NOT_FOUND');
    // alice cannot hand her identity access to bob's repository
    const steal = await api(s, 'POST', `/identity/v1/identities/${aliceId}/permissions/git/${bobRepo}`, { key: alice, body: { permission: 'write' } });
    assert.equal(steal.status, 404);
    assert.equal(steal.body.code, 'REPO_NOT_FOUND');
    const del = await api(s, 'DELETE', `/git/v1/repo/${aliceRepo}`, { key: bob });
    assert.equal(del.status, 404);
    // the admin sees both
    const all = await api(s, 'GET', '/git/v1/repo?limit=1000', { key: admin });
    const ids = all.body.repositories.map((r: { id: string }) => r.id);
    assert.ok(ids.includes(aliceRepo) && ids.includes(bobRepo));
  });

  test('repository creation validates names and refuses duplicates', async () => {
    for (const name of ['../etc', 'a/../b', '-rf', 'x.git', '.hidden', 'identity/v1', 'a//b', GHOST, 'a b', '']) {
      const r = await api(s, 'POST', '/git/v1/repo', { key: admin, body: { name } });
      assert.equal(r.status, 400, `name ${JSON.stringify(name)}`);
    }
    assert.equal((await api(s, 'POST', '/git/v1/repo', { key: admin, body: { defaultBranch: 'bad..branch' } })).status, 400);
    assert.equal((await api(s, 'POST', '/git/v1/repo', { key: admin, body: { public: 'yes' } })).status, 400);
    await newRepo(admin, { name: 'dup/one' });
    const dup = await api(s, 'POST', '/git/v1/repo', { key: admin, body: { name: 'dup/one' } });
    assert.equal(dup.status, 409);
    assert.equal(dup.body.code, 'REPO_ALREADY_EXISTS');
    const anon = await api(s, 'POST', '/git/v1/repo', { body: {} });
    assert.equal(anon.status, 401);
  });

  test('GET /git/v1/repo/{repo} answers the SDK shape, by id or by name', async () => {
    const id = await newRepo(admin, { name: 'shape/check', public: true, defaultBranch: 'trunk' });
    const byId = await api(s, 'GET', `/git/v1/repo/${id}`, { key: admin });
    assert.deepEqual(Object.keys(byId.body).sort(), ['accountId', 'createdAt', 'defaultBranch', 'id', 'name', 'type', 'visibility']);
    assert.equal(byId.body.type, 'git', 'the SDK shape, and the repository type (issue 10)');
    assert.equal(byId.body.defaultBranch, 'trunk');
    assert.equal(byId.body.visibility, 'public');
    const byName = await api(s, 'GET', `/git/v1/repo/${encodeURIComponent('shape/check')}`, { key: admin });
    assert.equal(byName.body.id, id);
    // public: anonymous may read its metadata
    assert.equal((await api(s, 'GET', `/git/v1/repo/${id}`)).status, 200);
  });

  test('an oversized JSON body is refused with 413', async () => {
    const id = await newIdentity();
    const repo = await newRepo();
    const r = await api(s, 'POST', `/identity/v1/identities/${id}/permissions/git/${repo}`, { key: admin, rawBody: JSON.stringify({ permission: 'read', pad: 'x'.repeat(2 * 1024 * 1024) }), headers: { 'content-type': 'application/json' } });
    assert.equal(r.status, 413);
    assert.equal(r.body.code, 'PAYLOAD_TOO_LARGE');
    assert.equal((await api(s, 'GET', `/identity/v1/identities/${id}/permissions/git/${repo}`, { key: admin })).body.accessLevel, null, 'nothing granted');
  });

  test('/openapi.json lists every surface, generated from the registered routes', async () => {
    const r = await api(s, 'GET', '/openapi.json');
    assert.equal(r.status, 200);
    assert.equal(r.body.openapi, '3.1.0');
    const paths = Object.keys(r.body.paths);
    for (const p of ['/identity/v1/identities/{identity}/permissions/git/{repo}', '/git/v1/repo/{repo}/commits', '/_admin/api', '/{repo}/info/refs', '/git/v1/repo/{repo}/git/refs/heads/{branch}', '/git/v1/repo/{repo}/contents/{path}']) assert.ok(paths.includes(p), p);
    // Freestyle's 16 endpoints, and Palisade's own beside them: SSH keys, one identity, explain
    const identityPaths = paths.filter((p) => p.startsWith('/identity/v1/') && !p.includes('/ssh-keys') && !p.endsWith('/explain'));
    assert.equal(identityPaths.length, 8);
    assert.ok(paths.includes('/identity/v1/identities/{identity}/permissions/git/{repo}/explain'));
    assert.ok(r.body.paths['/identity/v1/identities/{identity}'].get, 'GET one identity');
    assert.deepEqual(paths.filter((p) => p.includes('/ssh-keys')).sort(), ['/identity/v1/identities/{identity}/ssh-keys', '/identity/v1/identities/{identity}/ssh-keys/{key}', '/user/v1/ssh-keys', '/user/v1/ssh-keys/{key}']);
    assert.equal(identityPaths.reduce((n, p) => n + Object.keys(r.body.paths[p]).length, 0) - 1, 16, "all 16 Identity API endpoints (and Palisade's GET of one identity)");
  });
});
