// Creating repositories with content: `source` (a template repository from file:// and from
// this Palisade over http) and `import` (files, tar, zip, git tree without history).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Errors, Freestyle } from 'freestyle-sandboxes';
import { gitOk, makeWorkTree, repoUrl, tmpDir } from '../helpers/git.ts';
import { api, startServer, type TestServer } from '../helpers/server.ts';

let s: TestServer;
let fsdk: Freestyle;
let template: string;
let templateHead: string;
before(async () => {
  s = await startServer({ PALISADE_ALLOW_PRIVATE_URLS: '1' });
  fsdk = new Freestyle({ baseUrl: s.url, apiKey: s.adminKey });
  const wc = await makeWorkTree(3);
  fs.mkdirSync(path.join(wc, 'web'));
  fs.writeFileSync(path.join(wc, 'web', 'index.html'), '<h1>hi</h1>\n');
  await gitOk(['add', '.'], { cwd: wc });
  await gitOk(['commit', '-qm', 'web'], { cwd: wc });
  await gitOk(['branch', 'dev'], { cwd: wc });
  await gitOk(['tag', 'v1'], { cwd: wc });
  template = path.join(tmpDir('palisade-template-'), 'template.git');
  await gitOk(['clone', '-q', '--bare', wc, template]);
  templateHead = (await gitOk(['rev-parse', 'HEAD'], { cwd: wc })).trim();
});
after(() => s.stop());

