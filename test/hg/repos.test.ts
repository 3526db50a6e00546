// Mercurial repositories as a kind: created through JSON-RPC (the seed's default repo_type), shown
// with their type everywhere a repository is shown, stored as hg's own files, and refused with a
// clear 400 by the Git REST API's git-only endpoints (after the access decision: a hidden one
// still looks missing).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { api, startServer, type TestServer } from '../helpers/server.ts';

let s: TestServer;
const rpc = async (method: string, args: object, key = s.adminKey) =>
  (await (await fetch(`${s.url}/_admin/api`, { method: 'POST', body: JSON.stringify({ id: 1, api_key: key, method, args }) })).json()) as { result: any; error: string | null };

before(async () => {
  // '' : the server's own default, the seed's hg (the test helper otherwise sets git)
  s = await startServer({ PALISADE_DEFAULT_REPO_TYPE: '' });
});
after(() => s.stop());

describe('Mercurial repositories', () => {
  test('create_repo without repo_type makes an hg repository; with git, a git one', async () => {
    const hg = await rpc('create_repo', { repo_name: 'legacy/tools', owner_name: 'admin', private: true });
    assert.equal(hg.error, null);
    const got = await rpc('get_repo', { repo_name: 'legacy/tools' });
    assert.equal(got.result.type, 'hg');
    const git = await rpc('create_repo', { repo_name: 'legacy/web', owner_name: 'admin', repo_type: 'git' });
    assert.equal(git.error, null);
    const all = (await rpc('get_repos', {})).result as { repo_name: string; type: string }[];
    assert.deepEqual(all.map((r) => [r.repo_name, r.type]).sort(), [['legacy/tools', 'hg'], ['legacy/web', 'git']]);
    // hg itself reads the repository: an empty one, with the installed hg's own requirements
    const dir = path.join(s.dataDir, 'repos', hg.result.id.slice(0, 2), `${hg.result.id}.hg`);
    assert.equal(execFileSync('hg', ['-R', dir, 'log'], { encoding: 'utf8', env: { ...process.env, HGRCPATH: '' } }), '');
    assert.match(execFileSync('hg', ['-R', dir, 'verify'], { encoding: 'utf8', env: { ...process.env, HGRCPATH: '' } }), /checked 0 changesets/);
  });

  test('the Git REST API shows the type and refuses git-only operations with UNSUPPORTED_REPOSITORY_TYPE', async () => {
    const { result } = await rpc('get_repo', { repo_name: 'legacy/tools' });
    const info = await api(s, 'GET', `/git/v1/repo/${result.id}`, { key: s.adminKey });
    assert.equal(info.status, 200);
    assert.equal(info.body.type, 'hg');
    for (const p of ['/contents/', '/git/refs/heads/', '/git/commits', '/tarball', '/search?query=x']) {
      const r = await api(s, 'GET', `/git/v1/repo/${result.id}${p}`, { key: s.adminKey });
      assert.equal(r.status, 400, p);
      assert.equal(r.body.code, 'UNSUPPORTED_REPOSITORY_TYPE', p);
    }
    const commit = await api(s, 'POST', `/git/v1/repo/${result.id}/commits`, { key: s.adminKey, body: { message: 'm', files: [{ path: 'a', content: 'b' }] } });
    assert.equal(commit.body.code, 'UNSUPPORTED_REPOSITORY_TYPE');
    // a stranger learns nothing, not even the type
    const stranger = (await rpc('create_user', { username: 'stranger', password: 'pw', email: 's@example.com' })).result.api_key as string;
    const hidden = await api(s, 'GET', `/git/v1/repo/${result.id}/contents/`, { key: stranger });
    assert.equal(hidden.status, 404);
    assert.equal(hidden.body.code, 'REPO_NOT_FOUND');
    // deleting an hg repository removes its folder
    assert.equal((await api(s, 'DELETE', `/git/v1/repo/${result.id}`, { key: s.adminKey })).status, 200);
  });
});
