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

const system: Principal = { kind: 'system' };

type Facts = NonNullable<Parameters<typeof repoLevel>[1]>;
const priv = (identityAccess: 'read' | 'write' | null = null, more: Partial<Facts> = {}): Facts => ({ visibility: 'private', ownerId: 'u-owner', identityAccess, accountActive: true, ...more });
const pub = (identityAccess: 'read' | 'write' | null = null, more: Partial<Facts> = {}): Facts => ({ visibility: 'public', ownerId: 'u-owner', identityAccess, accountActive: true, ...more });

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
    // an identity's account must be active (the facts say so); reactivation restores it
    ['identity of an inactive account, write grant', ident, priv('write', { accountActive: false }), Level.None],
    ['identity of an inactive account, public', ident, pub('read', { accountActive: false }), Level.None],
    ['identity whose account is gone', ident, priv('write', { accountActive: null }), Level.None],
    ['identity, facts without the account state', ident, priv('write', { accountActive: undefined }), Level.None],
    ['user deactivated since its credentials were read', owner, priv(null, { accountActive: false }), Level.None],
    // users and groups: the strongest of own and groups' grants; only an own explicit none overrides
    ['own read, group write', stranger, priv(null, { userLevel: Level.Read, groupLevel: Level.Write }), Level.Write],
    ['own write, group read', stranger, priv(null, { userLevel: Level.Write, groupLevel: Level.Read }), Level.Write],
    ['own admin, group none', stranger, priv(null, { userLevel: Level.Admin, groupLevel: Level.None }), Level.Admin],
    ['own none, group write', stranger, priv(null, { userLevel: Level.None, groupLevel: Level.Write }), Level.None],
    ['own none on public', stranger, pub(null, { userLevel: Level.None }), Level.None],
    ['group none on public', stranger, pub(null, { groupLevel: Level.None }), Level.Read],
    ['group read, no own grant', stranger, priv(null, { groupLevel: Level.Read }), Level.Read],
    ['group admin on public', stranger, pub(null, { groupLevel: Level.Admin }), Level.Admin],
    ['own read on public', stranger, pub(null, { userLevel: Level.Read }), Level.Read],
    ['console operator holds nothing on repositories', system, pub(), Level.None],
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
  assert.equal(decideServer(system).allowed, true, 'the console operator administers the server');
  assert.equal(decideServer(system, 'account:use').allowed, false, 'but is no account');
  assert.equal(decideIdentity(system, { accountId: 'u-owner' }).allowed, false);
});
