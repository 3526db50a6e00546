// The one revision check and the one object-id check (src/domain/validate.ts): plain table tests.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isObjectId, isRevision, requireObjectId, requireRevision } from '../../src/domain/validate.ts';

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
