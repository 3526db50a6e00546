// file:// authorization bypass. The attack: on a server with PALISADE_ALLOW_PRIVATE_URLS=1, any
// active user named another account's private repository by its folder
// (file://DATA/repos/xx/<id>.git) as a clone_uri or source, and Palisade cloned it for them: the
// decision point was never asked. Now only a server admin may name a server path (migrations),
// never one inside the data folder (symlinks resolved first); everyone else gets a 400 for
// file:// whatever the switch, and a repository of this server named by its HTTP URL is read as
// the caller, through the decision point.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { gitOk, makeWorkTree, repoUrl, tmpDir } from '../helpers/git.ts';
import { api, startServer, type TestServer } from '../helpers/server.ts';

const rpc = async (s: TestServer, key: string, method: string, args: object) => {
  const r = await fetch(`${s.url}/_admin/api`, { method: 'POST', body: JSON.stringify({ id: 1, api_key: key, method, args }) });
  return (await r.json()) as { result: any; error: string | null };
};
const folderOf = (s: TestServer, id: string) => path.join(s.dataDir, 'repos', id.slice(0, 2), `${id}.git`);

describe('file:// and self URLs are decided as the caller', () => {
  let s: TestServer;
  let userKey: string;
  let secretId: string;
  let secretHead: string;
  before(async () => {
    s = await startServer({ PALISADE_ALLOW_PRIVATE_URLS: '1' });
    userKey = await s.createUser('mallory');
    secretId = (await api(s, 'POST', '/git/v1/repo', { key: s.adminKey, body: { name: 'admin/secret', import: { type: 'files', files: { 'SECRET.txt': 'the crown jewels' }, commitMessage: 'secret' } } })).body.repoId;
    secretHead = (await api(s, 'GET', `/git/v1/repo/${secretId}/git/refs/heads/main`, { key: s.adminKey })).body.sha;
  });
  after(() => s.stop());

  /** No repository of mallory's holds the secret commit. */
  const nothingLeaked = async () => {
    const mine = await api(s, 'GET', '/git/v1/repo?limit=1000', { key: userKey });
    for (const r of mine.body.repositories as { id: string }[]) {
      const log = await api(s, 'GET', `/git/v1/repo/${r.id}/git/commits`, { key: userKey });
      assert.ok(!JSON.stringify(log.body).includes(secretHead), `repository ${r.id} holds the secret commit`);
    }
  };

  test('a user naming another account\'s repository folder by file:// gets a 400 on every surface', async () => {
    const url = `file://${folderOf(s, secretId)}`;
    const viaRpc = await rpc(s, userKey, 'create_repo', { repo_name: 'mallory/loot', clone_uri: url });
    assert.match(viaRpc.error ?? '', /file:\/\/ URLs are not allowed/);
    for (const body of [{ source: { url } }, { import: { type: 'git', url, commitMessage: 'x' } }, { import: { type: 'tar', url: 'file:///etc/passwd', commitMessage: 'x' } }]) {
      const r = await api(s, 'POST', '/git/v1/repo', { key: userKey, body });
      assert.equal(r.status, 400, JSON.stringify(r.body));
      assert.match(r.body.message, /file:\/\/ URLs are not allowed/);
      assert.ok(!r.body.message.includes(s.dataDir), 'the answer shows no server path');
    }
    const own = (await api(s, 'POST', '/git/v1/repo', { key: userKey, body: {} })).body.repoId;
    const sync = await api(s, 'POST', `/git/v1/repo/${own}/github-sync`, { key: userKey, body: { githubRepoName: url } });
    assert.equal(sync.status, 400);
    await nothingLeaked();
  });

  test('even an admin may not name a path inside the data folder, directly or through a symlink', async () => {
    const link = path.join(tmpDir('palisade-link-'), 'innocent.git');
    fs.symlinkSync(folderOf(s, secretId), link);
    for (const url of [`file://${folderOf(s, secretId)}`, `file://${s.dataDir}`, `file://${link}`, `file://${s.dataDir}/../${path.basename(s.dataDir)}/repos`]) {
      const r = await rpc(s, s.adminKey, 'create_repo', { repo_name: `admin/copy-${Math.random().toString(36).slice(2)}`, clone_uri: url });
      assert.match(r.error ?? '', /inside the data folder/, url);
    }
  });

  test('an admin migrating from a folder outside the data folder still can; a non-admin cannot pull it', async () => {
    const wc = await makeWorkTree(2);
    const bare = path.join(tmpDir('palisade-migrate-'), 'old.git');
    await gitOk(['clone', '-q', '--bare', wc, bare]);
    const created = await rpc(s, s.adminKey, 'create_repo', { repo_name: 'migrated/old', owner_name: 'admin', clone_uri: `file://${bare}` });
    assert.equal(created.error, null);
    // mallory administers the repository, but is no server admin: the stored file:// URL is not hers to fetch
    await rpc(s, s.adminKey, 'grant_user_permission', { repo_name: 'migrated/old', username: 'mallory', perm: 'repository.admin' });
    const pull = await rpc(s, userKey, 'pull', { repo_name: 'migrated/old' });
    assert.match(pull.error ?? '', /file:\/\/ URLs are not allowed/);
    assert.equal((await rpc(s, s.adminKey, 'pull', { repo_name: 'migrated/old' })).error, null);
  });

  test('a repository of this server named by its HTTP URL is read as the caller', async () => {
    // no credentials in the URL, and with someone else's: either way the caller's rights decide
    for (const url of [`${s.url}/${secretId}.git`, `${s.url}/admin/secret`, repoUrl(s.url, secretId, 'x-access-token', s.adminKey)]) {
      const r = await api(s, 'POST', '/git/v1/repo', { key: userKey, body: { source: { url } } });
      assert.equal(r.status, 400, url);
      assert.match(r.body.message, /Repository not found on this server/);
    }
    const missing = await api(s, 'POST', '/git/v1/repo', { key: userKey, body: { source: { url: `${s.url}/admin/nothing-here` } } });
    assert.equal(missing.body.message.replace(/nothing-here/, 'secret'), `Repository not found on this server: ${s.url}/admin/secret`, 'missing and hidden look the same');
    await nothingLeaked();
    // once granted read, the same URL works
    await rpc(s, s.adminKey, 'grant_user_permission', { repo_name: 'admin/secret', username: 'mallory', perm: 'repository.read' });
    const ok = await api(s, 'POST', '/git/v1/repo', { key: userKey, body: { name: 'mallory/fork', source: { url: `${s.url}/admin/secret` } } });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    const head = await api(s, 'GET', `/git/v1/repo/${ok.body.repoId}/git/refs/heads/main`, { key: userKey });
    assert.equal(head.body.sha, secretHead);
  });
});

describe('self URLs on a server with the default switch', () => {
  let s: TestServer;
  before(async () => {
    s = await startServer();
  });
  after(() => s.stop());

  test('loopback stays refused, but a readable repository of this server can be a source', async () => {
    const up = (await api(s, 'POST', '/git/v1/repo', { key: s.adminKey, body: { name: 'up/one', import: { type: 'files', files: { 'a.txt': 'a' }, commitMessage: 'a' } } })).body.repoId;
    const r = await api(s, 'POST', '/git/v1/repo', { key: s.adminKey, body: { source: { url: `${s.url}/up/one.git` } } });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const same = async (id: string) => (await api(s, 'GET', `/git/v1/repo/${id}/git/refs/heads/main`, { key: s.adminKey })).body.sha;
    assert.equal(await same(r.body.repoId), await same(up));
    const file = await api(s, 'POST', '/git/v1/repo', { key: s.adminKey, body: { source: { url: `file://${tmpDir()}` } } });
    assert.equal(file.status, 400, 'file:// needs the switch, even for an admin');
    const other = await api(s, 'POST', '/git/v1/repo', { key: s.adminKey, body: { source: { url: `http://127.0.0.1:${s.port + 1}/x.git` } } });
    assert.equal(other.status, 400);
  });
});
