// github-sync with a generic remote (a bare repository over file://): link, pull, push after our
// commits, on-demand sync, and a conflict reported as GIT_HUB_SYNC_CONFLICT with nothing forced.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Freestyle } from 'freestyle-sandboxes';
import { gitOk, makeWorkTree, repoUrl, tmpDir } from '../helpers/git.ts';
import { api, startServer, type TestServer } from '../helpers/server.ts';

let s: TestServer;
let fsdk: Freestyle;
before(async () => {
  s = await startServer({ PALISADE_ALLOW_PRIVATE_URLS: '1' });
  fsdk = new Freestyle({ baseUrl: s.url, apiKey: s.adminKey });
});
after(() => s.stop());

const tipOf = async (bare: string, b = 'main') => (await gitOk(['--git-dir', bare, 'rev-parse', `refs/heads/${b}`])).trim();
async function until(f: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await f())) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('github-sync with any git remote', () => {
  test('link, pull, push after our commits, pull on demand, conflicts never forced', async () => {
    const wc = await makeWorkTree(1);
    const bare = path.join(tmpDir('palisade-remote-'), 'remote.git');
    await gitOk(['clone', '-q', '--bare', wc, bare]);
    await gitOk(['remote', 'add', 'origin', bare], { cwd: wc });
    const { repoId, repo } = await fsdk.git.repos.create({ name: 'synced/one' });
    assert.equal(await repo.githubSync.get(), null, 'no link yet: the SDK maps the 404 to null');
    await repo.githubSync.enable({ githubRepoName: `file://${bare}` });
    const linked = await repo.githubSync.get();
    assert.equal(linked?.githubRepoName, `file://${bare}`);

    // the initial sync pulls the remote's main
    await until(async () => (await repo.branches.list()).branches.some((b) => b.name === 'main'));
    assert.equal((await repo.branches.get({ branchName: 'main' })).sha, await tipOf(bare));

    // our commit is pushed to the remote
    const { commit } = await repo.commits.create({ message: 'ours', files: [{ path: 'ours.txt', content: 'x' }] });
    await until(async () => (await tipOf(bare)) === commit.sha);

    // their commit arrives on demand
    await gitOk(['pull', '-q', 'origin', 'main'], { cwd: wc });
    fs.writeFileSync(path.join(wc, 'theirs.txt'), 'y');
    await gitOk(['add', '.'], { cwd: wc });
    await gitOk(['commit', '-qm', 'theirs'], { cwd: wc });
    await gitOk(['push', '-q', 'origin', 'main'], { cwd: wc });
    const theirs = await tipOf(bare);
    const r = await api(s, 'POST', `/git/v1/repo/${repoId}/github-sync/sync`, { key: s.adminKey });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual(r.body.pulled, ['main']);
    assert.equal((await repo.branches.get({ branchName: 'main' })).sha, theirs);

    // both sides move: a conflict, and neither side is forced
    fs.writeFileSync(path.join(wc, 'theirs2.txt'), 'z');
    await gitOk(['add', '.'], { cwd: wc });
    await gitOk(['commit', '-qm', 'theirs again'], { cwd: wc });
    await gitOk(['push', '-q', 'origin', 'main'], { cwd: wc });
    const theirs2 = await tipOf(bare);
    await api(s, 'DELETE', `/git/v1/repo/${repoId}/github-sync`, { key: s.adminKey }); // no background push for our next commit
    const ours2 = (await repo.commits.create({ message: 'ours again', files: [{ path: 'ours2.txt', content: 'w' }], expectedSha: theirs })).commit.sha;
    await repo.githubSync.enable({ githubRepoName: `file://${bare}` });
    const c = await api(s, 'POST', `/git/v1/repo/${repoId}/github-sync/sync`, { key: s.adminKey });
    assert.equal(c.status, 409);
    assert.equal(c.body.code, 'GIT_HUB_SYNC_CONFLICT');
    assert.equal(await tipOf(bare), theirs2, 'the remote was not forced');
    assert.equal((await repo.branches.get({ branchName: 'main' })).sha, ours2, 'ours was not forced');
    assert.match((await repo.githubSync.get())?.githubRepoName ?? '', /remote\.git$/);

    await repo.githubSync.disable();
    assert.equal(await repo.githubSync.get(), null);
    const bad = await api(s, 'POST', `/git/v1/repo/${repoId}/github-sync`, { key: s.adminKey, body: { githubRepoName: 'ext::sh -c id' } });
    assert.equal(bad.status, 400);
  });

  test('deletions travel both ways; a branch deleted here does not come back from the remote', async () => {
    const wc = await makeWorkTree(1);
    await gitOk(['branch', 'feature-a'], { cwd: wc });
    await gitOk(['branch', 'feature-b'], { cwd: wc });
    const bare = path.join(tmpDir('palisade-remote-'), 'remote.git');
    await gitOk(['clone', '-q', '--bare', wc, bare]);
    const { repoId, repo } = await fsdk.git.repos.create({ name: 'synced/deletions' });
    await repo.githubSync.enable({ githubRepoName: `file://${bare}` });
    await until(async () => (await repo.branches.list()).branches.length === 3);
    const names = async () => (await repo.branches.list()).branches.map((b) => b.name).sort();
    const remoteNames = async () => (await gitOk(['--git-dir', bare, 'for-each-ref', '--format=%(refname:short)', 'refs/heads'])).trim().split('\n').sort();

    // deleted here (git push :feature-a): the remote loses it too, and it does not come back
    await gitOk(['push', '-q', repoUrl(s.url, repoId, 'x-access-token', s.adminKey), ':feature-a'], { cwd: wc });
    await until(async () => !(await remoteNames()).includes('feature-a'));
    const r1 = await api(s, 'POST', `/git/v1/repo/${repoId}/github-sync/sync`, { key: s.adminKey });
    assert.equal(r1.status, 200, JSON.stringify(r1.body));
    assert.deepEqual(await names(), ['feature-b', 'main']);

    // deleted on the remote: deleted here at the next sync
    await gitOk(['--git-dir', bare, 'branch', '-D', 'feature-b']);
    const r2 = await api(s, 'POST', `/git/v1/repo/${repoId}/github-sync/sync`, { key: s.adminKey });
    assert.equal(r2.status, 200, JSON.stringify(r2.body));
    assert.deepEqual(await names(), ['main']);
    assert.deepEqual(await remoteNames(), ['main']);

    // a branch that is new on the remote is still pulled, not mistaken for a deletion here
    await gitOk(['--git-dir', bare, 'branch', 'fresh', 'main']);
    await api(s, 'POST', `/git/v1/repo/${repoId}/github-sync/sync`, { key: s.adminKey });
    assert.deepEqual(await names(), ['fresh', 'main']);
  });
});
