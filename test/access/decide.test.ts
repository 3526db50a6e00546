// Plain table tests of the pure decision: who holds which level on a repository, the facts that
// decided it, and the decision on each ref of a write.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decideIdentity, decideRef, decideRepo, decideServer, decideVmLogin, decideVmManage, evaluateRepo, type RefUpdate, repoLevel, type VmFacts } from '../../src/access/decide.ts';
import { Level, type Principal, type RefRules } from '../../src/domain/access.ts';

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

// ---- facts, expiry, refs (issue 9) -------------------------------------------------------

const at = Date.parse('2030-01-01T00:00:00Z');
const withNow = (f: Facts): Facts => ({ ...f, now: at });
const decisive = (facts: { fact: string; decisive: boolean }[] | undefined) => facts?.filter((x) => x.decisive).map((x) => x.fact);

test('evaluateRepo: the ordered facts, and the one that decided, for each rule', () => {
  const rows: [string, Principal, Facts | undefined, Level, string[], string[]][] = [
    ['no repository', admin, undefined, Level.None, ['repository'], ['repository']],
    ['anonymous, public', anon, pub(), Level.Read, ['visibility'], ['visibility']],
    ['admin', admin, priv(), Level.Admin, ['admin'], ['admin']],
    ['owner', owner, priv(), Level.Admin, ['owner'], ['owner']],
    ['inactive account', inactiveAdmin, priv(), Level.None, ['account'], ['account']],
    ['own grant wins over the visibility', stranger, pub(null, { userLevel: Level.Write }), Level.Write, ['userGrant', 'visibility'], ['userGrant']],
    ['a group grant wins over its own', stranger, priv(null, { userLevel: Level.Read, groupLevel: Level.Write }), Level.Write, ['userGrant', 'groupGrant', 'visibility'], ['groupGrant']],
    ['explicit none overrides groups', stranger, priv(null, { userLevel: Level.None, groupLevel: Level.Admin }), Level.None, ['userGrant'], ['userGrant']],
    ['visibility default', stranger, pub(), Level.Read, ['visibility'], ['visibility']],
    ['identity grant', ident, priv('write'), Level.Write, ['identityGrant', 'visibility'], ['identityGrant']],
    ['identity grant with ref rules', ident, priv('write', { refRules: { allow: ['refs/heads/a/*'], deny: [], forcePush: false, deleteRefs: false } }), Level.Write, ['identityGrant', 'visibility', 'refRule'], ['identityGrant']],
    ['identity of an inactive account', ident, priv('write', { accountActive: false }), Level.None, ['account'], ['account']],
    ['expired identity token', { ...ident, expiresAt: at - 1 } as Principal, withNow(priv('write')), Level.None, ['credential'], ['credential']],
    ['expired API key of an admin', { ...admin, expiresAt: at } as Principal, withNow(priv()), Level.None, ['credential'], ['credential']],
    ['a key that has not expired yet', { ...admin, expiresAt: at + 1 } as Principal, withNow(priv()), Level.Admin, ['admin'], ['admin']],
  ];
  for (const [name, p, f, level, facts, dec] of rows) {
    const e = evaluateRepo(p, f);
    assert.equal(e.level, level, name);
    assert.deepEqual(e.facts.map((x) => x.fact), facts, name);
    assert.deepEqual(decisive(e.facts), dec, name);
  }
  // groups by name, when an explanation reads them
  const named = evaluateRepo(stranger, priv(null, { groups: [{ name: 'devs', level: Level.Read }, { name: 'ops', level: Level.Write }] }));
  assert.equal(named.level, Level.Write);
  assert.deepEqual(named.facts.filter((x) => x.fact === 'groupGrant').map((x) => [x.name, x.level, x.decisive]), [['devs', 'read', false], ['ops', 'write', true]]);
});

