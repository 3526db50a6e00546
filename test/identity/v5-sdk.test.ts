// /v5/identities driven through the current Freestyle SDK (npm `freestyle` 0.2.17), every
// identities method, in both of its credential modes, and the same objects seen through
// /identity/v1 and the older `freestyle-sandboxes` SDK: one service behind both surfaces.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Freestyle, FreestyleApiError } from 'freestyle';
import { Freestyle as OldFreestyle } from 'freestyle-sandboxes';
import { api, startServer, type TestServer } from '../helpers/server.ts';

let s: TestServer;
let sdk: Freestyle;
let old: OldFreestyle;
const GHOST = '00000000-0000-4000-8000-000000000000';

before(async () => {
  s = await startServer();
  sdk = new Freestyle({ baseUrl: s.url, apiKey: s.adminKey });
  old = new OldFreestyle({ baseUrl: s.url, apiKey: s.adminKey });
});
after(() => s.stop());

/** The SDK's error for a call: its status and `code`, as its errors.ts reads them from `{code, message}`. */
async function apiError(p: Promise<unknown>): Promise<{ status: number; code: string; message: string }> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof FreestyleApiError, `a FreestyleApiError, got ${String(e)}`);
    assert.equal(typeof e.message, 'string');
    assert.ok(e.message.length > 0);
    return { status: e.status, code: e.code, message: e.message };
  }
  assert.fail('the call succeeded');
}