describe('repositories from a source or an import', () => {
  test('source: a template repository from file://, with history', async () => {
    const { repo } = await fsdk.git.repos.create({ name: 'from/template', source: { url: `file://${template}` } });
    const list = await repo.commits.list({});
    assert.equal(list.total, 4);
    assert.equal(list.commits[0]!.sha, templateHead);
    const f = await repo.contents.get({ path: 'web/index.html' });
    assert.equal(Buffer.from((f as { content: string }).content, 'base64').toString(), '<h1>hi</h1>\n');
    assert.deepEqual((await repo.branches.list()).branches.map((b) => b.name), ['main']);
  });

  test('source: allBranches, rev as the default branch, depth', async () => {
    const all = await fsdk.git.repos.create({ source: { url: `file://${template}`, allBranches: true } });
    assert.deepEqual((await all.repo.branches.list()).branches.map((b) => b.name), ['dev', 'main']);
    const dev = await fsdk.git.repos.create({ source: { url: `file://${template}`, rev: 'dev' } });
    assert.equal((await dev.repo.branches.getDefaultBranch()).defaultBranch, 'dev');
    const shallow = await fsdk.git.repos.create({ source: { url: `file://${template}`, depth: 1 } });
    assert.equal((await shallow.repo.commits.list({})).commits.length, 1);
  });

  test('source: another repository of this Palisade over http, and errors', async () => {
    const { repoId: upId } = await fsdk.git.repos.create({ name: 'up/http', source: { url: `file://${template}` } });
    const url = repoUrl(s.url, upId, 'x-access-token', s.adminKey);
    const { repo } = await fsdk.git.repos.create({ source: { url } });
    assert.equal((await repo.commits.list({})).commits[0]!.sha, templateHead);
    const missing = await api(s, 'POST', '/git/v1/repo', { key: s.adminKey, body: { name: 'src/missing', source: { url: `file://${template}-nope` } } });
    assert.equal(missing.status, 400);
    assert.equal(missing.body.code, 'SOURCE_NOT_FOUND');
    assert.equal((await api(s, 'GET', `/git/v1/repo/${encodeURIComponent('src/missing')}`, { key: s.adminKey })).status, 404, 'nothing left behind');
    const both = await api(s, 'POST', '/git/v1/repo', { key: s.adminKey, body: { source: { url: `file://${template}` }, import: { type: 'files', files: {}, commitMessage: 'x' } } });
    assert.equal(both.body.code, 'SOURCE_IMPORT_CONFLICT');
    const ext = await api(s, 'POST', '/git/v1/repo', { key: s.adminKey, body: { source: { url: 'ext::sh -c id' } } });
    assert.equal(ext.status, 400);
  });

  test('import: files, with the commit message and author', async () => {
    const { repo } = await fsdk.git.repos.create({ import: { type: 'files', files: { 'index.js': 'console.log(1)\n', 'lib/a.js': 'a' }, commitMessage: 'initial import', authorName: 'Imp', authorEmail: 'imp@example.com' } });
    const list = await repo.commits.list({});
    assert.equal(list.total, 1);
    assert.equal(list.commits[0]!.message, 'initial import\n');
    assert.equal(list.commits[0]!.author.name, 'Imp');
    const f = await repo.contents.get({ path: 'lib/a.js' });
    assert.equal(Buffer.from((f as { content: string }).content, 'base64').toString(), 'a');
  });

  test('import: tar and zip archives (with dir), and git without history', async () => {
    const src = tmpDir('palisade-archive-');
    fs.mkdirSync(path.join(src, 'pkg', 'sub'), { recursive: true });
    fs.writeFileSync(path.join(src, 'pkg', 'a.txt'), 'A');
    fs.writeFileSync(path.join(src, 'pkg', 'sub', 'b.txt'), 'B');
    execFileSync('tar', ['-cf', path.join(src, 'x.tar'), '-C', src, 'pkg']);
    execFileSync('zip', ['-qr', path.join(src, 'x.zip'), 'pkg'], { cwd: src });
    const tar = await fsdk.git.repos.create({ import: { type: 'tar', url: `file://${path.join(src, 'x.tar')}`, dir: 'pkg', commitMessage: 'from tar' } });
    const tarRoot = (await tar.repo.contents.get({})) as { entries: { path: string }[] };
    assert.deepEqual(tarRoot.entries.map((e) => e.path).sort(), ['a.txt', 'sub']);
    const zip = await fsdk.git.repos.create({ import: { type: 'zip', url: `file://${path.join(src, 'x.zip')}`, commitMessage: 'from zip' } });
    const b = await zip.repo.contents.get({ path: 'pkg/sub/b.txt' });
    assert.equal(Buffer.from((b as { content: string }).content, 'base64').toString(), 'B');
    // a symlink in a zip is kept as a git symlink (its target as text), never followed
    fs.symlinkSync('/etc', path.join(src, 'pkg', 'escape'));
    execFileSync('zip', ['-qry', path.join(src, 'links.zip'), 'pkg'], { cwd: src });
    const links = await api(s, 'POST', '/git/v1/repo', { key: s.adminKey, body: { import: { type: 'zip', url: `file://${path.join(src, 'links.zip')}`, commitMessage: 'x' } } });
    assert.equal(links.status, 200);
    const linksDir = path.join(s.dataDir, 'repos', links.body.repoId.slice(0, 2), `${links.body.repoId}.git`);
    assert.match(await gitOk(['--git-dir', linksDir, 'ls-tree', 'HEAD', 'pkg/escape']), /^120000 blob [0-9a-f]{40}\tpkg\/escape\n$/);
    assert.equal(await gitOk(['--git-dir', linksDir, 'cat-file', 'blob', 'HEAD:pkg/escape']), '/etc');
    const missingDir = await api(s, 'POST', '/git/v1/repo', { key: s.adminKey, body: { import: { type: 'tar', url: `file://${path.join(src, 'x.tar')}`, dir: 'nope', commitMessage: 'x' } } });
    assert.equal(missingDir.body.code, 'IMPORT_SUBDIR_NOT_FOUND');

    const g = await fsdk.git.repos.create({ import: { type: 'git', url: `file://${template}`, dir: 'web', commitMessage: 'just the web folder' } });
    const list = await g.repo.commits.list({});
    assert.equal(list.total, 1, 'no history');
    assert.deepEqual(list.commits[0]!.parents, []);
    assert.deepEqual(((await g.repo.contents.get({})) as { entries: { path: string }[] }).entries.map((e) => e.path), ['index.html']);
    await assert.rejects(fsdk.git.repos.create({ import: { type: 'files', files: {}, commitMessage: '' } }), Errors.BadRequestError);
  });
});
