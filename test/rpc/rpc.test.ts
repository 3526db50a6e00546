// The RhodeCode admin JSON-RPC API (seed 002) over raw HTTP: protocol, every method, errors.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { gitOk, makeWorkTree, repoUrl, tmpDir } from '../helpers/git.ts';
import { api, startServer, type TestServer } from '../helpers/server.ts';

let s: TestServer;

before(async () => {
  s = await startServer({ PALISADE_ALLOW_PRIVATE_URLS: '1' });
});
after(() => s.stop());

interface RpcAnswer {
  status: number;
  id: unknown;
  result: any;
  error: string | null;
  keys: string[];
}

async function rpcRaw(body: string, contentType = 'text/plain'): Promise<RpcAnswer> {
  const res = await fetch(`${s.url}/_admin/api`, { method: 'POST', headers: { 'content-type': contentType }, body });
  const json = (await res.json()) as Record<string, unknown>;
  return { status: res.status, id: json.id, result: json.result, error: json.error as string | null, keys: Object.keys(json).sort() };
}
const rpc = (method: string, args?: unknown, key = s.adminKey, id: unknown = 1) => rpcRaw(JSON.stringify({ id, api_key: key, method, ...(args === undefined ? {} : { args }) }));
async function ok(method: string, args?: unknown, key = s.adminKey): Promise<any> {
  const r = await rpc(method, args, key);
  assert.equal(r.error, null, `${method}: ${r.error}`);
  return r.result;
}
async function err(method: string, args: unknown, pattern: RegExp, key = s.adminKey): Promise<void> {
  const r = await rpc(method, args, key);
  assert.equal(r.status, 200);
  assert.equal(r.result, null, `${method} should fail`);
  assert.match(r.error ?? '', pattern, `${method}: ${r.error}`);
}

describe('JSON-RPC protocol', () => {
  test('the seed curl (content-type text/plain) and id echoed as sent, any JSON type', async () => {
    await ok('create_repo', { repo_name: 'CPython', owner_name: 'admin' });
    for (const id of [1, 'abc', null, [1, 'x'], { a: 1 }, 3.5, true]) {
      const r = await rpcRaw(JSON.stringify({ id, api_key: s.adminKey, method: 'get_repo', args: { repo_name: 'CPython' } }));
      assert.equal(r.status, 200);
      assert.deepEqual(r.keys, ['error', 'id', 'result']);
      assert.deepEqual(r.id, id);
      assert.equal(r.error, null);
      assert.equal(r.result.repo_name, 'CPython');
    }
    for (const ct of ['application/json', 'application/x-www-form-urlencoded', 'text/plain;charset=utf-8']) {
      const r = await rpcRaw(JSON.stringify({ id: 9, api_key: s.adminKey, method: 'get_users' }), ct);
      assert.equal(r.error, null, ct);
      assert.ok(Array.isArray(r.result));
    }
  });

  test('protocol errors: always HTTP 200, exactly one of result/error', async () => {
    const cases: [string, RegExp][] = [
      ['{"id":1,', /JSON parse error/],
      ['[1,2]', /JSON object/],
      [JSON.stringify({ id: 1, method: 'get_users' }), /Missing api_key/],
      [JSON.stringify({ id: 1, api_key: s.adminKey }), /Missing method/],
      [JSON.stringify({ id: 1, api_key: 'pal_not_a_key', method: 'get_users' }), /Invalid API KEY/],
      [JSON.stringify({ id: 1, api_key: s.adminKey, method: 'no_such_method' }), /Unknown method: no_such_method/],
      [JSON.stringify({ id: 1, api_key: s.adminKey, method: '__proto__' }), /Unknown method/],
      [JSON.stringify({ id: 1, api_key: s.adminKey, method: 'get_users', args: [] }), /args.*object/],
      [JSON.stringify({ id: 1, api_key: s.adminKey, method: 'get_users', extra: 1 }), /unexpected key/],
    ];
    for (const [body, pattern] of cases) {
      const r = await rpcRaw(body);
      assert.equal(r.status, 200, body);
      assert.equal(r.result, null, body);
      assert.match(r.error ?? '', pattern, body);
    }
    await err('get_user', {}, /missing required argument.*"username"/);
    await err('get_user', { username: 'admin', bogus: 1 }, /unexpected argument.*"bogus"/);
    await err('get_user', { username: 42 }, /"username" must be a string/);
    await err('create_users_group', { group_name: 'g-types', active: 'maybe' }, /"active" must be a boolean/);
  });

  test('a non-admin api_key is refused on admin-only methods', async () => {
    const key = (await ok('create_user', { username: 'plainuser', password: 'pw-1', email: 'p@example.com' })).api_key as string;
    assert.ok(key.startsWith('pal_'));
    for (const m of ['get_user', 'get_users', 'create_user', 'get_users_group', 'get_users_groups', 'create_users_group', 'add_user_to_users_group', 'remove_user_from_users_group']) {
      const r = await rpc(m, {}, key);
      assert.match(r.error ?? '', /requires admin rights/, m);
    }
    // repository methods are decided per repository: a stranger's view of a private repository is "none"
    await ok('create_repo', { repo_name: 'admins/secret', owner_name: 'admin', private: true });
    assert.equal((await rpc('get_repo', { repo_name: 'admins/secret' }, key)).result, null);
    await err('grant_user_permission', { repo_name: 'admins/secret', username: 'plainuser', perm: 'repository.admin' }, /not found/i, key);
    await err('pull', { repo_name: 'admins/secret' }, /not found/i, key);
    assert.ok(!(await ok('get_repos', {}, key)).some((r: { repo_name: string }) => r.repo_name === 'admins/secret'));
  });
});

