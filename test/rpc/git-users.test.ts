// Grants made over JSON-RPC, enforced on clone and push through the real git CLI, for users
// (username + password, username + API key), directly, through a group, overridden, revoked,
// deactivated; and together with identity grants made over the Identity API.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { git, gitOk, makeWorkTree, repoUrl, tmpDir } from '../helpers/git.ts';
import { api, startServer, type TestServer } from '../helpers/server.ts';

let s: TestServer;
before(async () => {
  s = await startServer();
});
after(() => s.stop());

async function rpc(method: string, args: object, key = s.adminKey): Promise<any> {
  const res = await fetch(`${s.url}/_admin/api`, { method: 'POST', body: JSON.stringify({ id: 1, api_key: key, method, args }) });
  const j = (await res.json()) as { result: unknown; error: string | null };
  assert.equal(j.error, null, `${method}: ${j.error}`);
  return j.result;
}

type Outcome = 'ok' | 'denied' | 'refused';
/** clone: ok, or denied (404/401 look-alike); push: ok, refused (403), or denied. */
async function tryClone(url: string): Promise<Outcome> {
  const r = await git(['clone', '-q', url, path.join(tmpDir(), 'c')]);
  return r.code === 0 ? 'ok' : 'denied';
}
async function tryPush(url: string): Promise<Outcome> {
  const wc = await makeWorkTree(1);
  fs.writeFileSync(path.join(wc, 'x.txt'), crypto.randomUUID());
  await gitOk(['add', '.'], { cwd: wc });
  await gitOk(['commit', '-qm', 'x'], { cwd: wc });
  const r = await git(['push', url, `HEAD:refs/heads/b-${crypto.randomBytes(4).toString('hex')}`], { cwd: wc });
  if (r.code === 0) return 'ok';
  return /returned error: 403/.test(r.stderr) ? 'refused' : 'denied';
}

