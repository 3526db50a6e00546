// Ref rules on identity grants and protected branches, on every write path: git over HTTP and
// SSH (decided per ref before any ref moves; one refused ref refuses the whole push, with a
// message naming it, and nothing is written), REST commits and branch creation, and
// github-sync. Protected branches bind users and groups below repository admin.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { repoDir } from '../../src/git/repo-path.ts';
import { git, gitOk, makeWorkTree, repoUrl, tmpDir } from '../helpers/git.ts';
import { api, startServer, type TestServer } from '../helpers/server.ts';
import { SshClient } from '../helpers/ssh.ts';

let s: TestServer;
let ssh: SshClient;

async function rpc(method: string, args: object, key = s.adminKey): Promise<any> {
  const r = (await (await fetch(`${s.url}/_admin/api`, { method: 'POST', body: JSON.stringify({ id: 1, api_key: key, method, args }) })).json()) as { result: unknown; error: string | null };
  assert.equal(r.error, null, `${method}: ${r.error}`);
  return r.result;
}

before(async () => {
  s = await startServer({ PALISADE_SSH_PORT: '0', PALISADE_ALLOW_PRIVATE_URLS: '1' });
  ssh = new SshClient(s);
});
after(() => s.stop());

/** A repository with main (2 commits) pushed by the admin; returns its id and a work tree on main. */
async function seeded(name: string): Promise<{ repo: string; wc: string; dir: string }> {
  const repo = (await api(s, 'POST', '/git/v1/repo', { key: s.adminKey, body: { name } })).body.repoId;
  const wc = await makeWorkTree(2);
  await gitOk(['push', repoUrl(s.url, repo, 'admin', s.adminKey), 'main', 'main:refs/heads/agents/base'], { cwd: wc });
  return { repo, wc, dir: repoDir(s.dataDir, repo) };
}

/** An identity with a write grant carrying `refs`, and a token. */
async function agent(repo: string, refs?: object): Promise<{ id: string; token: string }> {
  const id = (await api(s, 'POST', '/identity/v1/identities', { key: s.adminKey })).body.id;
  const g = await api(s, 'POST', `/identity/v1/identities/${id}/permissions/git/${repo}`, { key: s.adminKey, body: { permission: 'write', ...(refs ? { refs } : {}) } });
  assert.equal(g.status, 200, JSON.stringify(g.body));
  return { id, token: (await api(s, 'POST', `/identity/v1/identities/${id}/tokens`, { key: s.adminKey })).body.token };
}

const refsOf = async (dir: string) => (await gitOk(['--git-dir', dir, 'for-each-ref', '--format=%(refname) %(objectname)'])).trim();
const has = async (dir: string, oid: string) => (await git(['--git-dir', dir, 'cat-file', '-e', oid])).code === 0;
const quarantines = (dir: string) => fs.readdirSync(path.join(dir, 'objects')).filter((n) => n.includes('incoming'));
const head = async (wc: string) => (await gitOk(['rev-parse', 'HEAD'], { cwd: wc })).trim();
async function commit(wc: string, msg: string): Promise<string> {
  fs.writeFileSync(path.join(wc, `${msg}.txt`), msg);
  await gitOk(['add', '.'], { cwd: wc });
  await gitOk(['commit', '-qm', msg], { cwd: wc });
  return head(wc);
}
/** A commit that does not descend from `ref`'s tip on the server: its parent plus a new commit. */
async function diverge(wc: string, dir: string, ref: string, msg: string): Promise<string> {
  const tip = (await gitOk(['--git-dir', dir, 'rev-parse', ref])).trim();
  await gitOk(['reset', '-q', '--hard', `${tip}~1`], { cwd: wc });
  return commit(wc, msg);
}

