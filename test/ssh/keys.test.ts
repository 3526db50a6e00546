// SSH public keys over HTTP and JSON-RPC: who may list, add and remove whose keys (owner,
// another account, admin, an identity token, anonymous), keys made by the real ssh-keygen
// with the fingerprints it prints, the refusals (DSA, short RSA, private keys, malformed
// lines), a key registered once on the whole server, and the bound per identity.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { api, startServer, type TestServer } from '../helpers/server.ts';

let s: TestServer;
let tmp: string;
let admin: string;
let alice: string;
let bob: string;
/** an identity of alice's, and an access token of it */
let ident: string;
let token: string;
let bobIdent: string;
const GHOST = '00000000-0000-4000-8000-000000000000';

interface Key {
  pub: string;
  priv: string;
  /** what `ssh-keygen -lf` prints for it */
  fingerprint: string;
}

let n = 0;
/** A key pair made by the real ssh-keygen; throws if ssh-keygen refuses the type. */
function keygen(type: string, bits?: number, comment = `test-key-${n}`): Key {
  const file = path.join(tmp, `key${n++}`);
  execFileSync('ssh-keygen', ['-q', '-t', type, ...(bits ? ['-b', String(bits)] : []), '-N', '', '-C', comment, '-f', file], { stdio: 'pipe' });
  const fingerprint = execFileSync('ssh-keygen', ['-lf', `${file}.pub`], { encoding: 'utf8' }).split(' ')[1]!;
  return { pub: fs.readFileSync(`${file}.pub`, 'utf8'), priv: fs.readFileSync(file, 'utf8'), fingerprint };
}

const sshString = (b: Buffer | string) => {
  const buf = typeof b === 'string' ? Buffer.from(b) : b;
  const len = Buffer.alloc(4);
  len.writeUInt32BE(buf.length);
  return Buffer.concat([len, buf]);
};
/** An SSH mpint from unsigned big-endian bytes. */
const mpint = (b: Buffer) => sshString(b[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), b]) : b);

/** A fresh ed25519 public key line, made in process (for tests that need many). */
function edLine(comment = ''): string {
  const { publicKey } = crypto.generateKeyPairSync('ed25519');
  const raw = Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url');
  return `ssh-ed25519 ${Buffer.concat([sshString('ssh-ed25519'), sshString(raw)]).toString('base64')}${comment ? ` ${comment}` : ''}`;
}

