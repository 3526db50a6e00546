// Two rules the decision point got wrong, each driven through the real git CLI.
// 1. Deactivated account, working identities. The attack: after an admin set a user inactive,
//    the access tokens of the identities that user owned still pushed. The owning account's
//    state is now a fact of every decision: inactive owner, no access; reactivation restores it.
// 2. Group grants ignored. CONTRACT: a user's effective level is the strongest of its own grant
//    and its groups' grants; only an explicit repository.none on the user overrides its groups.
//    A user with repository.read in a group holding repository.write could not push.
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

async function push(url: string): Promise<boolean> {
  const wc = await makeWorkTree(1);
  fs.writeFileSync(path.join(wc, 'x.txt'), crypto.randomUUID());
  await gitOk(['add', '.'], { cwd: wc });
  await gitOk(['commit', '-qm', 'x'], { cwd: wc });
  return (await git(['push', url, `HEAD:refs/heads/b-${crypto.randomBytes(4).toString('hex')}`], { cwd: wc })).code === 0;
}
const clones = async (url: string) => (await git(['clone', '-q', url, path.join(tmpDir(), 'c')])).code === 0;

describe('the owning account\'s state decides for its identities', () => {
  test('deactivated account: its identity tokens stop pushing and cloning; reactivation restores them', async () => {
    const ownerKey = (await rpc('create_user', { username: 'platform', password: 'pw-platform', email: 'p@example.com' })).api_key as string;
    const { repoId } = (await api(s, 'POST', '/git/v1/repo', { key: ownerKey, body: { name: 'platform/app' } })).body;
    const publicRepo = (await api(s, 'POST', '/git/v1/repo', { key: ownerKey, body: { name: 'platform/open', public: true } })).body.repoId;
    const { id: identity } = (await api(s, 'POST', '/identity/v1/identities', { key: ownerKey })).body;
    assert.equal((await api(s, 'POST', `/identity/v1/identities/${identity}/permissions/git/${repoId}`, { key: ownerKey, body: { permission: 'write' } })).status, 200);
    const { token } = (await api(s, 'POST', `/identity/v1/identities/${identity}/tokens`, { key: ownerKey })).body;
    const url = repoUrl(s.url, repoId, 'x-access-token', token);
    assert.equal(await push(url), true, 'works while the account is active');

    await rpc('create_user', { username: 'platform', active: false, password: 'pw-platform', email: 'p@example.com' });
    assert.equal(await push(url), false, 'push refused after deactivation');
    assert.equal(await clones(url), false, 'clone refused after deactivation');
    assert.equal(await push(repoUrl(s.url, publicRepo, 'x-access-token', token)), false, 'nor may it push where the repository is public');
    const rest = await api(s, 'GET', `/git/v1/repo/${repoId}/git/refs/heads/`, { headers: { 'x-freestyle-identity-access-token': token } });
    assert.equal(rest.status, 404, 'the REST API refuses it too');

    await rpc('create_user', { username: 'platform', active: true, password: 'pw-platform', email: 'p@example.com' });
    assert.equal(await push(url), true, 'reactivation restores access');
  });
});

describe('groups: the strongest of own and group grants', () => {
  test('own read + group write pushes; own none + group write does nothing', async () => {
    await rpc('create_repo', { repo_name: 'team/site', owner_name: 'admin', private: true });
    await gitOk(['push', repoUrl(s.url, 'team/site', 'x-access-token', s.adminKey), 'main'], { cwd: await makeWorkTree(1) });
    for (const u of ['reads', 'blocked']) await rpc('create_user', { username: u, password: `pw-${u}`, email: `${u}@example.com` });
    await rpc('create_users_group', { group_name: 'writers' });
    for (const u of ['reads', 'blocked']) await rpc('add_user_to_users_group', { group_name: 'writers', username: u });
    await rpc('grant_users_group_permission', { repo_name: 'team/site', group_name: 'writers', perm: 'repository.write' });
    await rpc('grant_user_permission', { repo_name: 'team/site', username: 'reads', perm: 'repository.read' });
    await rpc('grant_user_permission', { repo_name: 'team/site', username: 'blocked', perm: 'repository.none' });

    assert.equal(await push(repoUrl(s.url, 'team/site', 'reads', 'pw-reads')), true, 'own read, group write: pushes');
    assert.equal(await clones(repoUrl(s.url, 'team/site', 'blocked', 'pw-blocked')), false, 'own none overrides the group');
    // the listing follows the same rule
    const login = async (u: string) => (await api(s, 'GET', '/git/v1/repo', { headers: { authorization: `Basic ${Buffer.from(`${u}:pw-${u}`).toString('base64')}` } })).body;
    assert.ok((await login('reads')).repositories.some((r: { name: string }) => r.name === 'team/site'));
    assert.ok(!(await login('blocked')).repositories.some((r: { name: string }) => r.name === 'team/site'));
  });
});