describe('ref rules on an identity grant', () => {
  test('git over HTTP: the allowed prefix pushes; another branch, a force push and a deletion are refused whole, naming the ref, writing nothing', async () => {
    const { repo, wc, dir } = await seeded('rules/http');
    const a = await agent(repo, { allow: ['refs/heads/agents/*'] });
    const url = repoUrl(s.url, repo, 'x-access-token', a.token);
    // allowed: create and fast-forward under agents/
    await gitOk(['push', url, 'main:refs/heads/agents/one'], { cwd: wc });
    const tip = await commit(wc, 'ahead');
    await gitOk(['push', url, 'HEAD:refs/heads/agents/one'], { cwd: wc });
    assert.match(await refsOf(dir), new RegExp(`refs/heads/agents/one ${tip}`));

    // another branch, alone or beside an allowed ref: the whole push is refused, nothing moves
    const before = await refsOf(dir);
    const fresh = await commit(wc, 'fresh');
    const mixed = await git(['push', url, 'HEAD:refs/heads/agents/one', 'HEAD:refs/heads/main'], { cwd: wc });
    assert.notEqual(mixed.code, 0);
    assert.match(mixed.stderr, /remote: palisade: push refused: refs\/heads\/main: not among the refs this grant allows/);
    assert.match(mixed.stderr, /! \[remote rejected\] HEAD -> main \(not among the refs this grant allows\)/);
    assert.match(mixed.stderr, /! \[remote rejected\] HEAD -> agents\/one \(push refused: another ref of it is not allowed\)/);
    assert.equal(await refsOf(dir), before, 'no ref moved');
    assert.equal(await has(dir, fresh), false, 'no object was written');

    // force push (known only once the pack is there): the hook refuses, git drops the quarantine
    const forced = await diverge(wc, dir, 'refs/heads/agents/one', 'forced');
    const f = await git(['push', '--force', url, 'HEAD:refs/heads/agents/one'], { cwd: wc });
    assert.notEqual(f.code, 0);
    assert.match(f.stderr, /remote: palisade: refs\/heads\/agents\/one: force push refused: this grant does not allow force pushes/);
    assert.equal(await refsOf(dir), before);
    assert.equal(await has(dir, forced), false, 'the forced commit was not kept');
    assert.deepEqual(quarantines(dir), []);

    // deletion
    const d = await git(['push', url, ':refs/heads/agents/one'], { cwd: wc });
    assert.notEqual(d.code, 0);
    assert.match(d.stderr, /refs\/heads\/agents\/one: this grant does not allow deleting refs/);
    assert.equal(await refsOf(dir), before);

    // with forcePush and deleteRefs both work; deny still wins
    await api(s, 'PUT', `/identity/v1/identities/${a.id}/permissions/git/${repo}`, { key: s.adminKey, body: { permission: 'write', refs: { allow: ['refs/heads/agents/*'], deny: ['refs/heads/agents/base'], forcePush: true, deleteRefs: true } } });
    await gitOk(['push', '--force', url, 'HEAD:refs/heads/agents/one'], { cwd: wc });
    await gitOk(['push', url, ':refs/heads/agents/one'], { cwd: wc });
    const denied = await git(['push', '--force', url, 'HEAD:refs/heads/agents/base'], { cwd: wc });
    assert.match(denied.stderr, /refs\/heads\/agents\/base: matches a pattern this grant denies \(refs\/heads\/agents\/base\)/);

    // each refusal is in the audit log with the facts that decided it
    const audit = (await api(s, 'GET', `/admin/v1/audit?actor=${a.id}`, { key: s.adminKey })).body.entries.filter((e: any) => e.action === 'ref.denied');
    assert.deepEqual(audit.map((e: any) => e.detail.ref).reverse(), ['refs/heads/main', 'refs/heads/agents/one', 'refs/heads/agents/one', 'refs/heads/agents/base']);
    assert.equal(audit.at(-1).target.name, 'rules/http');
    assert.ok(audit.every((e: any) => e.detail.facts.filter((x: any) => x.decisive).length === 1));
  });

  test('git over SSH: the same decisions, an ERROR line on stderr, nothing written', async () => {
    const { repo, wc, dir } = await seeded('rules/ssh');
    const a = await agent(repo, { allow: ['refs/heads/agents/*'] });
    const key = ssh.keygen(`agent-${a.id.slice(0, 8)}`);
    assert.equal((await api(s, 'POST', `/identity/v1/identities/${a.id}/ssh-keys`, { key: s.adminKey, body: { publicKey: key.pub } })).status, 200);
    const url = ssh.url('git', 'rules/ssh.git');
    const ok = await ssh.git(['push', url, 'main:refs/heads/agents/ssh'], { key: key.file }, { cwd: wc });
    assert.equal(ok.code, 0, ok.stderr);
    const before = await refsOf(dir);
    const fresh = await commit(wc, 'over-ssh');
    const r = await ssh.git(['push', url, 'HEAD:refs/heads/main'], { key: key.file }, { cwd: wc });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /ERROR: push refused: refs\/heads\/main: not among the refs this grant allows/);
    assert.match(r.stderr, /! \[remote rejected\] HEAD -> main/);
    assert.equal(await refsOf(dir), before);
    assert.equal(await has(dir, fresh), false);
    // force push over SSH, with the token as password this time
    await diverge(wc, dir, 'refs/heads/agents/ssh', 'ssh-forced');
    const f = await ssh.git(['push', '--force', ssh.url('x-access-token', 'rules/ssh.git'), 'HEAD:refs/heads/agents/ssh'], { password: a.token }, { cwd: wc });
    assert.notEqual(f.code, 0);
    assert.match(f.stderr, /force push refused/);
    assert.equal(await refsOf(dir), before);
  });

  test('REST commits and branch creation: decided per ref', async () => {
    const { repo } = await seeded('rules/rest');
    const a = await agent(repo, { allow: ['refs/heads/agents/*'] });
    const ok = await api(s, 'POST', `/git/v1/repo/${repo}/commits`, { key: a.token, body: { message: 'agent', branch: 'agents/rest', files: [{ path: 'a.txt', content: 'a' }] } });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    const main = await api(s, 'POST', `/git/v1/repo/${repo}/commits`, { key: a.token, body: { message: 'no', files: [{ path: 'b.txt', content: 'b' }] } });
    assert.deepEqual([main.status, main.body.code], [403, 'GIT_REPOSITORY_ACCESS_DENIED']);
    assert.equal(main.body.message, 'refs/heads/main: not among the refs this grant allows');
    const tip = (await api(s, 'GET', `/git/v1/repo/${repo}/git/refs/heads/main`, { key: s.adminKey })).body.sha;
    assert.equal((await api(s, 'POST', `/git/v1/repo/${repo}/git/refs/heads/agents/made`, { key: a.token, body: { sha: tip } })).status, 200);
    const other = await api(s, 'POST', `/git/v1/repo/${repo}/git/refs/heads/feature`, { key: a.token, body: { sha: tip } });
    assert.deepEqual([other.status, other.body.message], [403, 'refs/heads/feature: not among the refs this grant allows']);
    assert.equal((await api(s, 'GET', `/git/v1/repo/${repo}/git/refs/heads/feature`, { key: s.adminKey })).status, 404, 'not created');
  });

  test('github-sync: a sync on demand moves only what the caller may move; the background link is bound by protected branches', async () => {
    const wc = await makeWorkTree(1);
    const bare = path.join(tmpDir('palisade-remote-'), 'remote.git');
    await gitOk(['clone', '-q', '--bare', wc, bare]);
    const repo = (await api(s, 'POST', '/git/v1/repo', { key: s.adminKey, body: { name: 'rules/sync' } })).body.repoId;
    assert.equal((await api(s, 'POST', `/git/v1/repo/${repo}/github-sync`, { key: s.adminKey, body: { githubRepoName: `file://${bare}` } })).status, 200);
    const local = async () => (await api(s, 'GET', `/git/v1/repo/${repo}/git/refs/heads/main`, { key: s.adminKey })).body.sha;
    for (let i = 0; i < 100 && !(await local()); i++) await new Promise((r) => setTimeout(r, 100));
    const synced = await local();
    assert.ok(synced, 'the first sync pulled main');
    // the remote moves main; an agent limited to agents/* asks for a sync: refused, nothing moves
    await gitOk(['remote', 'add', 'origin', bare], { cwd: wc });
    await commit(wc, 'remote-side');
    await gitOk(['push', '-q', 'origin', 'main'], { cwd: wc });
    const a = await agent(repo, { allow: ['refs/heads/agents/*'] });
    const r = await api(s, 'POST', `/git/v1/repo/${repo}/github-sync/sync`, { key: a.token });
    assert.deepEqual([r.status, r.body.message], [403, 'refs/heads/main: not among the refs this grant allows']);
    assert.equal(await local(), synced);
    // the admin's sync pulls it
    assert.equal((await api(s, 'POST', `/git/v1/repo/${repo}/github-sync/sync`, { key: s.adminKey })).status, 200);
    const pulled = await local();
    assert.notEqual(pulled, synced);
    // main protected, then deleted on the remote: the link does not delete it here
    await api(s, 'PUT', `/git/v1/repo/${repo}/protected-branches`, { key: s.adminKey, body: { branches: ['main'] } });
    await gitOk(['--git-dir', bare, 'branch', '-q', 'keep', 'main']);
    await gitOk(['--git-dir', bare, 'symbolic-ref', 'HEAD', 'refs/heads/keep']);
    await gitOk(['--git-dir', bare, 'update-ref', '-d', 'refs/heads/main']);
    const bg = await api(s, 'POST', `/git/v1/repo/${repo}/github-sync/sync`, { key: a.token });
    assert.equal(bg.status, 403, 'the agent may not delete main either');
    // as the link itself (after a push here), protected branches bind it: main stays
    await api(s, 'POST', `/git/v1/repo/${repo}/commits`, { key: s.adminKey, body: { message: 'trigger', branch: 'other', files: [{ path: 't', content: 't' }] } });
    let status: any;
    for (let i = 0; i < 100; i++) {
      status = (await api(s, 'GET', `/git/v1/repo/${repo}/github-sync`, { key: s.adminKey })).body;
      if (/refs\/heads\/main/.test(String(status.lastError))) break;
      await new Promise((res) => setTimeout(res, 100));
    }
    assert.match(status.lastError, /^refused: refs\/heads\/main: protected branch: it cannot be deleted/);
    assert.equal(await local(), pulled, 'main is still here');
  });
});

