// The Identity API and repository calls driven through the real freestyle-sandboxes SDK.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import fs from 'node:fs';
import { Errors, Freestyle } from 'freestyle-sandboxes';
import { repoDir } from '../../src/git/repo-path.ts';
import { startServer, type TestServer } from '../helpers/server.ts';
import { gitOk, makeWorkTree, repoUrl, tmpDir } from '../helpers/git.ts';

let server: TestServer;
let fs_: Freestyle;

before(async () => {
  server = await startServer();
  fs_ = new Freestyle({ baseUrl: server.url, apiKey: server.adminKey });
});
after(() => server.stop());

describe('SDK: identities, tokens, git and VM permissions', () => {
  test('the whole identity life cycle through every SDK identity call', async () => {
    const { repoId } = await fs_.git.repos.create({ name: 'sdk/life-cycle' });
    assert.match(repoId, /^[0-9a-f-]{36}$/);

    const { identityId, identity } = await fs_.identities.create();
    assert.match(identityId, /^[0-9a-f-]{36}$/);

    const listed = await fs_.identities.list({ limit: 100 });
    assert.ok(listed.identities.some((i) => i.id === identityId && i.managed === false));
    assert.equal(typeof listed.total, 'number');
    assert.equal(listed.offset, 0);

    // tokens
    const t1 = await identity.tokens.create();
    const t2 = await identity.tokens.create();
    assert.ok(t1.token.startsWith('pal_'));
    assert.notEqual(t1.token, t2.token);
    const tokens = await identity.tokens.list();
    assert.deepEqual(tokens.tokens.map((t) => t.id).sort(), [t1.tokenId, t2.tokenId].sort());
    assert.ok(!JSON.stringify(tokens).includes(t1.token), 'a listing never shows the secret');
    await identity.tokens.revoke({ tokenId: t2.tokenId });
    assert.deepEqual((await identity.tokens.list()).tokens.map((t) => t.id), [t1.tokenId]);

    // git permissions
    assert.equal((await identity.permissions.git.get({ repoId })).accessLevel ?? null, null);
    await identity.permissions.git.grant({ repoId, permission: 'read' });
    await assert.rejects(identity.permissions.git.grant({ repoId, permission: 'write' }), Errors.PermissionAlreadyExistsError);
    const d1 = await identity.permissions.git.get({ repoId });
    assert.deepEqual(d1, { identity: identityId, repo: repoId, accessLevel: 'read', refs: null });
    await identity.permissions.git.update({ repoId, permission: 'write' });
    assert.equal((await identity.permissions.git.get({ repoId })).accessLevel, 'write');
    const gl = await identity.permissions.git.list({});
    assert.equal(gl.repositories.length, 1);
    assert.deepEqual(gl.repositories[0], { id: repoId, name: 'sdk/life-cycle', accountId: gl.repositories[0]!.accountId, permissions: 'write', visibility: 'private', refs: null });

    // the token really clones now
    const wc = await makeWorkTree(1);
    await gitOk(['push', repoUrl(server.url, repoId, 'x-access-token', t1.token), 'main'], { cwd: wc });

    await identity.permissions.git.revoke({ repoId });
    await assert.rejects(identity.permissions.git.revoke({ repoId }), Errors.PermissionNotFoundError);
    await assert.rejects(identity.permissions.git.update({ repoId, permission: 'read' }), Errors.PermissionNotFoundError);
    assert.equal((await identity.permissions.git.list({})).repositories.length, 0);

    // VM permissions
    const vm = await identity.permissions.vms.grant({ vmId: 'vm-123', allowedUsers: ['root', 'dev'] });
    assert.equal(vm.vmId, 'vm-123');
    assert.equal(vm.identityId, identityId);
    assert.deepEqual(vm.allowedUsers, ['root', 'dev']);
    assert.ok(!Number.isNaN(Date.parse(vm.grantedAt)));
    assert.match(vm.grantedBy, /^[0-9a-f-]{36}$/);
    await assert.rejects(identity.permissions.vms.grant({ vmId: 'vm-123' }), Errors.PermissionAlreadyExistsError);
    const any = await identity.permissions.vms.grant({ vmId: 'vm-any' });
    assert.equal(any.allowedUsers ?? null, null);
    assert.deepEqual(await identity.permissions.vms.get({ vmId: 'vm-123' }), vm);
    const upd = await identity.permissions.vms.update({ vmId: 'vm-123', allowedUsers: null });
    assert.equal(upd.allowedUsers, null);
    assert.equal(upd.id, vm.id);
    const vl = await identity.permissions.vms.list({});
    assert.equal(vl.total, 2);
    assert.deepEqual(vl.permissions.map((p) => p.vmId), ['vm-123', 'vm-any']);
    const page = await identity.permissions.vms.list({ limit: 1, cursor: '1' });
    assert.deepEqual(page.permissions.map((p) => p.vmId), ['vm-any']);
    assert.equal(page.offset, 1);
    await identity.permissions.vms.revoke({ vmId: 'vm-any' });
    await assert.rejects(identity.permissions.vms.get({ vmId: 'vm-any' }), Errors.VmPermissionNotFoundError);
    await assert.rejects(identity.permissions.vms.update({ vmId: 'vm-any', allowedUsers: [] }), Errors.VmPermissionNotFoundError);

    // deleting the identity ends its token's access
    await fs_.identities.delete({ identityId });
    await assert.rejects(fs_.identities.delete({ identityId }), Errors.IdentityNotFoundError);
    await assert.rejects(fs_.identities.ref({ identityId }).tokens.list(), Errors.IdentityNotFoundError);
    const r = await import('../helpers/git.ts').then((m) => m.git(['ls-remote', repoUrl(server.url, repoId, 'x-access-token', t1.token)]));
    assert.notEqual(r.code, 0);
  });

  test('repositories: create, list, delete through the SDK', async () => {
    const a = await fs_.git.repos.create({ name: 'sdk/listed-a', public: true });
    const b = await fs_.git.repos.create({});
    const list = await fs_.git.repos.list({ limit: 100 });
    const ids = (list.repositories as unknown as { id: string }[]).map((r) => r.id);
    assert.ok(ids.includes(a.repoId) && ids.includes(b.repoId));
    const first = (list.repositories as unknown as { id: string; defaultBranch: string; branches: object; tags: object; visibility: string }[]).find((r) => r.id === a.repoId)!;
    assert.equal(first.defaultBranch, 'main');
    assert.equal(first.visibility, 'public');
    assert.deepEqual(first.branches, {});
    assert.deepEqual(first.tags, {});
    assert.ok(fs.existsSync(repoDir(server.dataDir, b.repoId)));
    await fs_.git.repos.delete({ repoId: b.repoId });
    assert.ok(!fs.existsSync(repoDir(server.dataDir, b.repoId)), 'the folder is gone too');
    await assert.rejects(fs_.git.repos.delete({ repoId: b.repoId }), Errors.RepoNotFoundError);
  });

  test('unknown ids raise the SDK typed errors', async () => {
    const ghost = '00000000-0000-4000-8000-000000000000';
    await assert.rejects(fs_.identities.ref({ identityId: ghost }).tokens.create(), Errors.IdentityNotFoundError);
    const { identity } = await fs_.identities.create();
    await assert.rejects(identity.permissions.git.grant({ repoId: ghost, permission: 'read' }), Errors.RepoNotFoundError);
  });

  test('client-side mode: an identity token in X-Freestyle-Identity-Access-Token reads what it is granted', async () => {
    const { repoId } = await fs_.git.repos.create({ name: 'sdk/client-side' });
    const other = await fs_.git.repos.create({ name: 'sdk/client-side-other' });
    const { identity } = await fs_.identities.create();
    await identity.permissions.git.grant({ repoId, permission: 'read' });
    const { token } = await identity.tokens.create();
    const client = new Freestyle({ baseUrl: server.url, accessToken: token });
    const res = await client.fetch(`${server.url}/git/v1/repo/${repoId}`);
    assert.equal(res.status, 200);
    assert.equal(((await res.json()) as { id: string }).id, repoId);
    const hidden = await client.fetch(`${server.url}/git/v1/repo/${other.repoId}`);
    assert.equal(hidden.status, 404);
    // read grant: no deleting
    await assert.rejects(client.git.repos.delete({ repoId }), Errors.GitRepositoryAccessDeniedError);
    await identity.permissions.git.update({ repoId, permission: 'write' });
    // write grant still is not admin: deleting a repository stays with its owner
    await assert.rejects(client.git.repos.delete({ repoId }), Errors.GitRepositoryAccessDeniedError);
    // and identity tokens cannot manage identities
    await assert.rejects(client.identities.create(), Errors.IdentityAccessDeniedError);
    void tmpDir;
  });
});
