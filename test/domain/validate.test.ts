// The one revision check and the one object-id check (src/domain/validate.ts): plain table tests.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isObjectId, isRevision, requireObjectId, requireRevision } from '../../src/domain/validate.ts';
import { branchPatternProblem, globMatch, refNameProblem, refPatternProblem } from '../../src/domain/validate.ts';

const OID = '0123456789abcdef0123456789abcdef01234567';

test('isRevision accepts what git reads as one revision, nothing that is an option, a range or odd', () => {
  for (const ok of ['main', 'feature/x', 'v1.0', 'HEAD~2', 'main^{tree}', 'HEAD@{1}', OID, '_x', 'a-b_c.d']) assert.equal(isRevision(ok), true, ok);
  for (const bad of ['', '-rf', '--output=/x', 'a..b', 'a...b', 'a b', 'a:b', 'a\0b', '/abs', '.hidden', 'x'.repeat(201), 'a\nb', 'a*', 42, null, undefined, ['main']])
    assert.equal(isRevision(bad), false, JSON.stringify(bad));
});

test('requireRevision throws INVALID_REVISION naming the field', () => {
  assert.equal(requireRevision('main'), 'main');
  assert.throws(() => requireRevision('a..b', 'base'), (e: Error & { code?: string }) => e.code === 'INVALID_REVISION' && /Invalid base/.test(e.message));
});

test('isObjectId is 40 lowercase hex; requireObjectId accepts any case and lowercases', () => {
  assert.equal(isObjectId(OID), true);
  for (const bad of [OID.toUpperCase(), OID.slice(1), `${OID}0`, `${OID.slice(1)}g`, '', 0, null]) assert.equal(isObjectId(bad), false, String(bad));
  assert.equal(requireObjectId(OID.toUpperCase()), OID);
  assert.throws(() => requireObjectId('abc', 'expectedSha'), (e: Error & { code?: string }) => e.code === 'INVALID_OBJECT_ID' && /expectedSha/.test(e.message));
  assert.throws(() => requireObjectId(12, 'sha'), (e: Error & { code?: string }) => e.code === 'INVALID_OBJECT_ID');
});

test('globMatch: `*` matches any run of characters, slashes included; everything else only itself', () => {
  const rows: [string, string, boolean][] = [
    ['refs/heads/agents/*', 'refs/heads/agents/x', true],
    ['refs/heads/agents/*', 'refs/heads/agents/x/y', true],
    ['refs/heads/agents/*', 'refs/heads/agents/', true],
    ['refs/heads/agents/*', 'refs/heads/agentsx', false],
    ['refs/heads/agents/*', 'refs/heads/main', false],
    ['main', 'main', true],
    ['main', 'main2', false],
    ['release/*', 'release/1.0', true],
    ['*', 'anything/at/all', true],
    ['a*b*c', 'axxbyyc', true],
    ['a*b*c', 'axxbyy', false],
    ['refs/heads/?', 'refs/heads/x', false],
    ['refs/heads/[ab]', 'refs/heads/a', false],
  ];
  for (const [pattern, text, want] of rows) assert.equal(globMatch(pattern, text), want, `${pattern} ~ ${text}`);
});

// Security regression, pattern ReDoS: ref patterns are user input (a grant's refs) matched on
// every push. A matcher built on a backtracking regular expression takes exponential-ish time
// on many stars against a near-miss (`^.*a.*a.*a.*a.*a.*a.*a.*b$` on 5000 `a`s does not finish);
// this one backtracks only to the last star.
test('globMatch stays fast on a pathological pattern', () => {
  const t0 = performance.now();
  assert.equal(globMatch('*a*a*a*a*a*a*a*b', 'a'.repeat(5000)), false);
  assert.ok(performance.now() - t0 < 200, `took ${(performance.now() - t0).toFixed(0)} ms`);
});

test('ref names and patterns', () => {
  for (const ok of ['refs/heads/main', 'refs/heads/agents/x-1', 'refs/tags/v1.0']) assert.equal(refNameProblem(ok), undefined, ok);
  for (const bad of ['main', 'refs/heads/a b', 'refs/heads/a..b', 'refs/heads/x.lock', 'refs/heads/.x', 'refs/heads/x/', 'refs/heads/a*', 'refs/heads/a\nb', 'refs/heads/@{x}']) assert.ok(refNameProblem(bad), bad);
  assert.equal(refPatternProblem('refs/heads/agents/*'), undefined);
  assert.ok(refPatternProblem('heads/*'), 'under refs/');
  assert.ok(refPatternProblem(`refs/${'*'.repeat(9)}`), 'at most 8 stars');
  assert.equal(branchPatternProblem('release/*'), undefined);
  assert.ok(branchPatternProblem('refs/heads/main'), 'a branch, not a ref');
  assert.ok(branchPatternProblem('a b'));
});