describe('protected branches', () => {
  test('users and groups below repository admin: no force push, no deletion; fast-forwards, commits and admins pass', async () => {
    const { repo, wc, dir } = await seeded('protect/users');
    const writerKey = await s.createUser('pb-writer');
    const memberKey = await s.createUser('pb-member');
    const adminKey = await s.createUser('pb-repoadmin');
    await rpc('create_users_group', { group_name: 'pb-devs' });
    await rpc('add_user_to_users_group', { group_name: 'pb-devs', username: 'pb-member' });
    await rpc('grant_users_group_permission', { repo_name: 'protect/users', group_name: 'pb-devs', perm: 'repository.write' });
    await rpc('grant_user_permission', { repo_name: 'protect/users', username: 'pb-writer', perm: 'repository.write' });
    await rpc('grant_user_permission', { repo_name: 'protect/users', username: 'pb-repoadmin', perm: 'repository.admin' });
    // only admins set them; readers read them
    assert.equal((await api(s, 'PUT', `/git/v1/repo/${repo}/protected-branches`, { key: writerKey, body: { branches: ['main'] } })).status, 403);
    assert.deepEqual((await api(s, 'PUT', `/git/v1/repo/${repo}/protected-branches`, { key: s.adminKey, body: { branches: ['main', 'release/*'] } })).body, { branches: ['main', 'release/*'] });
    assert.deepEqual((await api(s, 'GET', `/git/v1/repo/${repo}/protected-branches`, { key: memberKey })).body, { branches: ['main', 'release/*'] });
    assert.equal((await api(s, 'PUT', `/git/v1/repo/${repo}/protected-branches`, { key: s.adminKey, body: { branches: ['refs/heads/x'] } })).status, 400);

    for (const [who, key] of [['pb-writer', writerKey], ['pb-member', memberKey]] as const) {
      const url = repoUrl(s.url, repo, who, key);
      await gitOk(['fetch', '-q', url, 'main'], { cwd: wc });
      await gitOk(['reset', '-q', '--hard', 'FETCH_HEAD'], { cwd: wc });
      await commit(wc, `${who}-ff`);
      await gitOk(['push', url, 'HEAD:main'], { cwd: wc }); // a fast-forward is fine
      const before = await refsOf(dir);
      await diverge(wc, dir, 'refs/heads/main', `${who}-forced`);
      const f = await git(['push', '--force', url, 'HEAD:main'], { cwd: wc });
      assert.notEqual(f.code, 0, who);
      assert.match(f.stderr, /refs\/heads\/main: force push refused: protected branch: no force push/, who);
      const d = await git(['push', url, ':main'], { cwd: wc });
      assert.match(d.stderr, /refs\/heads\/main: protected branch: it cannot be deleted/, who);
      assert.equal(await refsOf(dir), before, who);
      // a release branch: created freely, then protected too
      await gitOk(['push', url, `HEAD:refs/heads/release/${who}`], { cwd: wc });
      assert.match((await git(['push', url, `:refs/heads/release/${who}`], { cwd: wc })).stderr, /protected branch: it cannot be deleted/);
      // REST commits are fast-forwards
      assert.equal((await api(s, 'POST', `/git/v1/repo/${repo}/commits`, { key, body: { message: 'rest', files: [{ path: `${who}.md`, content: 'x' }] } })).status, 200);
    }
    // repository.admin, and the owner, are not bound
    await gitOk(['fetch', '-q', repoUrl(s.url, repo, 'admin', s.adminKey), 'main'], { cwd: wc });
    await diverge(wc, dir, 'refs/heads/main', 'repoadmin-forced');
    await gitOk(['push', '--force', repoUrl(s.url, repo, 'pb-repoadmin', adminKey), 'HEAD:main'], { cwd: wc });
    await gitOk(['push', repoUrl(s.url, repo, 'admin', s.adminKey), ':refs/heads/release/pb-writer'], { cwd: wc });
  });

  test('PALISADE_PROTECT_DEFAULT_BRANCH protects the default branch of new repositories', async () => {
    const other = await startServer({ PALISADE_PROTECT_DEFAULT_BRANCH: '1' });
    try {
      const repo = (await api(other, 'POST', '/git/v1/repo', { key: other.adminKey, body: { name: 'x/y', defaultBranch: 'trunk' } })).body.repoId;
      assert.deepEqual((await api(other, 'GET', `/git/v1/repo/${repo}/protected-branches`, { key: other.adminKey })).body, { branches: ['trunk'] });
    } finally {
      await other.stop();
    }
    const repo = (await api(s, 'POST', '/git/v1/repo', { key: s.adminKey, body: { name: 'x/unprotected' } })).body.repoId;
    assert.deepEqual((await api(s, 'GET', `/git/v1/repo/${repo}/protected-branches`, { key: s.adminKey })).body, { branches: [] }, 'off by default');
  });
});