describe('JSON-RPC methods', () => {
  test('users: create_user creates then updates, get_user, get_users', async () => {
    const created = await ok('create_user', { username: 'carol', password: 'secret-1', email: 'carol@example.com', firstname: 'Carol', lastname: 'C', ldap_dn: 'cn=carol' });
    assert.equal(created.msg, 'created new user carol');
    assert.match(created.id, /^[0-9a-f-]{36}$/);
    assert.ok(created.api_key.startsWith('pal_'));
    const u = await ok('get_user', { username: 'carol' });
    assert.deepEqual(u, { id: created.id, username: 'carol', firstname: 'Carol', lastname: 'C', email: 'carol@example.com', active: true, admin: false, ldap: 'cn=carol', api_key: null });
    const updated = await ok('create_user', { username: 'carol', password: 'secret-2', email: 'carol@new.example.com', active: false });
    assert.equal(updated.msg, 'updated user carol');
    assert.equal(updated.id, created.id);
    assert.equal(updated.api_key, null);
    const u2 = await ok('get_user', { username: 'carol' });
    assert.equal(u2.email, 'carol@new.example.com');
    assert.equal(u2.active, false);
    assert.equal(u2.firstname, 'Carol', 'fields not given are kept');
    assert.equal(await ok('get_user', { username: 'nobody-here' }), null);
    const all = await ok('get_users');
    assert.ok(all.some((x: { username: string }) => x.username === 'admin'));
    assert.ok(all.some((x: { username: string }) => x.username === 'carol'));
    await err('create_user', { username: 'bad name!', password: 'x', email: 'e' }, /username/);
    await err('create_user', { username: 'x-access-token', password: 'x', email: 'e' }, /reserved/);
  });

  test('users groups: create, get, list, add (both spellings) and remove with success semantics', async () => {
    await ok('create_user', { username: 'dave', password: 'pw', email: 'd@example.com' });
    const g = await ok('create_users_group', { group_name: 'qa' });
    assert.equal(g.msg, 'created new users group qa');
    await err('create_users_group', { group_name: 'qa' }, /already exists/);
    const add1 = await ok('add_user_to_users_group', { group_name: 'qa', username: 'dave' });
    assert.equal(add1.success, true);
    assert.equal(add1.msg, 'added member dave to users group qa');
    const add2 = await ok('add_user_users_group', { group_name: 'qa', username: 'dave' });
    assert.equal(add2.success, false);
    assert.equal(add2.msg, 'User is already in that group');
    assert.equal(add2.id, add1.id);
    const got = await ok('get_users_group', { group_name: 'qa' });
    assert.equal(got.group_name, 'qa');
    assert.equal(got.active, true);
    assert.deepEqual(got.members.map((m: { username: string }) => m.username), ['dave']);
    assert.ok((await ok('get_users_groups')).some((x: { group_name: string }) => x.group_name === 'qa'));
    assert.equal(await ok('get_users_group', { group_name: 'no-such-group' }), null);
    const rm1 = await ok('remove_user_from_users_group', { group_name: 'qa', username: 'dave' });
    assert.deepEqual(rm1, { success: true, msg: 'removed member dave from users group qa' });
    const rm2 = await ok('remove_user_from_users_group', { group_name: 'qa', username: 'dave' });
    assert.deepEqual(rm2, { success: false, msg: "User wasn't in group" });
    await err('add_user_to_users_group', { group_name: 'qa', username: 'ghost' }, /user ghost does not exist/);
    await err('add_user_to_users_group', { group_name: 'ghosts', username: 'dave' }, /users group ghosts does not exist/);
  });

  test('repositories: create_repo with nested groups, get_repo members, get_repos, repo types', async () => {
    const r = await ok('create_repo', { repo_name: 'foo/bar/baz', owner_name: 'admin', description: 'nested', private: true });
    assert.equal(r.msg, 'Created new repository foo/bar/baz');
    await err('create_repo', { repo_name: 'foo/bar/baz', owner_name: 'admin' }, /already exists/);
    await ok('create_repo', { repo_name: 'hgrepo', owner_name: 'admin', repo_type: 'hg' });
    assert.equal((await ok('get_repo', { repo_name: 'hgrepo' })).type, 'hg');
    assert.equal((await ok('get_repo', { repo_name: 'foo/bar/baz' })).type, 'git', 'this server defaults to git (the test helper sets PALISADE_DEFAULT_REPO_TYPE)');
    await err('create_repo', { repo_name: 'svnrepo', owner_name: 'admin', repo_type: 'svn' }, /unknown repo_type/);
    await err('create_repo', { repo_name: '../escape', owner_name: 'admin' }, /Invalid repository name/);
    await err('create_repo', { repo_name: 'owned', owner_name: 'ghost' }, /user ghost does not exist/);
    await ok('create_user', { username: 'erin', password: 'pw', email: 'e@example.com' });
    await ok('create_users_group', { group_name: 'devs' });
    await ok('grant_user_permission', { repo_name: 'foo/bar/baz', username: 'erin', perm: 'repository.read' });
    const g = await ok('grant_users_group_permission', { repo_name: 'foo/bar/baz', group_name: 'devs', perm: 'repository.write' });
    assert.equal(g.msg, 'Granted perm: repository.write for group: devs in repo: foo/bar/baz');
    const repo = await ok('get_repo', { repo_name: 'foo/bar/baz' });
    assert.equal(repo.id, r.id);
    assert.equal(repo.type, 'git');
    assert.equal(repo.description, 'nested');
    assert.equal(repo.private, true);
    const perms = Object.fromEntries(repo.members.map((m: { username?: string; name?: string; permission: string }) => [m.username ?? `group:${m.name}`, m.permission]));
    assert.deepEqual(perms, { admin: 'repository.admin', erin: 'repository.read', 'group:devs': 'repository.write' });
    assert.equal(await ok('get_repo', { repo_name: 'foo/bar/nothing' }), null);
    const list = await ok('get_repos');
    assert.ok(list.some((x: { repo_name: string; type: string }) => x.repo_name === 'foo/bar/baz' && x.type === 'git'));
    // the RPC private flag and the Identity API's visibility are the same fact
    const rest = await api(s, 'GET', `/git/v1/repo/${r.id}`, { key: s.adminKey });
    assert.equal(rest.body.visibility, 'private');
    const pub = await ok('create_repo', { repo_name: 'foo/public-one', owner_name: 'admin' });
    assert.equal((await api(s, 'GET', `/git/v1/repo/${pub.id}`, { key: s.adminKey })).body.visibility, 'public', 'RPC default private=false');
  });

  test('grants: revoke_user_permission and revoke_users_group_permission (both argument spellings)', async () => {
    await ok('create_repo', { repo_name: 'grants/r', owner_name: 'admin', private: true });
    await ok('create_user', { username: 'frank', password: 'pw', email: 'f@example.com' });
    await ok('create_users_group', { group_name: 'ops' });
    await ok('grant_users_group_permission', { repo_name: 'grants/r', users_group: 'ops', perm: 'repository.read' });
    await ok('grant_user_permission', { repo_name: 'grants/r', username: 'frank', perm: 'repository.write' });
    await ok('grant_user_permission', { repo_name: 'grants/r', username: 'frank', perm: 'repository.admin' });
    let members = (await ok('get_repo', { repo_name: 'grants/r' })).members;
    assert.equal(members.find((m: { username?: string }) => m.username === 'frank').permission, 'repository.admin', 'a second grant updates');
    assert.deepEqual(await ok('revoke_user_permission', { repo_name: 'grants/r', username: 'frank' }), { msg: 'Revoked perm for user: frank in repo: grants/r' });
    assert.deepEqual(await ok('revoke_users_group_permission', { repo_name: 'grants/r', users_group: 'ops' }), { msg: 'Revoked perm for group: ops in repo: grants/r' });
    await ok('grant_users_group_permission', { repo_name: 'grants/r', group_name: 'ops', perm: 'repository.read' });
    await ok('revoke_users_group_permission', { repo_name: 'grants/r', group_name: 'ops' });
    members = (await ok('get_repo', { repo_name: 'grants/r' })).members;
    assert.deepEqual(members.map((m: { username?: string }) => m.username), ['admin']);
    await err('grant_user_permission', { repo_name: 'grants/r', username: 'frank', perm: 'repository.owner' }, /perm must be one of/);
    await err('grant_user_permission', { repo_name: 'grants/none', username: 'frank', perm: 'repository.read' }, /not found/i);
    await err('grant_users_group_permission', { repo_name: 'grants/r', users_group: 'nope', perm: 'repository.read' }, /users group nope does not exist/);
  });

  test('get_repo_nodes lists a pushed tree with nested folders, flat, by ret_type', async () => {
    const r = await ok('create_repo', { repo_name: 'nodes/tree', owner_name: 'admin', private: true });
    const wc = await makeWorkTree(0);
    const fs = await import('node:fs');
    for (const f of ['README.md', 'src/main.ts', 'src/lib/util.ts', 'src/lib/deep/x.txt', 'docs/guide.md']) {
      fs.mkdirSync(path.join(wc, path.dirname(f)), { recursive: true });
      fs.writeFileSync(path.join(wc, f), f);
    }
    await gitOk(['add', '.'], { cwd: wc });
    await gitOk(['commit', '-qm', 'tree'], { cwd: wc });
    await gitOk(['push', repoUrl(s.url, r.id, 'x-access-token', s.adminKey), 'main'], { cwd: wc });
    const all = await ok('get_repo_nodes', { repo_name: 'nodes/tree', revision: 'main', root_path: '/' });
    const names = all.map((n: { name: string; type: string }) => `${n.type}:${n.name}`).sort();
    assert.deepEqual(names, ['dir:docs', 'dir:src', 'dir:src/lib', 'dir:src/lib/deep', 'file:README.md', 'file:docs/guide.md', 'file:src/lib/deep/x.txt', 'file:src/lib/util.ts', 'file:src/main.ts']);
    const files = await ok('get_repo_nodes', { repo_name: 'nodes/tree', revision: 'HEAD', root_path: 'src', ret_type: 'files' });
    assert.deepEqual(files.map((n: { name: string }) => n.name).sort(), ['src/lib/deep/x.txt', 'src/lib/util.ts', 'src/main.ts']);
    const dirs = await ok('get_repo_nodes', { repo_name: 'nodes/tree', revision: 'main', root_path: 'src', ret_type: 'dirs' });
    assert.deepEqual(dirs.map((n: { name: string }) => n.name).sort(), ['src/lib', 'src/lib/deep']);
    await err('get_repo_nodes', { repo_name: 'nodes/tree', revision: 'main', root_path: '../..' }, /Invalid root_path/);
    await err('get_repo_nodes', { repo_name: 'nodes/tree', revision: '--output=/tmp/x', root_path: '' }, /not found/);
    await err('get_repo_nodes', { repo_name: 'nodes/tree', revision: 'nope', root_path: '' }, /not found/);
    await err('get_repo_nodes', { repo_name: 'nodes/tree', revision: 'main', root_path: '', ret_type: 'links' }, /ret_type/);
    await err('get_repo_nodes', { repo_name: 'nodes/missing', revision: 'main', root_path: '' }, /Repository not found/);
  });

  test('pull: create_repo with clone_uri (same Palisade, and file://) then pull brings new commits', async () => {
    const upstream = await ok('create_repo', { repo_name: 'up/stream', owner_name: 'admin', private: true });
    const wc = await makeWorkTree(2);
    const upUrl = repoUrl(s.url, upstream.id, 'x-access-token', s.adminKey);
    await gitOk(['push', upUrl, 'main'], { cwd: wc });
    const mirror = await ok('create_repo', { repo_name: 'down/mirror', owner_name: 'admin', clone_uri: upUrl });
    const mUrl = repoUrl(s.url, mirror.id, 'x-access-token', s.adminKey);
    const head1 = (await gitOk(['rev-parse', 'HEAD'], { cwd: wc })).trim();
    assert.match(await gitOk(['ls-remote', mUrl]), new RegExp(`^${head1}\\trefs/heads/main$`, 'm'));
    const fs = await import('node:fs');
    fs.writeFileSync(path.join(wc, 'new.txt'), 'new');
    await gitOk(['add', '.'], { cwd: wc });
    await gitOk(['commit', '-qm', 'new upstream commit'], { cwd: wc });
    await gitOk(['push', upUrl, 'main'], { cwd: wc });
    const head2 = (await gitOk(['rev-parse', 'HEAD'], { cwd: wc })).trim();
    assert.equal((await rpc('pull', { repo: 'down/mirror' })).result, 'Pulled from down/mirror');
    assert.match(await gitOk(['ls-remote', mUrl]), new RegExp(`^${head2}\\trefs/heads/main$`, 'm'));

    // file:// (allowed here because the test server sets PALISADE_ALLOW_PRIVATE_URLS=1)
    const bare = path.join(tmpDir('palisade-up-'), 'upstream-bare.git');
    await gitOk(['clone', '-q', '--bare', wc, bare]);
    const fromFile = await ok('create_repo', { repo_name: 'down/from-file', owner_name: 'admin', clone_uri: `file://${bare}` });
    assert.match(await gitOk(['ls-remote', repoUrl(s.url, fromFile.id, 'x-access-token', s.adminKey)]), new RegExp(`^${head2}\\trefs/heads/main$`, 'm'));
    await err('pull', { repo_name: 'foo/public-one' }, /no remote location/);
    await err('create_repo', { repo_name: 'down/bad', owner_name: 'admin', clone_uri: 'ext::sh -c touch% /tmp/pwned' }, /scheme|Invalid URL/);
    await err('create_repo', { repo_name: 'down/missing', owner_name: 'admin', clone_uri: `file://${bare}-nope` }, /does not exist/);
    assert.equal(await ok('get_repo', { repo_name: 'down/missing' }), null, 'a failed clone leaves no repository behind');
  });
});
