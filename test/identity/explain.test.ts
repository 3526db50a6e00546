// Explain: the effective level and the ordered facts the decision point weighed, for each rule
// of the decision, through the Identity API (identities, with a ref) and JSON-RPC
// explain_permission (users, with their groups by name).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { api, startServer, type TestServer } from '../helpers/server.ts';

let s: TestServer;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function rpc(method: string, args: object, key = s.adminKey): Promise<{ result: any; error: string | null }> {
  return (await (await fetch(`${s.url}/_admin/api`, { method: 'POST', body: JSON.stringify({ id: 1, api_key: key, method, args }) })).json()) as { result: any; error: string | null };
}
const ok = async (method: string, args: object, key = s.adminKey) => {
  const r = await rpc(method, args, key);
  assert.equal(r.error, null, `${method}: ${r.error}`);
  return r.result;
};
/** The facts as `fact:level` (or `fact:effect`), the decisive one starred. */
const shape = (facts: any[]) => facts.map((f) => `${f.decisive ? '*' : ''}${f.fact}${f.level ? `:${f.level}` : ''}${f.effect ? `:${f.effect}` : ''}${f.name ? `(${f.name})` : ''}`);

before(async () => {
  s = await startServer();
});
after(() => s.stop());

describe('explain', () => {
  test('users (JSON-RPC explain_permission): owner, admin, own grant, groups by name, explicit none, visibility default, inactive account, protected branch', async () => {
    const ownerKey = await s.createUser('ex-owner');
    await s.createUser('ex-dev');
    await s.createUser('ex-none');
    await s.createUser('ex-gone');
    await ok('create_repo', { repo_name: 'explain/priv', owner_name: 'ex-owner', private: true });
    await ok('create_repo', { repo_name: 'explain/pub', owner_name: 'ex-owner', private: false });
    for (const g of ['ex-readers', 'ex-writers']) {
      await ok('create_users_group', { group_name: g });
      for (const u of ['ex-dev', 'ex-none']) await ok('add_user_to_users_group', { group_name: g, username: u });
    }
    await ok('grant_users_group_permission', { repo_name: 'explain/priv', group_name: 'ex-readers', perm: 'repository.read' });
    await ok('grant_users_group_permission', { repo_name: 'explain/priv', group_name: 'ex-writers', perm: 'repository.write' });
    await ok('grant_user_permission', { repo_name: 'explain/priv', username: 'ex-dev', perm: 'repository.read' });
    await ok('grant_user_permission', { repo_name: 'explain/priv', username: 'ex-none', perm: 'repository.none' });
    await ok('grant_user_permission', { repo_name: 'explain/priv', username: 'ex-gone', perm: 'repository.write' });
    await ok('create_user', { username: 'ex-gone', password: 'x-password-1', email: 'g@example.com', active: false });

    const rows: [string, string, string, string[]][] = [
      ['explain/priv', 'ex-owner', 'admin', ['*owner:admin']],
      ['explain/priv', 'admin', 'admin', ['*admin:admin']],
      ['explain/priv', 'ex-dev', 'write', ['userGrant:read', 'groupGrant:read(ex-readers)', '*groupGrant:write(ex-writers)', 'visibility:none']],
      ['explain/priv', 'ex-none', 'none', ['*userGrant:none']],
      ['explain/pub', 'ex-dev', 'read', ['*visibility:read']],
      ['explain/priv', 'ex-gone', 'none', ['*account:none']],
    ];
    for (const [repo, user, level, facts] of rows) {
      const r = await ok('explain_permission', { repo_name: repo, username: user });
      assert.equal(r.level, level, `${user} on ${repo}`);
      assert.equal(r.permission, `repository.${level}`);
      assert.deepEqual(shape(r.facts), facts, `${user} on ${repo}`);
    }
    // a ref: the protected branch fact
    await api(s, 'PUT', '/git/v1/repo/explain%2Fpriv/protected-branches', { key: s.adminKey, body: { branches: ['main'] } });
    const del = await ok('explain_permission', { repo_name: 'explain/priv', username: 'ex-dev', ref: 'refs/heads/main', operation: 'delete' });
    assert.deepEqual([del.ref.allowed, del.ref.reason], [false, 'protected branch: it cannot be deleted']);
    assert.deepEqual(shape(del.ref.facts).at(-1), '*protectedBranch:deny(main)');
    const upd = await ok('explain_permission', { repo_name: 'explain/priv', username: 'ex-dev', ref: 'refs/heads/main' });
    assert.deepEqual([upd.ref.allowed, upd.ref.fast_forward_only], [true, true]);
    const own = await ok('explain_permission', { repo_name: 'explain/priv', username: 'ex-owner', ref: 'refs/heads/main', operation: 'delete' });
    assert.equal(own.ref.allowed, true, 'owners are not bound');
    // who may ask: admins of the repository, or a user about itself (read needed)
    assert.equal((await ok('explain_permission', { repo_name: 'explain/priv', username: 'ex-dev' }, ownerKey)).level, 'write');
    const devKey = await s.cli('user', 'rotate-key', 'ex-dev').then((o) => o.trim().split('\n').pop()!);
    assert.equal((await ok('explain_permission', { repo_name: 'explain/priv', username: 'ex-dev' }, devKey)).level, 'write');
    assert.match((await rpc('explain_permission', { repo_name: 'explain/priv', username: 'ex-owner' }, devKey)).error!, /no permission/);
    const noneKey = await s.cli('user', 'rotate-key', 'ex-none').then((o) => o.trim().split('\n').pop()!);
    assert.match((await rpc('explain_permission', { repo_name: 'explain/priv', username: 'ex-none' }, noneKey)).error!, /not found/, 'a hidden repository stays hidden');
  });

  test('identities (Identity API): grant, no grant, visibility default, inactive account, ref rules, expired tokens', async () => {
    const userKey = await s.createUser('ex-account');
    const repo = (await api(s, 'POST', '/git/v1/repo', { key: userKey, body: { name: 'ex-account/r' } })).body.repoId;
    const pub = (await api(s, 'POST', '/git/v1/repo', { key: userKey, body: { name: 'ex-account/p', public: true } })).body.repoId;
    const id = (await api(s, 'POST', '/identity/v1/identities', { key: userKey })).body.id;
    const explain = async (r: string, q = '', key = userKey) => {
      const res = await api(s, 'GET', `/identity/v1/identities/${id}/permissions/git/${r}/explain${q}`, { key });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      return res.body;
    };
    assert.deepEqual(shape((await explain(repo)).facts), ['*identityGrant:none', 'visibility:none']);
    assert.equal((await explain(repo)).level, 'none');
    assert.deepEqual(shape((await explain(pub)).facts), ['identityGrant:none', '*visibility:read']);
    await api(s, 'POST', `/identity/v1/identities/${id}/permissions/git/${repo}`, { key: userKey, body: { permission: 'write', refs: { allow: ['refs/heads/agents/*'] } } });
    const e = await explain(repo);
    assert.equal(e.level, 'write');
    assert.deepEqual(shape(e.facts), ['*identityGrant:write', 'visibility:none', 'refRule']);
    // a ref: the rule that allows or refuses it, and fast-forward only
    const main = await explain(repo, '?ref=refs/heads/main');
    assert.deepEqual([main.ref.allowed, main.ref.reason], [false, 'not among the refs this grant allows']);
    assert.equal(shape(main.ref.facts).at(-1), '*refRule:deny');
    const agents = await explain(repo, '?ref=refs/heads/agents/x');
    assert.deepEqual([agents.ref.allowed, agents.ref.fastForwardOnly, agents.ref.reason], [true, true, 'this grant does not allow force pushes']);
    const del = await explain(repo, '?ref=refs/heads/agents/x&operation=delete');
    assert.deepEqual([del.ref.allowed, del.ref.reason], [false, 'this grant does not allow deleting refs']);
    assert.equal((await api(s, 'GET', `/identity/v1/identities/${id}/permissions/git/${repo}/explain?ref=main`, { key: userKey })).status, 400, 'a full ref name');
    // v5 answers the same
    assert.deepEqual((await api(s, 'GET', `/v5/identities/${id}/permissions/git/${repo}/explain?ref=refs/heads/main`, { key: userKey })).body, main);
    // tokens: live and expired; with only expired ones, a credential fact says so
    const t = (await api(s, 'POST', `/identity/v1/identities/${id}/tokens`, { key: userKey, body: { ttlSeconds: 1 } })).body;
    assert.deepEqual((await explain(repo)).tokens, { live: 1, expired: 0 });
    await sleep(Math.max(0, Date.parse(t.expiresAt) - Date.now()) + 100);
    const expired = await explain(repo);
    assert.deepEqual(expired.tokens, { live: 0, expired: 1 });
    assert.equal(shape(expired.facts).at(-1), 'credential');
    // the identity itself may ask, with a live token
    const live = (await api(s, 'POST', `/identity/v1/identities/${id}/tokens`, { key: userKey })).body.token;
    assert.equal((await explain(repo, '', live)).level, 'write');
    // the account deactivated: nothing, and the account says why
    await s.cli('user', 'create', 'ex-bystander');
    await ok('create_user', { username: 'ex-account', password: 'x-password-2', email: 'a@example.com', active: false });
    const off = (await api(s, 'GET', `/identity/v1/identities/${id}/permissions/git/${repo}/explain`, { key: s.adminKey })).body;
    assert.deepEqual([off.level, shape(off.facts)], ['none', ['*account:none']]);
  });
});
