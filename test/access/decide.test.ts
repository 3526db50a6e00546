// Plain table tests of the pure decision: who holds which level on a repository.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decideIdentity, decideRepo, decideServer, repoLevel } from '../../src/access/decide.ts';
import { Level, type Principal } from '../../src/domain/access.ts';

const owner: Principal = { kind: 'user', userId: 'u-owner', username: 'o', admin: false, active: true, identityId: 'i-o' };
const admin: Principal = { kind: 'user', userId: 'u-admin', username: 'a', admin: true, active: true, identityId: 'i-a' };
const inactiveAdmin: Principal = { ...admin, active: false } as Principal;
const stranger: Principal = { kind: 'user', userId: 'u-x', username: 'x', admin: false, active: true, identityId: 'i-x' };
const ident: Principal = { kind: 'identity', identityId: 'i-1', accountId: 'u-owner' };
const anon: Principal = { kind: 'anonymous' };

const priv = (identityAccess: 'read' | 'write' | null = null) => ({ visibility: 'private' as const, ownerId: 'u-owner', identityAccess });
const pub = (identityAccess: 'read' | 'write' | null = null) => ({ visibility: 'public' as const, ownerId: 'u-owner', identityAccess });

test('repoLevel table', () => {
  const rows: [string, Principal, Parameters<typeof repoLevel>[1], Level][] = [
    ['owner on private', owner, priv(), Level.Admin],
    ['admin on private', admin, priv(), Level.Admin],
    ['inactive admin', inactiveAdmin, priv(), Level.None],
    ['inactive admin on public', inactiveAdmin, pub(), Level.None],
    ['stranger on private', stranger, priv(), Level.None],
    ['stranger on public', stranger, pub(), Level.Read],
    ['identity without grant, private', ident, priv(), Level.None],
    ['identity read grant', ident, priv('read'), Level.Read],
    ['identity write grant', ident, priv('write'), Level.Write],
    ['identity without grant, public', ident, pub(), Level.Read],
    ['identity write grant, public', ident, pub('write'), Level.Write],
    ['anonymous private', anon, priv(), Level.None],
    ['anonymous public', anon, pub(), Level.Read],
    ['missing repository, admin', admin, undefined, Level.None],
  ];
  for (const [name, p, f, want] of rows) assert.equal(repoLevel(p, f), want, name);
});

test('decideRepo: allowed and visible', () => {
  assert.deepEqual(decideRepo(ident, 'repo:write', priv('read')), { allowed: false, visible: true, level: Level.Read });
  assert.deepEqual(decideRepo(ident, 'repo:read', priv()), { allowed: false, visible: false, level: Level.None });
  assert.deepEqual(decideRepo(ident, 'repo:write', priv('write')), { allowed: true, visible: true, level: Level.Write });
  assert.equal(decideRepo(ident, 'repo:admin', priv('write')).allowed, false);
  assert.equal(decideRepo(owner, 'repo:admin', priv()).allowed, true);
  assert.equal(decideRepo(anon, 'repo:write', pub()).allowed, false);
  assert.equal(decideRepo(admin, 'identity:manage', priv()).allowed, false, 'a repository decision never grants a non-repository action');
});

test('decideIdentity and decideServer', () => {
  assert.equal(decideIdentity(owner, { accountId: 'u-owner' }).allowed, true);
  assert.equal(decideIdentity(stranger, { accountId: 'u-owner' }).allowed, false);
  assert.equal(decideIdentity(admin, { accountId: 'u-owner' }).allowed, true);
  assert.equal(decideIdentity(inactiveAdmin, { accountId: 'u-owner' }).allowed, false);
  assert.equal(decideIdentity(ident, { accountId: 'u-owner' }).allowed, false, 'identities do not manage identities');
  assert.equal(decideIdentity(owner, undefined).allowed, false);
  assert.equal(decideServer(admin).allowed, true);
  assert.equal(decideServer(owner).allowed, false);
  assert.equal(decideServer(anon).allowed, false);
  assert.equal(decideServer(owner, 'account:use').allowed, true);
  assert.equal(decideServer(inactiveAdmin, 'account:use').allowed, false);
  assert.equal(decideServer(ident, 'account:use').allowed, false, 'an identity token is not an account');
  assert.equal(decideServer(anon, 'account:use').allowed, false);
  assert.equal(decideServer(admin, 'repo:read').allowed, false, 'a server decision never grants a repository action');
});
