// Search through the SDK: contents (regex, case, whole word, path patterns), files, commits, diffs.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Freestyle, type GitRepo } from 'freestyle-sandboxes';
import { api, startServer, type TestServer } from '../helpers/server.ts';

let s: TestServer;
let repo: GitRepo;
let repoId: string;
before(async () => {
  s = await startServer();
  const fsdk = new Freestyle({ baseUrl: s.url, apiKey: s.adminKey });
  const created = await fsdk.git.repos.create({ name: 'search/me' });
  repo = created.repo;
  repoId = created.repoId;
  await repo.commits.create({
    message: 'Add the parser\n\nLonger body about the Parser.',
    files: [
      { path: 'src/parser.ts', content: 'export function parse() {\n  // TODO: handle errors\n  return parseValue();\n}\nconst Parse = 1;\n' },
      { path: 'src/util.ts', content: 'export const todo = "todo list";\n' },
      { path: 'docs/readme.md', content: '# Docs\nTODO: write docs\n' },
    ],
  });
  await repo.commits.create({ message: 'Fix the lexer', files: [{ path: 'src/lexer.ts', content: 'export const token = 42; // FIXME later\n' }] });
});
after(() => s.stop());

describe('search', () => {
  test('content search: plain, case, whole word, regex, path patterns, context', async () => {
    const plain = await repo.search({ query: 'todo' });
    assert.equal(plain.totalFiles, 3);
    assert.deepEqual(plain.files.map((f) => f.path), ['docs/readme.md', 'src/parser.ts', 'src/util.ts']);
    const parser = plain.files.find((f) => f.path === 'src/parser.ts')!;
    assert.equal(parser.extension, 'ts');
    assert.equal(parser.matches[0]!.lineNumber, 2);
    assert.equal(parser.matches[0]!.startColumn, 6);
    assert.equal(parser.matches[0]!.endColumn, 10);
    assert.deepEqual(parser.matches[0]!.contextBefore, ['export function parse() {']);
    assert.deepEqual(parser.matches[0]!.contextAfter, ['  return parseValue();', '}']);
    const cased = await repo.search({ query: 'TODO', caseSensitive: true });
    assert.deepEqual(cased.files.map((f) => f.path), ['docs/readme.md', 'src/parser.ts']);
    const word = await repo.search({ query: 'parse', wholeWord: true, caseSensitive: true });
    assert.deepEqual(word.files.map((f) => f.path), ['src/parser.ts']);
    assert.equal(word.totalMatches, 1);
    const regex = await repo.search({ query: 'parse[A-Z][a-z]+', isRegex: true, caseSensitive: true });
    assert.equal(regex.files[0]!.matches[0]!.line, '  return parseValue();');
    const onlyDocs = await repo.search({ query: 'todo', pathPattern: 'docs/**' });
    assert.deepEqual(onlyDocs.files.map((f) => f.path), ['docs/readme.md']);
    const noDocs = await repo.search({ query: 'todo', excludePattern: 'docs/**' });
    assert.deepEqual(noDocs.files.map((f) => f.path), ['src/parser.ts', 'src/util.ts']);
    const paged = await repo.search({ query: 'todo', maxResults: 1, offset: 1 });
    assert.deepEqual(paged.files.map((f) => f.path), ['src/parser.ts']);
    assert.equal(paged.hasMore, true);
    // the revision as rev= also works (the SDK sends ref=)
    const byRev = await api(s, 'GET', `/git/v1/repo/${repoId}/search?query=FIXME&rev=main`, { key: s.adminKey });
    assert.equal(byRev.body.totalFiles, 1);
  });

  test('bad patterns are a 400, and a hostile pattern does not hang the server', async () => {
    const bad = await api(s, 'GET', `/git/v1/repo/${repoId}/search?query=${encodeURIComponent('(unclosed')}&isRegex=true`, { key: s.adminKey });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.code, 'INVALID_REGEX');
    const empty = await api(s, 'GET', `/git/v1/repo/${repoId}/search?query=`, { key: s.adminKey });
    assert.equal(empty.status, 400);
    const t0 = Date.now();
    const evil = await api(s, 'GET', `/git/v1/repo/${repoId}/search?query=${encodeURIComponent('(a+)+$')}&isRegex=true`, { key: s.adminKey });
    assert.equal(evil.status, 200);
    assert.ok(Date.now() - t0 < 5000);
  });

  test('file, commit and diff search', async () => {
    const files = await repo.searchFiles({ query: 'src/.*er\\.ts$', isRegex: true });
    assert.deepEqual(files.files.map((f) => f.path), ['src/lexer.ts', 'src/parser.ts']);
    assert.equal((await repo.searchFiles({ query: 'README' })).files[0]!.path, 'docs/readme.md');
    const commits = await repo.searchCommits({ query: 'parser' });
    assert.equal(commits.totalCommits, 1);
    assert.equal(commits.commits[0]!.message, 'Add the parser');
    assert.match(commits.commits[0]!.fullMessage, /Longer body/);
    assert.equal((await repo.searchCommits({ query: 'PARSER', caseSensitive: true })).totalCommits, 0);
    const diffs = await repo.searchDiffs({ query: 'FIXME' });
    assert.equal(diffs.totalCommits, 1);
    assert.equal(diffs.commits[0]!.message, 'Fix the lexer');
    assert.deepEqual(diffs.commits[0]!.files.map((f) => f.path), ['src/lexer.ts']);
    const m = diffs.commits[0]!.files[0]!.matches[0]!;
    assert.equal(m.isAddition, true);
    assert.equal(m.lineNumber, 1);
    assert.equal(m.line, 'export const token = 42; // FIXME later');
    assert.equal(m.startColumn, 29);
  });
});
