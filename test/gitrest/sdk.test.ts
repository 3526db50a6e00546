// The Freestyle Git REST API through the real SDK (raw HTTP where the SDK is broken or has no method).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Errors, Freestyle } from 'freestyle-sandboxes';
import { gitOk, makeWorkTree, repoUrl, tmpDir } from '../helpers/git.ts';
import { api, startServer, type TestServer } from '../helpers/server.ts';

let s: TestServer;
let fsdk: Freestyle;
before(async () => {
  s = await startServer({ PALISADE_ALLOW_PRIVATE_URLS: '1' });
  fsdk = new Freestyle({ baseUrl: s.url, apiKey: s.adminKey });
});
after(() => s.stop());

describe('Git REST API through the SDK', () => {
  test('a multi-file commit read back through contents, trees, blobs, commits and refs', async () => {
    const { repoId, repo } = await fsdk.git.repos.create({ name: 'rest/multi' });
    const png = crypto.randomBytes(3000);
    const { commit } = await repo.commits.create({
      message: 'first commit',
      files: [
        { path: 'README.md', content: '# hello\n' },
        { path: 'src/index.ts', content: 'export const x = 1;\n' },
        { path: 'src/deep/util.ts', content: 'export {};\n', encoding: 'utf8' },
        { path: 'assets/logo.png', content: png.toString('base64'), encoding: 'base64' },
      ],
      author: { name: 'Ada', email: 'ada@example.com' },
    });
    assert.match(commit.sha, /^[0-9a-f]{40}$/);
    assert.equal(commit.message, 'first commit\n');
    assert.equal(commit.author.name, 'Ada');
    assert.deepEqual(commit.parents, []);

    const file = await repo.contents.get({ path: 'src/index.ts' });
    assert.equal(file.type, 'file');
    assert.equal(Buffer.from((file as { content: string }).content, 'base64').toString(), 'export const x = 1;\n');
    const bin = await repo.contents.get({ path: 'assets/logo.png', rev: 'main' });
    assert.deepEqual(Buffer.from((bin as { content: string }).content, 'base64'), png);
    const root = await repo.contents.get({});
    assert.equal(root.type, 'dir');
    assert.deepEqual((root as { entries: { name: string; type: string }[] }).entries.map((e) => `${e.type}:${e.name}`).sort(), ['dir:assets', 'dir:src', 'file:README.md']);
    const srcDir = await repo.contents.get({ path: 'src' });
    assert.deepEqual((srcDir as { entries: { path: string }[] }).entries.map((e) => e.path).sort(), ['src/deep', 'src/index.ts']);

    const tree = await repo.trees.get({ sha: commit.tree.sha });
    assert.deepEqual(tree.tree.map((e) => `${e.type}:${e.path}`).sort(), ['blob:README.md', 'tree:assets', 'tree:src']);
    const readme = tree.tree.find((e) => e.path === 'README.md')!;
    assert.equal((readme as { size: number }).size, 8);
    const blob = await repo.blobs.get({ sha: readme.sha });
    assert.equal(blob.encoding, 'base64');
    assert.equal(Buffer.from(blob.content, 'base64').toString(), '# hello\n');

    const second = await repo.commits.create({ message: 'second', files: [{ path: 'README.md', deleted: true }, { path: 'NEW.md', content: 'new' }], expectedSha: commit.sha });
    assert.deepEqual(second.commit.parents, [{ sha: commit.sha }]);
    const got = await repo.commits.get({ sha: second.commit.sha });
    assert.equal(got.message, 'second\n');
    const list = await repo.commits.list({ limit: 10 });
    assert.deepEqual(list.commits.map((c) => c.sha), [second.commit.sha, commit.sha]);
    assert.equal(list.total, 2);
    const asc = await repo.commits.list({ order: 'asc', limit: 1 });
    assert.deepEqual(asc.commits.map((c) => c.sha), [commit.sha]);
    assert.equal(asc.next_commit, second.commit.sha);
    await assert.rejects(repo.contents.get({ path: 'README.md' }), Errors.PathNotFoundError);
    assert.equal(Buffer.from(((await repo.contents.get({ path: 'README.md', rev: commit.sha })) as { content: string }).content, 'base64').toString(), '# hello\n');

    // branches and default branch
    const branches = await repo.branches.list();
    assert.deepEqual(branches.branches, [{ name: 'main', commit: second.commit.sha }]);
    assert.deepEqual(await repo.branches.get({ branchName: 'main' }), { name: 'refs/heads/main', sha: second.commit.sha });
    await assert.rejects(repo.branches.get({ branchName: 'nope' }), Errors.BranchNotFoundError);
    assert.deepEqual(await repo.branches.getDefaultBranch(), { defaultBranch: 'main' });
    // SDK 0.1.46 sends the literal {*branch}: a clear 400
    const broken = await fetch(`${s.url}/git/v1/repo/${repoId}/git/refs/heads/{*branch}`, { method: 'POST', headers: { authorization: `Bearer ${s.adminKey}`, 'content-type': 'application/json' }, body: '{}' });
    assert.equal(broken.status, 400);
    assert.match(((await broken.json()) as { message: string }).message, /\{\*branch\}/);
    const created = await api(s, 'POST', `/git/v1/repo/${repoId}/git/refs/heads/feature/x`, { key: s.adminKey, body: { sha: commit.sha } });
    assert.deepEqual(created.body, { name: 'feature/x', sha: commit.sha });
    const again = await api(s, 'POST', `/git/v1/repo/${repoId}/git/refs/heads/feature/x`, { key: s.adminKey, body: {} });
    assert.equal(again.status, 409);
    assert.equal(again.body.code, 'BRANCH_ALREADY_EXISTS');
    assert.deepEqual(await repo.branches.get({ branchName: 'feature/x' }), { name: 'refs/heads/feature/x', sha: commit.sha });
    await repo.branches.setDefaultBranch({ defaultBranch: 'feature/x' });
    assert.equal((await repo.branches.getDefaultBranch()).defaultBranch, 'feature/x');
    assert.equal(Buffer.from(((await repo.contents.get({ path: 'README.md' })) as { content: string }).content, 'base64').toString(), '# hello\n');

    // compare
    const cmp = await repo.compare({ base: commit.sha, head: second.commit.sha });
    assert.equal(cmp.status, 'ahead');
    assert.equal(cmp.ahead_by, 1);
    assert.equal(cmp.behind_by, 0);
    const byName = Object.fromEntries(cmp.files.map((f) => [f.filename, f]));
    assert.equal(byName['README.md']!.status, 'removed');
    assert.equal(byName['README.md']!.deletions, 1);
    assert.equal(byName['NEW.md']!.status, 'added');
    assert.equal(byName['NEW.md']!.additions, 1);
    assert.equal((await repo.compare({ base: second.commit.sha, head: commit.sha })).status, 'behind');
    assert.equal((await repo.compare({ base: commit.sha, head: commit.sha })).status, 'identical');
  });

  test('commit errors: bad base64, a path with .., an empty message, both content and deleted; nothing written', async () => {
    const { repoId, repo } = await fsdk.git.repos.create({});
    const first = await repo.commits.create({ message: 'init', files: [{ path: 'a.txt', content: 'a' }] });
    const cases: [object, RegExp, string][] = [
      [{ message: 'm', files: [{ path: 'b.bin', content: '!!!not base64', encoding: 'base64' }] }, /base64/, 'INVALID_BASE64_CONTENT'],
      [{ message: 'm', files: [{ path: '../escape.txt', content: 'x' }] }, /Invalid file path/, 'INVALID_FILE_PATH'],
      [{ message: 'm', files: [{ path: 'a/../../x', content: 'x' }] }, /Invalid file path/, 'INVALID_FILE_PATH'],
      [{ message: 'm', files: [{ path: '.git/config', content: 'x' }] }, /Invalid file path/, 'INVALID_FILE_PATH'],
      [{ message: '', files: [{ path: 'c.txt', content: 'x' }] }, /message/, 'BAD_REQUEST'],
      [{ message: 'm', files: [{ path: 'c.txt', content: 'x', deleted: true }] }, /either content or deleted/, 'INVALID_FILE_CHANGE'],
      [{ message: 'm', files: [] }, /files/, 'BAD_REQUEST'],
      [{ message: 'm', files: [{ path: 'missing.txt', deleted: true }] }, /Path not found/, 'PATH_NOT_FOUND'],
    ];
    for (const [body, pattern, code] of cases) {
      const r = await api(s, 'POST', `/git/v1/repo/${repoId}/commits`, { key: s.adminKey, body });
      assert.ok(r.status === 400 || r.status === 404, `${JSON.stringify(body)}: ${r.status}`);
      assert.match(r.body.message, pattern);
      assert.equal(r.body.code, code);
    }
    const list = await repo.commits.list({});
    assert.deepEqual(list.commits.map((c) => c.sha), [first.commit.sha], 'no commit was written');
  });

  test('expectedSha is a compare-and-swap; concurrent writers without it never lose a commit', async () => {
    const { repo } = await fsdk.git.repos.create({});
    const base = (await repo.commits.create({ message: 'base', files: [{ path: 'f.txt', content: '0' }] })).commit.sha;
    await repo.commits.create({ message: 'moves main', files: [{ path: 'f.txt', content: '1' }], expectedSha: base });
    await assert.rejects(repo.commits.create({ message: 'stale', files: [{ path: 'f.txt', content: '2' }], expectedSha: base }), Errors.ConflictingParentError);
    const results = await Promise.all(Array.from({ length: 12 }, (_, i) => repo.commits.create({ message: `w${i}`, files: [{ path: `w/${i}.txt`, content: String(i) }] })));
    const list = await repo.commits.list({ limit: 100 });
    assert.equal(list.total, 14);
    for (const r of results) assert.ok(list.commits.some((c) => c.sha === r.commit.sha));
    const dir = (await repo.contents.get({ path: 'w' })) as { entries: unknown[] };
    assert.equal(dir.entries.length, 12);
  });

  test('tags: list, by name, by hash (pushed with git)', async () => {
    const { repoId, repo } = await fsdk.git.repos.create({});
    const wc = await makeWorkTree(2);
    await gitOk(['tag', 'light'], { cwd: wc });
    await gitOk(['tag', '-a', 'v1', '-m', 'release one'], { cwd: wc });
    await gitOk(['push', repoUrl(s.url, repoId, 'x-access-token', s.adminKey), 'main', '--tags'], { cwd: wc });
    const head = (await gitOk(['rev-parse', 'HEAD'], { cwd: wc })).trim();
    const tagOid = (await gitOk(['rev-parse', 'v1'], { cwd: wc })).trim();
    const tags = await repo.tags.list();
    assert.deepEqual(tags.tags.map((t) => t.name), ['light', 'v1']);
    const v1 = await repo.tags.get({ tagName: 'v1' });
    assert.equal(v1.sha, tagOid);
    assert.equal(v1.target.sha, head);
    assert.equal(v1.message, 'release one\n');
    assert.equal(v1.tagger?.name, 'Test Committer');
    assert.deepEqual(await repo.tags.getByHash({ sha: tagOid }), v1);
    const light = await repo.tags.get({ tagName: 'light' });
    assert.equal(light.target.sha, head);
    await assert.rejects(repo.tags.get({ tagName: 'nope' }), Errors.TagNotFoundError);
  });

  test('tarball and zip downloads unpack to the committed files', async () => {
    const { repo } = await fsdk.git.repos.create({});
    const files = { 'a.txt': 'alpha\n', 'dir/b.txt': 'beta\n', 'dir/sub/c.bin': crypto.randomBytes(5000).toString('base64') };
    await repo.commits.create({ message: 'files', files: Object.entries(files).map(([p, c]) => ({ path: p, content: c })) });
    const tgz = Buffer.from(await repo.contents.downloadTarball({}));
    const out = tmpDir('palisade-tar-');
    fs.writeFileSync(path.join(out, 'x.tar.gz'), tgz);
    fs.mkdirSync(path.join(out, 'x'));
    execFileSync('tar', ['-xzf', path.join(out, 'x.tar.gz'), '-C', path.join(out, 'x')]);
    for (const [p, c] of Object.entries(files)) assert.equal(fs.readFileSync(path.join(out, 'x', p), 'utf8'), c);
    const zip = Buffer.from(await repo.contents.downloadZip({ rev: 'main' }));
    assert.equal(zip.subarray(0, 2).toString(), 'PK');
  });

  test('visibility get/set is the same fact as the RPC private flag', async () => {
    const { repoId } = await fsdk.git.repos.create({ name: 'rest/vis' });
    assert.deepEqual((await api(s, 'GET', `/git/v1/repo/${repoId}/visibility`, { key: s.adminKey })).body, { visibility: 'private' });
    assert.equal((await api(s, 'PUT', `/git/v1/repo/${repoId}/visibility`, { key: s.adminKey, body: { visibility: 'public' } })).status, 200);
    const rpc = await fetch(`${s.url}/_admin/api`, { method: 'POST', body: JSON.stringify({ id: 1, api_key: s.adminKey, method: 'get_repo', args: { repo_name: 'rest/vis' } }) });
    assert.equal(((await rpc.json()) as { result: { private: boolean } }).result.private, false);
    assert.equal((await api(s, 'PUT', `/git/v1/repo/${repoId}/visibility`, { key: s.adminKey, body: { visibility: 'secret' } })).status, 400);
  });
});