describe('user and group grants on git', () => {
  test('matrix: direct grant, group grant, explicit none over a group, revoke, deactivation', async () => {
    const repo = await rpc('create_repo', { repo_name: 'team/app', owner_name: 'admin', private: true });
    const seed = await makeWorkTree(1);
    await gitOk(['push', repoUrl(s.url, 'team/app', 'x-access-token', s.adminKey), 'main'], { cwd: seed });
    const mk = async (u: string) => (await rpc('create_user', { username: u, password: `pw-${u}`, email: `${u}@example.com` })).api_key as string;
    const keys = { reader: await mk('reader'), writer: await mk('writer'), grouped: await mk('grouped'), denied: await mk('denied'), adminperm: await mk('adminperm') };
    await rpc('create_users_group', { group_name: 'team' });
    for (const u of ['grouped', 'denied']) await rpc('add_user_to_users_group', { group_name: 'team', username: u });
    await rpc('grant_user_permission', { repo_name: 'team/app', username: 'reader', perm: 'repository.read' });
    await rpc('grant_user_permission', { repo_name: 'team/app', username: 'writer', perm: 'repository.write' });
    await rpc('grant_user_permission', { repo_name: 'team/app', username: 'adminperm', perm: 'repository.admin' });
    await rpc('grant_users_group_permission', { repo_name: 'team/app', group_name: 'team', perm: 'repository.write' });
    await rpc('grant_user_permission', { repo_name: 'team/app', username: 'denied', perm: 'repository.none' });

    const byPassword = (u: string) => repoUrl(s.url, 'team/app.git', u, `pw-${u}`);
    const byKey = (u: keyof typeof keys) => repoUrl(s.url, repo.id, u, keys[u]);
    const rows: [string, string, Outcome, Outcome][] = [
      ['reader (password)', byPassword('reader'), 'ok', 'refused'],
      ['reader (API key)', byKey('reader'), 'ok', 'refused'],
      ['writer (password)', byPassword('writer'), 'ok', 'ok'],
      ['through group (API key)', byKey('grouped'), 'ok', 'ok'],
      ['explicit none beats the group', byKey('denied'), 'denied', 'denied'],
      ['repository.admin may push', byPassword('adminperm'), 'ok', 'ok'],
      ['API key as x-access-token password', repoUrl(s.url, 'team/app', 'x-access-token', keys.writer), 'ok', 'ok'],
      ["someone else's API key for a username", repoUrl(s.url, 'team/app', 'reader', keys.writer), 'denied', 'denied'],
    ];
    for (const [who, url, clone, push] of rows) {
      assert.equal(await tryClone(url), clone, `${who}: clone`);
      assert.equal(await tryPush(url), push, `${who}: push`);
    }

    // revoke: the writer falls back to the default for a private repository (nothing)
    await rpc('revoke_user_permission', { repo_name: 'team/app', username: 'writer' });
    assert.equal(await tryClone(byPassword('writer')), 'denied');
    // removing the explicit none lets the group's grant through again
    await rpc('revoke_user_permission', { repo_name: 'team/app', username: 'denied' });
    assert.equal(await tryPush(byKey('denied')), 'ok');
    // a group grant revoked, members lose it
    await rpc('revoke_users_group_permission', { repo_name: 'team/app', users_group: 'team' });
    assert.equal(await tryClone(byKey('grouped')), 'denied');
    // deactivation: the user holds nothing any more, by password or key
    await rpc('create_user', { username: 'reader', password: 'pw-reader', email: 'reader@example.com', active: false });
    assert.equal(await tryClone(byPassword('reader')), 'denied');
    assert.equal(await tryClone(byKey('reader')), 'denied');
    // granting the group again restores its members' access
    await rpc('grant_users_group_permission', { repo_name: 'team/app', group_name: 'team', perm: 'repository.read' });
    assert.equal(await tryClone(byKey('grouped')), 'ok');
    // an inactive group's grant does not count
    const sleeperKey = await mk('sleeper');
    await rpc('create_users_group', { group_name: 'dormant', active: false });
    await rpc('add_user_to_users_group', { group_name: 'dormant', username: 'sleeper' });
    await rpc('grant_users_group_permission', { repo_name: 'team/app', group_name: 'dormant', perm: 'repository.write' });
    assert.equal(await tryClone(repoUrl(s.url, 'team/app', 'sleeper', sleeperKey)), 'denied');
  });

  test('grants over RPC and over the Identity API are enforced together on one repository', async () => {
    const r = await rpc('create_repo', { repo_name: 'mixed/one', owner_name: 'admin', private: true });
    const key = (await rpc('create_user', { username: 'mixeduser', password: 'pw-m', email: 'm@example.com' })).api_key as string;
    await rpc('grant_user_permission', { repo_name: 'mixed/one', username: 'mixeduser', perm: 'repository.read' });
    const ident = (await api(s, 'POST', '/identity/v1/identities', { key: s.adminKey })).body.id;
    await api(s, 'POST', `/identity/v1/identities/${ident}/permissions/git/${r.id}`, { key: s.adminKey, body: { permission: 'write' } });
    const token = (await api(s, 'POST', `/identity/v1/identities/${ident}/tokens`, { key: s.adminKey })).body.token;
    assert.equal(await tryPush(repoUrl(s.url, 'mixed/one', 'x-access-token', token)), 'ok');
    assert.equal(await tryPush(repoUrl(s.url, 'mixed/one', 'mixeduser', key)), 'refused');
    // the user's API key as Bearer on the REST API: it sees the granted repository
    const list = await api(s, 'GET', '/git/v1/repo', { key });
    assert.deepEqual(list.body.repositories.map((x: { id: string }) => x.id), [r.id]);
    assert.equal((await api(s, 'GET', `/git/v1/repo/${r.id}`, { key })).status, 200);
    assert.equal((await api(s, 'DELETE', `/git/v1/repo/${r.id}`, { key })).status, 403, 'read is not admin');
  });

  test('a user is backed by a managed identity, hidden unless include_managed, and protected', async () => {
    const key = (await rpc('create_user', { username: 'managed-check', password: 'pw', email: 'mc@example.com' })).api_key as string;
    const all = await api(s, 'GET', '/identity/v1/identities?include_managed=true&limit=1000', { key });
    assert.equal(all.body.identities.length, 1, 'a user sees its own managed identity only');
    const mid = all.body.identities[0];
    assert.equal(mid.managed, true);
    assert.equal((await api(s, 'GET', '/identity/v1/identities', { key })).body.total, 0);
    const del = await api(s, 'DELETE', `/identity/v1/identities/${mid.id}`, { key });
    assert.equal(del.body.code, 'CANNOT_DELETE_MANAGED_IDENTITY');
  });
});
