// Replace refs must not change what ls-refs and the v0 advertisement say: upload-pack ignores
// them, the long-lived cat-file readers would not. A user who pushes `refs/replace/<tag>` to
// their own repository must get git's answer there, and must not make another repository
// holding the same tag object lose its peeled lines (the node-wide cache of ids known not to
// be tags, src/git/ls-refs.ts).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { repoDir } from '../../src/git/repo-path.ts';
import { gitOk, makeWorkTree, repoUrl } from '../helpers/git.ts';
import { api, startServer, type TestServer } from '../helpers/server.ts';

let s: TestServer;
before(async () => {
  s = await startServer();
});
after(() => s.stop());

test('a replaced tag in one repository: both repositories answer as git does, with protocol v2 and v0', async () => {
  const a = (await api(s, 'POST', '/git/v1/repo', { key: s.adminKey, body: { name: 'replace/a' } })).body.repoId as string;
  const b = (await api(s, 'POST', '/git/v1/repo', { key: s.adminKey, body: { name: 'replace/b' } })).body.repoId as string;
  const wc = await makeWorkTree(2);
  await gitOk(['tag', '-a', '-m', 'release', 'v1'], { cwd: wc });
  const tag = (await gitOk(['rev-parse', 'v1'], { cwd: wc })).trim();
  const other = (await gitOk(['rev-parse', 'HEAD~1'], { cwd: wc })).trim();
  for (const id of [a, b]) await gitOk(['push', '-q', repoUrl(s.url, id, 'x-access-token', s.adminKey), 'main', 'v1'], { cwd: wc });
  // in a only: the tag object replaced by a commit (cat-file would now call it a commit)
  await gitOk(['push', '-q', repoUrl(s.url, a, 'x-access-token', s.adminKey), `${other}:refs/replace/${tag}`], { cwd: wc });

  for (const proto of ['2', '0']) {
    for (const id of [a, b, a, b]) {
      const served = await gitOk(['-c', `protocol.version=${proto}`, 'ls-remote', repoUrl(s.url, id, 'x-access-token', s.adminKey)]);
      const direct = await gitOk(['-c', `protocol.version=${proto}`, 'ls-remote', repoDir(s.dataDir, id)]);
      assert.equal(served, direct, `protocol ${proto}, repository ${id === a ? 'a' : 'b'}`);
      assert.match(served, /refs\/tags\/v1\^\{\}/, 'the tag is peeled');
    }
  }
});
