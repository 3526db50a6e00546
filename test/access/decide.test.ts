// Plain table tests of the pure decision: who holds which level on a repository.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decideIdentity, decideRepo, decideServer, decideVmLogin, decideVmManage, repoLevel, type VmFacts } from '../../src/access/decide.ts';
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
  const core = ({ allowed, visible, level }: { allowed: boolean; visible: boolean; level: Level }) => ({ allowed, visible, level });
  assert.deepEqual(core(decideRepo(ident, 'repo:write', priv('read'))), { allowed: false, visible: true, level: Level.Read });
  assert.deepEqual(core(decideRepo(ident, 'repo:read', priv())), { allowed: false, visible: false, level: Level.None });
  assert.deepEqual(core(decideRepo(ident, 'repo:write', priv('write'))), { allowed: true, visible: true, level: Level.Write });
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

test('decideVmLogin table: grant, registration by the same account, active account, allowed users', () => {
  const vm = (over: Partial<VmFacts> = {}): VmFacts => ({ vm: { accountId: 'u-owner', defaultUser: 'root' }, grant: { allowedUsers: null }, identityAccountId: 'u-owner', accountActive: true, ...over });
  const rows: [string, Principal, VmFacts, string | undefined, boolean, string | undefined][] = [
    ['any user, default user', ident, vm(), undefined, true, undefined],
    ['any user, named user', ident, vm(), 'dev', true, undefined],
    ['allowed list holds the user', ident, vm({ grant: { allowedUsers: ['dev', 'ci'] } }), 'ci', true, undefined],
    ['allowed list, default user not in it', ident, vm({ grant: { allowedUsers: ['dev'] } }), undefined, false, 'user root not allowed'],
    ['allowed list without the user', ident, vm({ grant: { allowedUsers: ['dev'] } }), 'root', false, 'user root not allowed'],
    ['empty allowed list', ident, vm({ grant: { allowedUsers: [] } }), 'dev', false, 'user dev not allowed'],
    ['no grant (a stranger learns nothing of the VM)', ident, vm({ grant: undefined }), 'dev', false, 'no grant for this VM'],
    ['no grant, no VM: the same answer', ident, vm({ grant: undefined, vm: undefined }), 'dev', false, 'no grant for this VM'],
    ['grant, VM not registered', ident, vm({ vm: undefined }), 'dev', false, 'VM not registered'],
    ['grant, VM of another account', ident, vm({ vm: { accountId: 'u-other', defaultUser: 'root' } }), 'dev', false, 'VM not registered'],
    ['inactive account', ident, vm({ accountActive: false }), 'dev', false, 'account inactive'],
    ['account gone', ident, vm({ accountActive: null }), 'dev', false, 'account inactive'],
    ['a user is not an identity', owner, vm(), 'dev', false, 'only identities log in to VMs'],
    ['anonymous', anon, vm(), 'dev', false, 'only identities log in to VMs'],
  ];
  for (const [name, p, f, user, allowed, reason] of rows) {
    const d = decideVmLogin(p, f, user);
    assert.equal(d.allowed, allowed, name);
    assert.equal(d.reason, reason, name);
  }
  assert.equal(decideVmLogin(ident, vm(), undefined).linuxUser, 'root', 'the default user is the one logged in as');
});

test('decideVmManage: the registering account and admins', () => {
  assert.equal(decideVmManage(owner, { accountId: 'u-owner', defaultUser: 'root' }).allowed, true);
  assert.equal(decideVmManage(admin, { accountId: 'u-owner', defaultUser: 'root' }).allowed, true);
  assert.equal(decideVmManage(stranger, { accountId: 'u-owner', defaultUser: 'root' }).visible, false);
  assert.equal(decideVmManage(ident, { accountId: 'u-owner', defaultUser: 'root' }).allowed, false);
  assert.equal(decideVmManage(inactiveAdmin, { accountId: 'u-owner', defaultUser: 'root' }).allowed, false);
  assert.equal(decideVmManage(owner, undefined).allowed, false);
});