const user = (key: string | undefined, method: string, p = '', body?: unknown) => api(s, method, `/user/v1/ssh-keys${p}`, { key, body });
const ofIdentity = (key: string | undefined, id: string, method: string, p = '', body?: unknown) => api(s, method, `/identity/v1/identities/${id}/ssh-keys${p}`, { key, body });
const rpc = (apiKey: string, method: string, args: object) => api(s, 'POST', '/_admin/api', { body: { id: 7, api_key: apiKey, method, args } });

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'palisade-ssh-keys-'));
  s = await startServer();
  admin = s.adminKey;
  alice = await s.createUser('alice');
  bob = await s.createUser('bob');
  ident = (await api(s, 'POST', '/identity/v1/identities', { key: alice })).body.id;
  token = (await api(s, 'POST', `/identity/v1/identities/${ident}/tokens`, { key: alice })).body.token;
  bobIdent = (await api(s, 'POST', '/identity/v1/identities', { key: bob })).body.id;
});
after(async () => {
  await s?.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('SSH keys', () => {
  test('ed25519, ecdsa (256/384/521) and rsa-4096 keys from ssh-keygen: fingerprints as ssh-keygen -lf prints them', async () => {
    const keys = [keygen('ed25519', undefined, 'alice@laptop'), keygen('ecdsa', 256), keygen('ecdsa', 384), keygen('ecdsa', 521), keygen('rsa', 4096)];
    for (const k of keys) {
      const r = await user(alice, 'POST', '', { publicKey: k.pub });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(r.body.fingerprint, k.fingerprint);
      assert.match(r.body.id, /^[0-9a-f-]{36}$/);
      assert.ok(!Number.isNaN(Date.parse(r.body.createdAt)));
    }
    // the title defaults to the key's comment; a given title wins
    const list = await user(alice, 'GET');
    assert.equal(list.status, 200);
    assert.deepEqual(list.body.keys.map((k: { fingerprint: string }) => k.fingerprint), keys.map((k) => k.fingerprint));
    assert.equal(list.body.keys[0].title, 'alice@laptop');
    assert.deepEqual(Object.keys(list.body.keys[0]).sort(), ['createdAt', 'fingerprint', 'id', 'title']);
    const titled = await user(alice, 'POST', '', { publicKey: edLine('a comment'), title: 'ci runner' });
    assert.equal(titled.body.title, 'ci runner');
    const bare = await user(alice, 'POST', '', { publicKey: edLine() });
    assert.equal(bare.body.title, null);
  });

  test('DSA and RSA-1024 keys are refused with 400', async () => {
    let dsa: string;
    try {
      dsa = keygen('dsa').pub;
    } catch {
      // OpenSSH built without DSA (the default from 9.8): an ssh-dss line made by hand, whose
      // numbers ssh2 parses as well as real ones (nothing in it is checked before the type)
      dsa = `ssh-dss ${Buffer.concat(['ssh-dss', crypto.randomBytes(128), crypto.randomBytes(20), crypto.randomBytes(128), crypto.randomBytes(128)].map((x) => (typeof x === 'string' ? sshString(x) : mpint(x)))).toString('base64')} dsa`;
    }
    let rsa1024: string;
    try {
      rsa1024 = keygen('rsa', 1024).pub;
    } catch {
      // an ssh-keygen that refuses to make one: the same key from node:crypto
      const jwk = crypto.generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ format: 'jwk' });
      rsa1024 = `ssh-rsa ${Buffer.concat([sshString('ssh-rsa'), mpint(Buffer.from(jwk.e!, 'base64url')), mpint(Buffer.from(jwk.n!, 'base64url'))]).toString('base64')}`;
    }
    const d = await user(alice, 'POST', '', { publicKey: dsa });
    assert.equal(d.status, 400);
    assert.equal(d.body.code, 'BAD_REQUEST');
    assert.match(d.body.message, /DSA/);
    const r = await user(alice, 'POST', '', { publicKey: rsa1024 });
    assert.equal(r.status, 400);
    assert.match(r.body.message, /at least 2048 bits \(this one has 1024\)/);
    // nor on an identity, nor through JSON-RPC
    assert.equal((await ofIdentity(alice, ident, 'POST', '', { publicKey: dsa })).status, 400);
    assert.match((await rpc(admin, 'add_user_ssh_key', { username: 'bob', public_key: rsa1024 })).body.error, /2048/);
    // a 2048-bit key is the smallest accepted
    assert.equal((await user(bob, 'POST', '', { publicKey: keygen('rsa', 2048).pub })).status, 200);
  });

  test('a private key pasted instead of the public one: 400, and never echoed or logged', async () => {
    const ed = keygen('ed25519');
    const rsaPem = path.join(tmp, 'pem-rsa');
    execFileSync('ssh-keygen', ['-q', '-t', 'rsa', '-b', '2048', '-m', 'PEM', '-N', '', '-f', rsaPem]);
    const encrypted = path.join(tmp, 'encrypted');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', 'secret passphrase', '-f', encrypted]);
    const privates = [ed.priv, fs.readFileSync(rsaPem, 'utf8'), fs.readFileSync(encrypted, 'utf8'), crypto.generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()];
    for (const priv of privates) {
      // every 16-character piece of the key's base64 body: none may come back
      const body = priv.split('\n').filter((l) => l && !l.startsWith('-----')).join('');
      const pieces = Array.from({ length: Math.floor(body.length / 16) }, (_, i) => body.slice(i * 16, i * 16 + 16));
      const answers = [
        await user(alice, 'POST', '', { publicKey: priv }),
        await ofIdentity(alice, ident, 'POST', '', { publicKey: priv, title: 'x' }),
        await rpc(admin, 'add_user_ssh_key', { username: 'alice', public_key: priv }),
        await api(s, 'POST', '/vm/v1/vms', { key: alice, body: { host: 'vm.example.com', hostKey: priv } }),
      ];
      for (const a of answers.slice(0, 2).concat(answers.slice(3))) {
        assert.equal(a.status, 400, JSON.stringify(a.body));
        assert.match(a.body.message, /private key/);
      }
      assert.match(answers[2]!.body.error, /private key/);
      for (const a of answers) {
        const text = JSON.stringify(a.body);
        assert.ok(!pieces.some((x) => text.includes(x)), `echoed: ${text}`);
      }
      assert.ok(!pieces.some((x) => s.logs().includes(x)), 'the private key reached the log');
    }
    assert.equal((await user(alice, 'GET')).body.keys.some((k: { fingerprint: string }) => k.fingerprint === ed.fingerprint), false);
  });

  test('malformed lines and bad titles are 400; nothing is stored', async () => {
    const good = edLine();
    const [type, b64] = good.split(' ') as [string, string];
    const blob = Buffer.from(b64, 'base64');
    const bad = [
      '',
      'not a key',
      'ssh-ed25519',
      'ssh-ed25519 !!!!',
      `${type} ${b64.slice(0, 40)}`, // truncated
      `${type} ${Buffer.concat([blob, Buffer.from([0])]).toString('base64')}`, // trailing data
      `ssh-rsa ${b64}`, // an ed25519 blob under another type
      `ssh-ed25519-cert-v01@openssh.com ${b64}`,
      `sk-ssh-ed25519@openssh.com ${b64}`,
      `restrict ${good}`, // authorized_keys options
      `${good}\n${edLine()}`, // two keys
      `---- BEGIN SSH2 PUBLIC KEY ----\n${b64}\n---- END SSH2 PUBLIC KEY ----`,
    ];
    const before = (await user(alice, 'GET')).body.keys.length;
    for (const publicKey of bad) {
      const r = await user(alice, 'POST', '', { publicKey });
      assert.equal(r.status, 400, `${publicKey}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.code, 'BAD_REQUEST');
    }
    for (const body of [{}, { publicKey: 42 }, { publicKey: good, title: 'x'.repeat(201) }, { publicKey: good, title: 7 }, { publicKey: 'x'.repeat(8193) }]) {
      const r = await user(alice, 'POST', '', body);
      assert.equal(r.status, 400, JSON.stringify(body).slice(0, 80));
    }
    assert.equal((await user(alice, 'GET')).body.keys.length, before);
    // a title of 200 characters is fine, and so is leading and trailing space around the line
    assert.equal((await user(alice, 'POST', '', { publicKey: `  ${good}  \n`, title: 't'.repeat(200) })).status, 200);
  });

  test('a key is registered once on the whole server: 409 for the same user, another identity, another account; free again once deleted', async () => {
    const k = keygen('ed25519');
    const first = await user(alice, 'POST', '', { publicKey: k.pub });
    assert.equal(first.status, 200);
    // the comment is not part of the key: another comment is the same key
    const again = [
      await user(alice, 'POST', '', { publicKey: k.pub.replace(/ \S+\s*$/, ' another-comment') }),
      await ofIdentity(alice, ident, 'POST', '', { publicKey: k.pub }),
      await user(bob, 'POST', '', { publicKey: k.pub }),
      await ofIdentity(bob, bobIdent, 'POST', '', { publicKey: k.pub }),
      await user(admin, 'POST', '', { publicKey: k.pub }),
    ];
    for (const r of again) {
      assert.equal(r.status, 409, JSON.stringify(r.body));
      assert.equal(r.body.code, 'SSH_KEY_ALREADY_EXISTS');
      // whose key it is stays unsaid
      assert.doesNotMatch(r.body.message, /alice|bob|admin|[0-9a-f]{8}-/);
    }
    const viaRpc = await rpc(admin, 'add_user_ssh_key', { username: 'bob', public_key: k.pub });
    assert.equal(viaRpc.body.result, null);
    assert.match(viaRpc.body.error, /already registered/);
    // deleted, it may be registered again, by anyone
    assert.equal((await user(alice, 'DELETE', `/${first.body.id}`)).status, 200);
    const bobs = await ofIdentity(bob, bobIdent, 'POST', '', { publicKey: k.pub });
    assert.equal(bobs.status, 200);
    assert.equal(bobs.body.fingerprint, k.fingerprint);
  });

  test('deleting: the key leaves the list, a second delete and a stranger\'s id are 404, a deleted identity frees its keys', async () => {
    const a = await user(alice, 'POST', '', { publicKey: edLine() });
    const b = await user(bob, 'POST', '', { publicKey: edLine() });
    assert.deepEqual((await user(alice, 'DELETE', `/${a.body.id}`)).body, {});
    assert.equal((await user(alice, 'GET')).body.keys.some((k: { id: string }) => k.id === a.body.id), false);
    const twice = await user(alice, 'DELETE', `/${a.body.id}`);
    assert.equal(twice.status, 404);
    assert.equal(twice.body.code, 'SSH_KEY_NOT_FOUND');
    // bob's key id through alice's own endpoint and through alice's identity: not found, and still bob's
    assert.equal((await user(alice, 'DELETE', `/${b.body.id}`)).status, 404);
    assert.equal((await ofIdentity(alice, ident, 'DELETE', `/${b.body.id}`)).status, 404);
    assert.equal((await user(bob, 'GET')).body.keys.some((k: { id: string }) => k.id === b.body.id), true);
    // upper-case ids are the same id
    assert.equal((await user(bob, 'DELETE', `/${String(b.body.id).toUpperCase()}`)).status, 200);
    assert.equal((await user(alice, 'DELETE', '/not-a-uuid')).status, 400);
    // an identity's keys go with it
    const j = (await api(s, 'POST', '/identity/v1/identities', { key: alice })).body.id;
    const line = edLine();
    assert.equal((await ofIdentity(alice, j, 'POST', '', { publicKey: line })).status, 200);
    assert.equal((await api(s, 'DELETE', `/identity/v1/identities/${j}`, { key: alice })).status, 200);
    assert.equal((await ofIdentity(alice, ident, 'POST', '', { publicKey: line })).status, 200);
  });

  test('a managed identity (a user\'s own): its keys are listed there, changed only as the user\'s', async () => {
    const ids = (await api(s, 'GET', '/identity/v1/identities?include_managed=true', { key: alice })).body.identities;
    const managed = ids.find((i: { managed: boolean }) => i.managed).id;
    const mine = await user(alice, 'POST', '', { publicKey: edLine() });
    const listed = await ofIdentity(alice, managed, 'GET');
    assert.equal(listed.status, 200);
    assert.ok(listed.body.keys.some((k: { id: string }) => k.id === mine.body.id));
    for (const r of [await ofIdentity(alice, managed, 'POST', '', { publicKey: edLine() }), await ofIdentity(admin, managed, 'DELETE', `/${mine.body.id}`)]) {
      assert.equal(r.status, 403);
      assert.equal(r.body.code, 'CANNOT_MODIFY_MANAGED_IDENTITY');
    }
    assert.ok((await user(alice, 'GET')).body.keys.some((k: { id: string }) => k.id === mine.body.id));
  });

  test('at most 100 keys per identity', async () => {
    const j = (await api(s, 'POST', '/identity/v1/identities', { key: alice })).body.id;
    for (let i = 0; i < 100; i++) assert.equal((await ofIdentity(alice, j, 'POST', '', { publicKey: edLine() })).status, 200);
    const over = await ofIdentity(alice, j, 'POST', '', { publicKey: edLine() });
    assert.equal(over.status, 400);
    assert.equal(over.body.code, 'TOO_MANY_SSH_KEYS');
    assert.equal((await ofIdentity(alice, j, 'GET')).body.keys.length, 100);
  });
});

describe('SSH keys: who may do what', () => {
  type Who = 'owner' | 'other' | 'admin' | 'identity' | 'anonymous';
  const WHO: Who[] = ['owner', 'other', 'admin', 'identity', 'anonymous'];
  const keyOf = (w: Who): string | undefined => ({ owner: alice, other: bob, admin, identity: token, anonymous: undefined })[w];

  test('identity endpoints: the owning account and admins; another account sees no identity; tokens and anonymous are refused', async () => {
    const expected: Record<Who, [number, string?]> = { owner: [200], other: [404, 'IDENTITY_NOT_FOUND'], admin: [200], identity: [403, 'IDENTITY_ACCESS_DENIED'], anonymous: [401, 'UNAUTHORIZED'] };
    for (const who of WHO) {
      const [status, code] = expected[who];
      const victim = (await ofIdentity(alice, ident, 'POST', '', { publicKey: edLine() })).body.id;
      const answers = {
        list: await ofIdentity(keyOf(who), ident, 'GET'),
        add: await ofIdentity(keyOf(who), ident, 'POST', '', { publicKey: edLine() }),
        delete: await ofIdentity(keyOf(who), ident, 'DELETE', `/${victim}`),
      };
      for (const [what, r] of Object.entries(answers)) {
        assert.equal(r.status, status, `${who} ${what}: ${JSON.stringify(r.body)}`);
        if (code) assert.equal(r.body.code, code, `${who} ${what}`);
      }
      const left = (await ofIdentity(alice, ident, 'GET')).body.keys.some((k: { id: string }) => k.id === victim);
      assert.equal(left, status !== 200, `${who}: the key is ${left ? 'still there' : 'gone'}`);
    }
    // a missing identity looks like a foreign one
    assert.equal((await ofIdentity(alice, GHOST, 'GET')).status, 404);
  });

  test('/user/v1: each account its own keys; identity tokens 403, anonymous 401', async () => {
    const victim = (await user(alice, 'POST', '', { publicKey: edLine() })).body.id;
    const expected: Record<Who, { list: number; add: number; deleteAlices: number }> = {
      owner: { list: 200, add: 200, deleteAlices: 200 },
      other: { list: 200, add: 200, deleteAlices: 404 },
      admin: { list: 200, add: 200, deleteAlices: 404 }, // an admin's own endpoint holds the admin's keys
      identity: { list: 403, add: 403, deleteAlices: 403 },
      anonymous: { list: 401, add: 401, deleteAlices: 401 },
    };
    // the owner last: the others try to delete alice's key first
    for (const who of ['other', 'admin', 'identity', 'anonymous', 'owner'] as Who[]) {
      const e = expected[who];
      const list = await user(keyOf(who), 'GET');
      assert.equal(list.status, e.list, `${who} list`);
      if (who !== 'owner' && list.status === 200) assert.equal(list.body.keys.some((k: { id: string }) => k.id === victim), false, `${who} sees alice's key`);
      assert.equal((await user(keyOf(who), 'POST', '', { publicKey: edLine() })).status, e.add, `${who} add`);
      assert.equal((await user(keyOf(who), 'DELETE', `/${victim}`)).status, e.deleteAlices, `${who} delete`);
      if (who !== 'owner') assert.ok((await user(alice, 'GET')).body.keys.some((k: { id: string }) => k.id === victim), `${who} removed alice's key`);
    }
    const denied = await user(token, 'GET');
    assert.equal(denied.body.code, 'IDENTITY_ACCESS_DENIED');
  });

  test('JSON-RPC: admins add, list and delete any user\'s keys; everyone else is refused', async () => {
    const line = edLine('from-rpc');
    const added = await rpc(admin, 'add_user_ssh_key', { username: 'bob', public_key: line, title: 'deploy' });
    assert.equal(added.status, 200);
    assert.equal(added.body.error, null);
    assert.match(added.body.result.fingerprint, /^SHA256:[A-Za-z0-9+/]{43}$/);
    assert.match(added.body.result.msg, /bob/);
    const keyId = added.body.result.id;
    // bob sees it as his own
    assert.ok((await user(bob, 'GET')).body.keys.some((k: { id: string; title: string }) => k.id === keyId && k.title === 'deploy'));
    const listed = await rpc(admin, 'get_user_ssh_keys', { username: 'bob' });
    const mine = listed.body.result.find((k: { id: string }) => k.id === keyId);
    assert.deepEqual(Object.keys(mine).sort(), ['created_on', 'fingerprint', 'id', 'title']);
    assert.equal(mine.fingerprint, added.body.result.fingerprint);
    // not admin: a plain user, an identity token, no key
    for (const [apiKey, error] of [[alice, /requires admin/], [token, /Invalid API KEY/], ['', /Missing api_key/]] as const) {
      for (const [method, args] of [['add_user_ssh_key', { username: 'bob', public_key: edLine() }], ['get_user_ssh_keys', { username: 'bob' }], ['delete_user_ssh_key', { username: 'bob', key_id: keyId }]] as const) {
        const r = await rpc(apiKey, method, args);
        assert.equal(r.body.result, null, `${method}`);
        assert.match(r.body.error, error, `${method}`);
      }
    }
    // unknown user, bad key id, unknown argument
    assert.match((await rpc(admin, 'get_user_ssh_keys', { username: 'nobody' })).body.error, /does not exist/);
    assert.match((await rpc(admin, 'delete_user_ssh_key', { username: 'bob', key_id: 'x' })).body.error, /key_id/);
    assert.match((await rpc(admin, 'add_user_ssh_key', { username: 'bob', public_key: edLine(), fingerprint: 'x' })).body.error, /unexpected argument/);
    // deleting: success true once, then false; another user's key is not touched through bob
    const other = await user(alice, 'POST', '', { publicKey: edLine() });
    assert.equal((await rpc(admin, 'delete_user_ssh_key', { username: 'bob', key_id: other.body.id })).body.result.success, false);
    assert.ok((await user(alice, 'GET')).body.keys.some((k: { id: string }) => k.id === other.body.id));
    assert.equal((await rpc(admin, 'delete_user_ssh_key', { username: 'bob', key_id: keyId })).body.result.success, true);
    assert.equal((await rpc(admin, 'delete_user_ssh_key', { username: 'bob', key_id: keyId })).body.result.success, false);
    assert.equal((await user(bob, 'GET')).body.keys.some((k: { id: string }) => k.id === keyId), false);
  });
});
