// The audit log: grants, tokens, identities, users, groups and denied accesses are recorded in
// the database (actor, action, target, outcome, time, detail; never a secret), admins read it
// at /admin/v1/audit with since, actor, target, limit and offset, and records past the
// retention are deleted.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Store } from '../../src/store/index.ts';
import { api, startServer, type TestServer } from '../helpers/server.ts';
import { git, makeWorkTree, repoUrl } from '../helpers/git.ts';

let s: TestServer;
/** the server before the restart of the retention test: it owns the data folder and database */
let first: TestServer | undefined;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function rpc(method: string, args: object, key = s.adminKey): Promise<any> {
  const r = (await (await fetch(`${s.url}/_admin/api`, { method: 'POST', body: JSON.stringify({ id: 1, api_key: key, method, args }) })).json()) as { result: unknown; error: string | null };
  assert.equal(r.error, null, `${method}: ${r.error}`);
  return r.result;
}
const audit = async (q = '', key = s.adminKey) => {
  const r = await api(s, 'GET', `/admin/v1/audit${q}`, { key });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body as { entries: any[]; total: number; offset: number };
};

before(async () => {
  s = await startServer({ PALISADE_AUDIT_RETENTION_DAYS: '30' });
});
after(async () => {
  await s.stop();
  await first?.stop();
});