describe('freestyle 0.2.17: /v5/identities', () => {
  test('every identities method with an API key, and the shapes the SDK types', async () => {
    // create
    const { identity, identityId, data } = await sdk.identities.create();
    assert.deepEqual(data, { id: identityId, managed: false });
    assert.equal(identity.id, identityId);

    // list: exactly {identities, total}
    const list = await sdk.identities.list({ limit: 1000, offset: 0 });
    assert.deepEqual(Object.keys(list).sort(), ['identities', 'total']);
    assert.ok(list.identities.some((i) => i.id === identityId && i.managed === false));
    assert.ok(list.identities.every((i) => Object.keys(i).sort().join() === 'id,managed'));
    const withManaged = await sdk.identities.list({ includeManaged: true, limit: 1000 });
    assert.ok(withManaged.total > list.total, "includeManaged adds the users' own identities");
    const page = await sdk.identities.list({ limit: 1, offset: 0 });
    assert.equal(page.identities.length, 1);
    assert.equal(page.total, list.total);

    // get, data(), ref()
    const info = await sdk.identities.get(identityId);
    assert.deepEqual(Object.keys(info).sort(), ['accountId', 'id', 'managed']);
    assert.equal(info.id, identityId);
    assert.equal(info.managed, false);
    assert.match(info.accountId, /^[0-9a-f-]{36}$/);
    assert.deepEqual(await identity.data(), info);
    assert.deepEqual(await sdk.identities.ref(identityId).data(), info);

    // tokens: create -> {id, token}; list -> a bare array of {id}; revoke -> nothing
    const t1 = await identity.tokens.create();
    const t2 = await identity.tokens.create();
    assert.ok(t1.token.startsWith('pal_'));
    assert.match(t1.id, /^[0-9a-f-]{36}$/);
    const tokens = await identity.tokens.list();
    assert.ok(Array.isArray(tokens));
    assert.deepEqual(tokens.map((t) => t.id).sort(), [t1.id, t2.id].sort());
    assert.ok(!JSON.stringify(tokens).includes(t1.token), 'a listing never shows the secret');
    await identity.tokens.revoke(t2.id);
    assert.deepEqual((await identity.tokens.list()).map((t) => t.id), [t1.id]);

    // VM permissions: list -> a bare array; grant, get, update, revoke
    assert.deepEqual(await identity.permissions.vm.list(), []);
    const vm = await identity.permissions.vm.grant({ vmId: 'vm-1', allowedLinuxUsers: ['root', 'dev'] });
    assert.deepEqual(Object.keys(vm).sort(), ['allowedLinuxUsers', 'grantedAt', 'grantedBy', 'id', 'identityId', 'vmId']);
    assert.equal(vm.identityId, identityId);
    assert.equal(vm.vmId, 'vm-1');
    assert.deepEqual(vm.allowedLinuxUsers, ['root', 'dev']);
    assert.ok(!Number.isNaN(Date.parse(vm.grantedAt)));
    assert.equal(vm.grantedBy, info.accountId);
    const any = await identity.permissions.vm.grant({ vmId: 'vm-any' });
    assert.equal(any.allowedLinuxUsers, null, 'omitted: any user');
    assert.deepEqual(await identity.permissions.vm.get('vm-1'), vm);
    const upd = await identity.permissions.vm.update('vm-1', null);
    assert.equal(upd.allowedLinuxUsers, null);
    assert.equal(upd.id, vm.id);
    assert.deepEqual((await identity.permissions.vm.update('vm-1', ['ci'])).allowedLinuxUsers, ['ci']);
    assert.deepEqual((await identity.permissions.vm.list()).map((p) => p.vmId), ['vm-1', 'vm-any']);
    await identity.permissions.vm.revoke('vm-any');
    assert.deepEqual((await identity.permissions.vm.list()).map((p) => p.vmId), ['vm-1']);

    // errors: {code, message} become FreestyleApiError with the status and code
    assert.deepEqual((await apiError(identity.permissions.vm.grant({ vmId: 'vm-1' }))).code, 'PERMISSION_ALREADY_EXISTS');
    const missing = await apiError(identity.permissions.vm.get('vm-any'));
    assert.deepEqual([missing.status, missing.code], [404, 'VM_PERMISSION_NOT_FOUND']);
    assert.equal((await apiError(identity.permissions.vm.revoke('vm-any'))).code, 'VM_PERMISSION_NOT_FOUND');
    assert.equal((await apiError(identity.tokens.revoke(GHOST))).status, 404);
    const ghost = await apiError(sdk.identities.get(GHOST));
    assert.deepEqual([ghost.status, ghost.code], [404, 'IDENTITY_NOT_FOUND']);
    assert.equal((await apiError(identity.permissions.vm.grant({ vmId: 'vm-2', allowedLinuxUsers: ['Not Valid'] }))).status, 400);

    // delete (both spellings); its token stops working
    const other = await sdk.identities.create();
    await other.identity.delete();
    assert.equal((await apiError(sdk.identities.get(other.identityId))).code, 'IDENTITY_NOT_FOUND');
    await sdk.identities.delete(identityId);
    assert.equal((await apiError(sdk.identities.delete(identityId))).code, 'IDENTITY_NOT_FOUND');
    assert.equal((await api(s, 'GET', '/git/v1/repo', { key: t1.token })).status, 401, "a deleted identity's token is refused");
  });

  test('managed: true is honoured: such an identity can be neither deleted nor changed', async () => {
    const { identityId, data } = await sdk.identities.create({ managed: true });
    assert.equal(data.managed, true);
    assert.equal((await sdk.identities.get(identityId)).managed, true);
    assert.ok(!(await sdk.identities.list({ limit: 1000 })).identities.some((i) => i.id === identityId), 'managed identities are listed only on request');
    assert.ok((await sdk.identities.list({ includeManaged: true, limit: 1000 })).identities.some((i) => i.id === identityId && i.managed));
    const ref = sdk.identities.ref(identityId);
    assert.deepEqual(await apiError(ref.delete()).then((e) => [e.status, e.code]), [403, 'CANNOT_DELETE_MANAGED_IDENTITY']);
    assert.deepEqual(await apiError(ref.tokens.create()).then((e) => [e.status, e.code]), [403, 'CANNOT_MODIFY_MANAGED_IDENTITY']);
    assert.equal((await apiError(ref.permissions.vm.grant({ vmId: 'vm-1' }))).code, 'CANNOT_MODIFY_MANAGED_IDENTITY');
    assert.deepEqual(await ref.tokens.list(), [], 'reading it is fine');
  });

  test('the same identities, tokens and VM grants through /identity/v1 and the older SDK', async () => {
    // made with the current SDK, seen by the old one and by v1
    const { identity, identityId } = await sdk.identities.create();
    const tok = await identity.tokens.create();
    const vm = await identity.permissions.vm.grant({ vmId: 'vm-both', allowedLinuxUsers: ['dev'] });
    const oldRef = old.identities.ref({ identityId });
    assert.deepEqual((await oldRef.tokens.list()).tokens.map((t) => t.id), [tok.id]);
    const oldVm = await oldRef.permissions.vms.get({ vmId: 'vm-both' });
    assert.deepEqual({ id: oldVm.id, vmId: oldVm.vmId, identityId: oldVm.identityId, users: oldVm.allowedUsers, at: oldVm.grantedAt, by: oldVm.grantedBy }, { id: vm.id, vmId: vm.vmId, identityId, users: vm.allowedLinuxUsers, at: vm.grantedAt, by: vm.grantedBy });
    const v1 = await api(s, 'GET', `/identity/v1/identities/${identityId}`, { key: s.adminKey });
    assert.deepEqual(v1.body, await sdk.identities.get(identityId), 'GET one identity is the same on v1 and v5');
    assert.ok((await old.identities.list({ limit: 1000 })).identities.some((i) => i.id === identityId));

    // made with the old SDK (v1), seen by the current one
    const made = await old.identities.create();
    const oldTok = await made.identity.tokens.create();
    await made.identity.permissions.vms.grant({ vmId: 'vm-old', allowedUsers: null });
    const ref = sdk.identities.ref(made.identityId);
    assert.deepEqual((await ref.tokens.list()).map((t) => t.id), [oldTok.tokenId]);
    assert.deepEqual((await ref.permissions.vm.list()).map((p) => [p.vmId, p.allowedLinuxUsers]), [['vm-old', null]]);
    // revoked through one, gone from the other
    await ref.tokens.revoke(oldTok.tokenId);
    assert.deepEqual((await made.identity.tokens.list()).tokens, []);
    await old.identities.delete({ identityId: made.identityId });
    assert.equal((await apiError(ref.data())).code, 'IDENTITY_NOT_FOUND');
  });

  test('identityAccessToken mode reads its own identity and nothing else; it changes nothing', async () => {
    const { identity, identityId } = await sdk.identities.create();
    const { token, id: tokenId } = await identity.tokens.create();
    await identity.permissions.vm.grant({ vmId: 'vm-own', allowedLinuxUsers: ['dev'] });
    const stranger = await sdk.identities.create();
    const me = new Freestyle({ baseUrl: s.url, identityAccessToken: token });
    assert.equal((await me.identities.get(identityId)).id, identityId);
    assert.deepEqual((await me.identities.ref(identityId).permissions.vm.list()).map((p) => p.vmId), ['vm-own']);
    assert.equal((await me.identities.ref(identityId).permissions.vm.get('vm-own')).vmId, 'vm-own');
    assert.deepEqual((await me.identities.ref(identityId).tokens.list()).map((t) => t.id), [tokenId]);
    // another identity of the same account looks missing
    assert.equal((await apiError(me.identities.get(stranger.identityId))).code, 'IDENTITY_NOT_FOUND');
    // acting as an account: refused
    for (const call of [() => me.identities.create(), () => me.identities.list(), () => me.identities.ref(identityId).tokens.create(), () => me.identities.ref(identityId).delete(), () => me.identities.ref(identityId).permissions.vm.grant({ vmId: 'vm-x' }), () => me.identities.ref(identityId).tokens.revoke(tokenId)]) {
      const e = await apiError(call());
      assert.deepEqual([e.status, e.code], [403, 'IDENTITY_ACCESS_DENIED']);
    }
    assert.deepEqual((await identity.tokens.list()).map((t) => t.id), [tokenId], 'nothing changed');
    // a revoked token is refused in this mode too
    await identity.tokens.revoke(tokenId);
    assert.equal((await apiError(me.identities.get(identityId))).status, 401);
  });

  test('x-freestyle-background-after-secs is accepted and ignored: answers are inline, never 202', async () => {
    const r = await api(s, 'POST', '/v5/identities', { key: s.adminKey, body: {}, headers: { 'x-freestyle-background-after-secs': '0' } });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('x-freestyle-background-request-id'), null);
    const l = await api(s, 'GET', '/v5/identities', { key: s.adminKey, headers: { 'x-freestyle-background-after-secs': '5' } });
    assert.equal(l.status, 200);
  });

  test('unknown /v5 routes answer 401 without credentials (like every API route), 404 with them', async () => {
    for (const [method, path] of [['GET', '/v5/vms'], ['POST', '/v5/vms'], ['GET', '/v5/identities/x/nope'], ['DELETE', '/v5/nothing'], ['GET', '/git/v1/nothing']] as const) {
      const anon = await api(s, method, path);
      assert.equal(anon.status, 401, `${method} ${path}`);
      assert.equal(anon.body.code, 'UNAUTHORIZED');
      assert.equal((await api(s, method, path, { headers: { authorization: 'Bearer pal_wrong' } })).status, 401);
      const known = await api(s, method, path, { key: s.adminKey });
      assert.equal(known.status, 404, `${method} ${path}`);
      assert.equal(known.body.code, 'NOT_FOUND');
    }
    // the SDK's other namespaces get the same answers
    assert.equal((await apiError(sdk.vms.list())).status, 404);
    assert.equal((await apiError(new Freestyle({ baseUrl: s.url, apiKey: 'pal_nope' }).vms.list())).status, 401);
    // a route that exists still answers 401 without credentials
    assert.equal((await api(s, 'GET', '/v5/identities')).status, 401);
    // git URLs are not API routes: a repository called v5/x is served (anonymously: public)
    const repo = await api(s, 'POST', '/git/v1/repo', { key: s.adminKey, body: { name: 'v5/x', public: true } });
    assert.equal(repo.status, 200, JSON.stringify(repo.body));
    assert.equal((await fetch(`${s.url}/v5/x.git/info/refs?service=git-upload-pack`)).status, 200);
  });

  test('git grants with ref rules on both API versions', async () => {
    const repo = (await api(s, 'POST', '/git/v1/repo', { key: s.adminKey, body: { name: 'v5/rules' } })).body.repoId;
    const { identityId } = await sdk.identities.create();
    const refs = { allow: ['refs/heads/agents/*'], deny: ['refs/heads/agents/prod'], forcePush: false };
    const g = await api(s, 'POST', `/v5/identities/${identityId}/permissions/git/${repo}`, { key: s.adminKey, body: { permission: 'write', refs } });
    assert.equal(g.status, 200, JSON.stringify(g.body));
    const want = { allow: ['refs/heads/agents/*'], deny: ['refs/heads/agents/prod'], forcePush: false, deleteRefs: false };
    assert.deepEqual((await api(s, 'GET', `/identity/v1/identities/${identityId}/permissions/git/${repo}`, { key: s.adminKey })).body, { identity: identityId, repo, accessLevel: 'write', refs: want });
    assert.deepEqual((await api(s, 'GET', `/v5/identities/${identityId}/permissions/git`, { key: s.adminKey })).body.repositories[0].refs, want);
    // PUT replaces the grant: without refs, the rules are gone
    assert.equal((await api(s, 'PUT', `/identity/v1/identities/${identityId}/permissions/git/${repo}`, { key: s.adminKey, body: { permission: 'write' } })).status, 200);
    assert.equal((await api(s, 'GET', `/v5/identities/${identityId}/permissions/git/${repo}`, { key: s.adminKey })).body.refs, null);
    assert.equal((await api(s, 'PUT', `/v5/identities/${identityId}/permissions/git/${repo}`, { key: s.adminKey, body: { permission: 'write', refs: { allow: ['refs/tags/*'], deleteRefs: true } } })).status, 200);
    assert.deepEqual((await api(s, 'GET', `/identity/v1/identities/${identityId}/permissions/git/${repo}`, { key: s.adminKey })).body.refs, { allow: ['refs/tags/*'], deny: [], forcePush: false, deleteRefs: true });
    // refused: a pattern outside refs/, a rule on a read grant, a list that is not one
    for (const body of [{ permission: 'write', refs: { allow: ['heads/*'] } }, { permission: 'read', refs: { allow: ['refs/heads/*'] } }, { permission: 'write', refs: { allow: 'refs/heads/*' } }]) {
      const r = await api(s, 'PUT', `/v5/identities/${identityId}/permissions/git/${repo}`, { key: s.adminKey, body });
      assert.equal(r.status, 400, JSON.stringify(body));
    }
  });
});