test('decideRef table: ref rules, protected branches, admins, fast-forward only when force is not known', () => {
  const rules = (r: Partial<RefRules> = {}): RefRules => ({ allow: ['refs/heads/agents/*'], deny: [], forcePush: false, deleteRefs: false, ...r });
  const writer: Principal = stranger;
  const groupWriter = priv(null, { groupLevel: Level.Write, protectedBranches: ['main', 'release/*'] });
  const rows: [string, Principal | undefined, Facts, RefUpdate, boolean, boolean, string | undefined][] = [
    // [name, principal, facts, update, allowed, fastForwardOnly, reason]
    ['identity without rules: any ref', ident, priv('write'), { ref: 'refs/heads/main', op: 'update' }, true, false, undefined],
    ['identity without rules may force and delete', ident, priv('write'), { ref: 'refs/heads/main', op: 'delete' }, true, false, undefined],
    ['read grant moves nothing', ident, priv('read'), { ref: 'refs/heads/main', op: 'create' }, false, false, 'write access to this repository is required'],
    ['allowed prefix', ident, priv('write', { refRules: rules() }), { ref: 'refs/heads/agents/x', op: 'create' }, true, false, undefined],
    ['allowed prefix, deeper', ident, priv('write', { refRules: rules() }), { ref: 'refs/heads/agents/x/y', op: 'create' }, true, false, undefined],
    ['other branch', ident, priv('write', { refRules: rules() }), { ref: 'refs/heads/main', op: 'update' }, false, false, 'not among the refs this grant allows'],
    ['a tag outside the rules', ident, priv('write', { refRules: rules() }), { ref: 'refs/tags/v1', op: 'create' }, false, false, 'not among the refs this grant allows'],
    ['denied inside the allowed', ident, priv('write', { refRules: rules({ deny: ['refs/heads/agents/prod*'] }) }), { ref: 'refs/heads/agents/prod-1', op: 'create' }, false, false, 'matches a pattern this grant denies (refs/heads/agents/prod*)'],
    ['delete without deleteRefs', ident, priv('write', { refRules: rules() }), { ref: 'refs/heads/agents/x', op: 'delete' }, false, false, 'this grant does not allow deleting refs'],
    ['delete with deleteRefs', ident, priv('write', { refRules: rules({ deleteRefs: true }) }), { ref: 'refs/heads/agents/x', op: 'delete' }, true, false, undefined],
    ['known force without forcePush', ident, priv('write', { refRules: rules() }), { ref: 'refs/heads/agents/x', op: 'update', force: true }, false, false, 'this grant does not allow force pushes'],
    ['known fast-forward', ident, priv('write', { refRules: rules() }), { ref: 'refs/heads/agents/x', op: 'update', force: false }, true, false, undefined],
    ['force not known yet: fast-forward only', ident, priv('write', { refRules: rules() }), { ref: 'refs/heads/agents/x', op: 'update' }, true, true, undefined],
    ['forcePush allows it', ident, priv('write', { refRules: rules({ forcePush: true }) }), { ref: 'refs/heads/agents/x', op: 'update' }, true, false, undefined],
    ['rules bind identities only (a user with write)', writer, priv(null, { userLevel: Level.Write, refRules: rules() }), { ref: 'refs/heads/main', op: 'update' }, true, false, undefined],
    ['protected: group writer deletes', writer, groupWriter, { ref: 'refs/heads/main', op: 'delete' }, false, false, 'protected branch: it cannot be deleted'],
    ['protected: known force', writer, groupWriter, { ref: 'refs/heads/release/1.0', op: 'update', force: true }, false, false, 'protected branch: no force push'],
    ['protected: force not known yet', writer, groupWriter, { ref: 'refs/heads/main', op: 'update' }, true, true, undefined],
    ['protected: a commit (fast-forward)', writer, groupWriter, { ref: 'refs/heads/main', op: 'update', force: false }, true, false, undefined],
    ['protected: creating it is fine', writer, groupWriter, { ref: 'refs/heads/release/2.0', op: 'create' }, true, false, undefined],
    ['protected patterns match branches only', writer, groupWriter, { ref: 'refs/tags/main', op: 'delete' }, true, false, undefined],
    ['unprotected branch', writer, groupWriter, { ref: 'refs/heads/topic', op: 'delete' }, true, false, undefined],
    ['repository.admin bypasses protection', writer, priv(null, { userLevel: Level.Admin, protectedBranches: ['main'] }), { ref: 'refs/heads/main', op: 'delete' }, true, false, undefined],
    ['the owner bypasses protection', owner, priv(null, { protectedBranches: ['main'] }), { ref: 'refs/heads/main', op: 'update', force: true }, true, false, undefined],
    ['an identity: protected and its rules', ident, priv('write', { refRules: rules({ allow: ['refs/heads/*'], deleteRefs: true }), protectedBranches: ['main'] }), { ref: 'refs/heads/main', op: 'delete' }, false, false, 'protected branch: it cannot be deleted'],
    ['the sync link writes, protected branches bind it', undefined, priv(null, { protectedBranches: ['main'] }), { ref: 'refs/heads/main', op: 'delete', force: false }, false, false, 'protected branch: it cannot be deleted'],
    ['the sync link fast-forwards a protected branch', undefined, priv(null, { protectedBranches: ['main'] }), { ref: 'refs/heads/main', op: 'update', force: false }, true, false, undefined],
    ['an expired token moves nothing', { ...ident, expiresAt: at - 1 } as Principal, withNow(priv('write')), { ref: 'refs/heads/main', op: 'update' }, false, false, 'write access to this repository is required'],
  ];
  for (const [name, p, f, u, allowed, ff, reason] of rows) {
    const d = decideRef(p, f, u);
    assert.equal(d.allowed, allowed, name);
    assert.equal(d.fastForwardOnly, ff, name);
    assert.equal(d.reason, reason, name);
    if (!allowed) assert.equal(decisive(d.facts)!.length, 1, `${name}: one decisive fact`);
  }
  // the refusing fact says which rule
  const d = decideRef(ident, priv('write', { refRules: rules() }), { ref: 'refs/heads/main', op: 'update' });
  assert.deepEqual(d.facts!.filter((x) => x.decisive).map((x) => [x.fact, x.effect]), [['refRule', 'deny']]);
  const pb = decideRef(writer, groupWriter, { ref: 'refs/heads/main', op: 'update' });
  assert.equal(pb.fastForwardReason, 'protected branch: no force push');
  assert.ok(pb.facts!.some((x) => x.fact === 'protectedBranch' && x.effect === 'fastForwardOnly' && x.name === 'main'));
});

test('decideIdentity: identity:read lets an identity read itself while its account is active', () => {
  const f = { accountId: 'u-owner', identityId: 'i-1', accountActive: true };
  assert.equal(decideIdentity(ident, f, 'identity:read').allowed, true);
  assert.equal(decideIdentity(ident, f, 'identity:manage').allowed, false, 'but not change itself');
  assert.equal(decideIdentity(ident, { ...f, identityId: 'i-2' }, 'identity:read').allowed, false, 'nor read another of its account');
  assert.equal(decideIdentity(ident, { ...f, accountActive: false }, 'identity:read').allowed, false);
  assert.equal(decideIdentity(owner, f, 'identity:read').allowed, true);
  assert.equal(decideIdentity(stranger, f, 'identity:read').allowed, false);
});