describe('audit log', () => {
  test('an entry for each change and each denial, with its actor, target and outcome; no secrets', async () => {
    const since = new Date().toISOString();
    const userKey = await s.createUser('au-user', false);
    await rpc('create_user', { username: 'au-user', password: 'secret-password-9', email: 'u@example.com', firstname: 'Ann' });
    await rpc('create_users_group', { group_name: 'au-group' });
    await rpc('add_user_to_users_group', { group_name: 'au-group', username: 'au-user' });
    await rpc('create_repo', { repo_name: 'au/repo', owner_name: 'admin', private: true });
    await rpc('grant_user_permission', { repo_name: 'au/repo', username: 'au-user', perm: 'repository.read' });
    await rpc('grant_users_group_permission', { repo_name: 'au/repo', group_name: 'au-group', perm: 'repository.write' });
    await rpc('revoke_user_permission', { repo_name: 'au/repo', username: 'au-user' });
    const id = (await api(s, 'POST', '/identity/v1/identities', { key: s.adminKey })).body.id;
    const tok = (await api(s, 'POST', `/identity/v1/identities/${id}/tokens`, { key: s.adminKey, body: { name: 'au-token', ttlSeconds: 4 } })).body;
    await api(s, 'POST', `/identity/v1/identities/${id}/permissions/git/au%2Frepo`, { key: s.adminKey, body: { permission: 'write', refs: { allow: ['refs/heads/x/*'] } } });
    await api(s, 'POST', `/identity/v1/identities/${id}/permissions/vm/vm-au`, { key: s.adminKey, body: { allowedUsers: ['dev'] } });
    const tok2 = (await api(s, 'POST', `/identity/v1/identities/${id}/tokens`, { key: s.adminKey })).body;
    await api(s, 'DELETE', `/identity/v1/identities/${id}/tokens/${tok2.id}`, { key: s.adminKey });
    // denials: a stranger reading a hidden repository, a refused ref, an expired token
    const stranger = await s.createUser('au-stranger');
    assert.equal((await api(s, 'GET', '/git/v1/repo/au%2Frepo', { key: stranger })).status, 404);
    assert.equal((await api(s, 'POST', '/git/v1/repo/au%2Frepo/git/refs/heads/main', { key: tok.token, body: {} })).status, 404, 'no branch yet: the default branch has no tip');
    const wc = await makeWorkTree(1);
    const pushed = await git(['push', repoUrl(s.url, 'au/repo', 'x-access-token', tok.token), 'main'], { cwd: wc });
    assert.notEqual(pushed.code, 0);
    await sleep(Math.max(0, Date.parse(tok.expiresAt) - Date.now()) + 100);
    assert.equal((await api(s, 'GET', '/git/v1/repo', { key: tok.token })).status, 401);
    await api(s, 'DELETE', `/identity/v1/identities/${id}`, { key: s.adminKey });

    const { entries } = await audit(`?since=${encodeURIComponent(since)}&limit=1000`);
    const seen = entries.map((e) => `${e.action} ${e.outcome}`).reverse();
    for (const want of ['user.create ok', 'user.update ok', 'group.create ok', 'group.member.add ok', 'grant.user ok', 'grant.group ok', 'grant.user.revoke ok', 'identity.create ok', 'token.create ok', 'grant.git ok', 'grant.vm ok', 'token.revoke ok', 'access.denied denied', 'ref.denied denied', 'token.expired denied', 'identity.delete ok'])
      assert.ok(seen.includes(want), `${want} in ${seen.join(', ')}`);
    // who and what
    const upd = entries.find((e) => e.action === 'user.update');
    assert.deepEqual([upd.actor.name, upd.target.name, upd.detail.firstname, upd.detail.password], ['admin', 'au-user', 'Ann', 'changed']);
    const denied = entries.find((e) => e.action === 'access.denied');
    assert.deepEqual([denied.actor.name, denied.target.kind, denied.target.name, denied.detail.action], ['au-stranger', 'repo', 'au/repo', 'repo:read']);
    assert.ok(denied.detail.facts.some((f: any) => f.decisive && f.fact === 'visibility'), 'the facts of the decision');
    const ref = entries.find((e) => e.action === 'ref.denied');
    assert.deepEqual([ref.actor.kind, ref.actor.id, ref.detail.ref], ['identity', id, 'refs/heads/main']);
    const git_ = entries.find((e) => e.action === 'grant.git');
    assert.deepEqual(git_.detail.refs.allow, ['refs/heads/x/*']);
    // never a secret
    const text = JSON.stringify(entries);
    for (const secret of [tok.token, tok2.token, 'secret-password-9', userKey, s.adminKey]) assert.ok(!text.includes(secret), 'a secret in the audit log');
  });

  test('filters: since, actor, target (id or name), limit and offset; newest first', async () => {
    const t0 = new Date().toISOString();
    await rpc('create_repo', { repo_name: 'au/filters', owner_name: 'admin', private: true });
    await s.createUser('au-f1');
    await s.createUser('au-f2');
    await rpc('grant_user_permission', { repo_name: 'au/filters', username: 'au-f1', perm: 'repository.read' });
    await rpc('grant_user_permission', { repo_name: 'au/filters', username: 'au-f2', perm: 'repository.write' });
    const byName = await audit('?target=au/filters');
    assert.deepEqual(byName.entries.map((e) => e.detail.user), ['au-f2', 'au-f1'], 'newest first');
    assert.equal(byName.total, 2);
    const repoId = byName.entries[0].target.id;
    assert.equal((await audit(`?target=${repoId}`)).total, 2, 'by id too');
    const page = await audit('?target=au/filters&limit=1&offset=1');
    assert.deepEqual([page.entries.length, page.entries[0].detail.user, page.total, page.offset], [1, 'au-f1', 2, 1]);
    const admin = await audit(`?actor=admin&since=${encodeURIComponent(t0)}`);
    assert.ok(admin.entries.length >= 2 && admin.entries.every((e) => e.actor.name === 'admin' && e.at >= t0));
    assert.equal((await audit('?since=2999-01-01T00:00:00Z')).total, 0);
    assert.equal((await api(s, 'GET', '/admin/v1/audit?since=yesterday', { key: s.adminKey })).status, 400);
    assert.equal((await api(s, 'GET', '/admin/v1/audit?limit=1001', { key: s.adminKey })).status, 400);
  });

  test('admins only', async () => {
    const key = await s.createUser('au-plain');
    const r = await api(s, 'GET', '/admin/v1/audit', { key });
    assert.deepEqual([r.status, r.body.code], [403, 'FORBIDDEN']);
    assert.equal((await api(s, 'GET', '/admin/v1/audit')).status, 401);
    // the refusal is itself recorded (beside the answer, not before it: a moment later at most)
    let seen = false;
    for (let i = 0; i < 50 && !seen; i++, await sleep(50)) seen = (await audit('?actor=au-plain')).entries.some((e) => e.action === 'access.denied' && e.detail.action === 'server:admin');
    assert.ok(seen);
  });

  test('retention: records older than PALISADE_AUDIT_RETENTION_DAYS are deleted (at start, then hourly on write)', async () => {
    const store = await Store.open(s.dataDir, s.databaseUrl);
    const old = new Date(Date.now() - 31 * 86400_000).toISOString();
    const recent = new Date(Date.now() - 29 * 86400_000).toISOString();
    for (const [id, at] of [['00000000-0000-4000-8000-0000000000a1', old], ['00000000-0000-4000-8000-0000000000a2', recent]] as const) {
      await store.insertAudit(store.db, { id, at, actor_kind: 'system', actor_id: null, actor_name: 'console', action: 'retention.probe', target_kind: 'server', target_id: id, target_name: null, outcome: 'ok', detail: null });
    }
    await store.close();
    assert.equal((await audit('?target=00000000-0000-4000-8000-0000000000a1')).total, 1);
    // a restart on the same data
    first = s;
    const exited = new Promise((r) => first!.proc.once('exit', r));
    first.proc.kill('SIGTERM');
    await exited;
    s = await startServer({ PALISADE_AUDIT_RETENTION_DAYS: '30' }, { reuse: first });
    let left = 1;
    for (let i = 0; i < 50 && left; i++, await sleep(100)) left = (await audit('?target=00000000-0000-4000-8000-0000000000a1')).total;
    assert.equal(left, 0, 'the 31-day-old record is gone');
    assert.equal((await audit('?target=00000000-0000-4000-8000-0000000000a2')).total, 1, 'the 29-day-old one stays');
  });
});
