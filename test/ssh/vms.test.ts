// The VM registry and the gateway key: who may register, see, change and delete which VM
// (owner, another account, admin, an identity token, anonymous), the checks on host, port,
// defaultUser and hostKey (a refused PATCH changes nothing), pagination, the gateway key kept
// in the data folder (0600, the same across restarts), and what a VM installs, tried on a real
// sshd: the gateway key logs in through the published drop-in, gets a pty, forwards nothing.
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import ssh2 from 'ssh2';
import { api, freePort, startServer, type TestServer } from '../helpers/server.ts';

let s: TestServer;
/** the server requests go to: `s`, or after the restart test, the server restarted on its data */
let live: TestServer;
let restarted: TestServer | undefined;
let tmp: string;
let admin: string;
let alice: string;
let bob: string;
let token: string;
let hostKeyLine: string;
let hostKeyFile: string;
const GHOST = '00000000-0000-4000-8000-000000000000';

let n = 0;
function keygen(type: string, bits?: number): string {
  const file = path.join(tmp, `key${n++}`);
  execFileSync('ssh-keygen', ['-q', '-t', type, ...(bits ? ['-b', String(bits)] : []), '-N', '', '-C', `root@vm${n}`, '-f', file], { stdio: 'pipe' });
  return file;
}
const pub = (file: string) => fs.readFileSync(`${file}.pub`, 'utf8');

/** A user's id (the account id), from JSON-RPC. */
async function accountId(username: string): Promise<string> {
  const r = await fetch(`${live.url}/_admin/api`, { method: 'POST', body: JSON.stringify({ id: 1, api_key: live.adminKey, method: 'get_user', args: { username } }) });
  return ((await r.json()) as { result: { id: string } }).result.id;
}

const vms = (key: string | undefined, method: string, p = '', body?: unknown) => api(live, method, `/vm/v1/vms${p}`, { key, body });
async function newVm(key: string, body: object = {}): Promise<any> {
  const r = await vms(key, 'POST', '', { host: 'vm.example.com', hostKey: hostKeyLine, ...body });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body;
}

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'palisade-vms-'));
  hostKeyFile = keygen('ed25519');
  hostKeyLine = pub(hostKeyFile);
  s = await startServer();
  live = s;
  admin = s.adminKey;
  alice = await s.createUser('alice');
  bob = await s.createUser('bob');
  const ident = (await api(s, 'POST', '/identity/v1/identities', { key: alice })).body.id;
  token = (await api(s, 'POST', `/identity/v1/identities/${ident}/tokens`, { key: alice })).body.token;
});
after(async () => {
  await restarted?.stop();
  await s?.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('VM registry', () => {
  test('register with defaults; the host key is stored without its comment, the host in canonical form', async () => {
    const vm = await newVm(alice, { host: 'VM-1.Example.COM.' });
    assert.match(vm.id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    const [type, b64] = hostKeyLine.split(' ');
    assert.deepEqual({ ...vm, id: undefined, createdAt: undefined }, { id: undefined, createdAt: undefined, name: null, host: 'vm-1.example.com', port: 22, defaultUser: 'root', hostKey: `${type} ${b64}` });
    assert.ok(!Number.isNaN(Date.parse(vm.createdAt)));
    assert.deepEqual((await vms(alice, 'GET', `/${vm.id}`)).body, vm);
    const full = await newVm(alice, { name: 'build box', host: '[2001:DB8:0:0::1]', port: 2222, defaultUser: 'dev', hostKey: pub(keygen('ecdsa', 384)) });
    assert.equal(full.host, '2001:db8::1');
    assert.equal(full.name, 'build box');
    assert.equal(full.port, 2222);
    assert.equal(full.defaultUser, 'dev');
    assert.match(full.hostKey, /^ecdsa-sha2-nistp384 [A-Za-z0-9+/]+=*$/);
    assert.equal((await newVm(alice, { host: '10.0.0.7', hostKey: pub(keygen('rsa', 3072)) })).host, '10.0.0.7');
    // the VM id is one the Identity API takes for a grant
    const ident = (await api(live, 'POST', '/identity/v1/identities', { key: alice })).body.id;
    const grant = await api(live, 'POST', `/identity/v1/identities/${ident}/permissions/vm/${vm.id}`, { key: alice, body: { allowedUsers: ['root'] } });
    assert.equal(grant.status, 200, JSON.stringify(grant.body));
    assert.equal(grant.body.vmId, vm.id);
  });

  test('invalid host, port, defaultUser or hostKey: 400, nothing registered', async () => {
    const total = async () => (await vms(alice, 'GET')).body.total;
    const before = await total();
    const dsa = (() => {
      try {
        return pub(keygen('dsa'));
      } catch {
        return null; // OpenSSH without DSA: the key tests cover the refusal with a hand-made line
      }
    })();
    const bad: object[] = [
      { host: '' },
      { host: 'a..b' },
      { host: '-vm.example.com' },
      { host: 'vm_1.example.com' },
      { host: 'vm example' },
      { host: '1.2.3' },
      { host: '1.2.3.999' },
      { host: '0x7f.1' },
      { host: '0.0.0.0' },
      { host: '::' },
      { host: 'fe80::1%eth0' },
      { host: '[vm.example.com]' },
      { host: `${'a'.repeat(64)}.example.com` },
      { host: 'http://vm.example.com/' },
      { port: 0 },
      { port: 65536 },
      { port: '22' },
      { port: 22.5 },
      { defaultUser: 'Root' },
      { defaultUser: 'a b' },
      { defaultUser: '-x' },
      { defaultUser: 'x'.repeat(33) },
      { hostKey: 'not a key' },
      { hostKey: pub(keygen('rsa', 1024)) },
      ...(dsa ? [{ hostKey: dsa }] : []),
      { name: 'x'.repeat(201) },
      { hostKey: undefined },
      { host: undefined },
    ];
    for (const b of bad) {
      const r = await vms(alice, 'POST', '', { host: 'vm.example.com', hostKey: hostKeyLine, ...b });
      assert.equal(r.status, 400, `${JSON.stringify(b).slice(0, 80)}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.code, 'BAD_REQUEST');
    }
    assert.equal(await total(), before);
  });

  test('PATCH changes the fields given; a refused PATCH changes nothing, not even its valid fields', async () => {
    const vm = await newVm(alice, { name: 'old' });
    const newKey = pub(keygen('ecdsa', 256));
    const r = await vms(alice, 'PATCH', `/${vm.id}`, { name: 'new', port: 2200, defaultUser: 'ubuntu', host: '192.0.2.10', hostKey: newKey });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const want = { ...vm, name: 'new', port: 2200, defaultUser: 'ubuntu', host: '192.0.2.10', hostKey: newKey.split(' ').slice(0, 2).join(' ') };
    assert.deepEqual(r.body, want);
    assert.deepEqual((await vms(alice, 'GET', `/${vm.id}`)).body, want);
    for (const b of [{ port: 0 }, { host: 'bad host' }, { defaultUser: 'NOPE' }, { hostKey: 'ssh-ed25519 AAAA' }, { name: 'changed', hostKey: pub(keygen('rsa', 1024)) }, { name: 'changed', host: '::' }, { id: 'x', port: 'x' }]) {
      const bad = await vms(alice, 'PATCH', `/${vm.id}`, b);
      assert.equal(bad.status, 400, `${JSON.stringify(b).slice(0, 60)}: ${JSON.stringify(bad.body)}`);
    }
    assert.deepEqual((await vms(alice, 'GET', `/${vm.id}`)).body, want);
    // an empty PATCH changes nothing; name null clears the name; created fields stay
    assert.deepEqual((await vms(alice, 'PATCH', `/${vm.id}`, {})).body, want);
    const cleared = await vms(alice, 'PATCH', `/${vm.id}`, { name: null });
    assert.equal(cleared.body.name, null);
    assert.equal(cleared.body.createdAt, vm.createdAt);
    assert.equal(cleared.body.id, vm.id);
  });

  test('listing pages through the caller\'s VMs; an admin lists every account\'s', async () => {
    const mine = [];
    // bob's own machines: a host key registered by another account is refused (409)
    const bobKey = pub(keygen('ed25519'));
    for (let i = 0; i < 5; i++) mine.push((await newVm(bob, { name: `bob-${i}`, hostKey: bobKey })).id);
    const theirs = (await newVm(alice, { name: 'alice-x' })).id;
    const pages = [];
    for (let offset = 0; offset < 6; offset += 2) {
      const r = await vms(bob, 'GET', `?limit=2&offset=${offset}`);
      assert.equal(r.status, 200);
      assert.equal(r.body.total, 5);
      assert.equal(r.body.offset, offset);
      pages.push(...r.body.vms.map((v: { id: string }) => v.id));
    }
    assert.deepEqual(pages, mine, 'oldest first, each once');
    assert.equal((await vms(bob, 'GET', '?offset=5')).body.vms.length, 0);
    const all = await vms(admin, 'GET', '?limit=1000');
    assert.ok(mine.every((id) => all.body.vms.some((v: { id: string }) => v.id === id)));
    assert.ok(all.body.vms.some((v: { id: string }) => v.id === theirs));
    assert.equal(all.body.total, all.body.vms.length);
    for (const q of ['?limit=1001', '?limit=-1', '?offset=x', '?limit=1&limit=2', '?offset=9223372036854775808']) assert.equal((await vms(bob, 'GET', q)).status, 400, q);
  });

  test('who may do what: the registering account and admins manage a VM; another account sees none; tokens 403, anonymous 401', async () => {
    type Who = 'owner' | 'other' | 'admin' | 'identity' | 'anonymous';
    const keyOf = (w: Who) => ({ owner: alice, other: bob, admin, identity: token, anonymous: undefined })[w];
    const manage: Record<Who, [number, string?]> = { owner: [200], other: [404, 'VM_NOT_FOUND'], admin: [200], identity: [403, 'IDENTITY_ACCESS_DENIED'], anonymous: [401, 'UNAUTHORIZED'] };
    const account: Record<Who, number> = { owner: 200, other: 200, admin: 200, identity: 403, anonymous: 401 };
    for (const who of ['other', 'identity', 'anonymous', 'admin', 'owner'] as Who[]) {
      const vm = await newVm(alice, { name: 'matrix' });
      const [status, code] = manage[who];
      const answers = {
        get: await vms(keyOf(who), 'GET', `/${vm.id}`),
        patch: await vms(keyOf(who), 'PATCH', `/${vm.id}`, { name: `by ${who}` }),
        delete: await vms(keyOf(who), 'DELETE', `/${vm.id}`),
      };
      for (const [what, r] of Object.entries(answers)) {
        assert.equal(r.status, status, `${who} ${what}: ${JSON.stringify(r.body)}`);
        if (code) assert.equal(r.body.code, code, `${who} ${what}`);
      }
      const left = await vms(alice, 'GET', `/${vm.id}`);
      if (status === 200) assert.equal(left.status, 404, `${who} deleted it`);
      else assert.deepEqual(left.body, vm, `${who} changed nothing`);
      // registering, listing and the gateway key: any account
      assert.equal((await vms(keyOf(who), 'POST', '', { host: 'vm.example.com', hostKey: who === 'owner' ? hostKeyLine : pub(keygen('ed25519')) })).status, account[who], `${who} register`);
      const list = await vms(keyOf(who), 'GET');
      assert.equal(list.status, account[who], `${who} list`);
      if (who === 'other') assert.ok(list.body.vms.every((v: { name: string }) => v.name !== 'matrix'), 'bob lists alice\'s VMs');
      assert.equal((await api(live, 'GET', '/vm/v1/gateway-key', { key: keyOf(who) })).status, account[who], `${who} gateway-key`);
    }
    // a missing VM looks like another account's; a malformed id is a 400
    assert.equal((await vms(alice, 'GET', `/${GHOST}`)).body.code, 'VM_NOT_FOUND');
    assert.equal((await vms(alice, 'DELETE', '/-rf')).status, 400);
    // a deleted VM's grants stay in the Identity API (VM ids are opaque there)
    const vm = await newVm(alice);
    const ident = (await api(live, 'POST', '/identity/v1/identities', { key: alice })).body.id;
    await api(live, 'POST', `/identity/v1/identities/${ident}/permissions/vm/${vm.id}`, { key: alice, body: {} });
    assert.deepEqual((await vms(alice, 'DELETE', `/${vm.id}`)).body, {});
    assert.equal((await api(live, 'GET', `/identity/v1/identities/${ident}/permissions/vm/${vm.id}`, { key: alice })).status, 200);
  });
});

describe('gateway key', () => {
  test('one ed25519 key per account in DATA/ssh/gateway (0600, folders 0700), the same after a restart; ssh-keygen reads it', async () => {
    const first = await api(live, 'GET', '/vm/v1/gateway-key', { key: alice });
    assert.equal(first.status, 200);
    const { publicKey, fingerprint, authorizedKeysLine, sshdConfig } = first.body;
    assert.match(publicKey, /^ssh-ed25519 AAAAC3NzaC1lZDI1NTE5[A-Za-z0-9+/]+=* palisade-gateway$/);
    assert.equal(authorizedKeysLine, `restrict,pty ${publicKey}`);
    assert.match(sshdConfig, /^AuthorizedKeysFile \.ssh\/authorized_keys \/etc\/ssh\/palisade_gateway_keys$/m);
    const file = path.join(live.dataDir, 'ssh', 'gateway', `${await accountId('alice')}_ed25519`);
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    assert.equal(fs.statSync(path.dirname(file)).mode & 0o777, 0o700);
    const names = fs.readdirSync(path.dirname(file));
    assert.ok(names.includes(path.basename(file)));
    assert.ok(names.every((f) => /^[0-9a-f-]{36}_ed25519$/.test(f)), `one key per account, no temporary file left behind: ${names.join(', ')}`);
    // the file is an OpenSSH private key whose public half is the published one
    const derived = execFileSync('ssh-keygen', ['-y', '-f', file], { encoding: 'utf8' }).trim();
    assert.equal(derived.split(' ').slice(0, 2).join(' '), publicKey.split(' ').slice(0, 2).join(' '));
    fs.writeFileSync(path.join(tmp, 'gateway.pub'), `${publicKey}\n`);
    assert.equal(execFileSync('ssh-keygen', ['-lf', path.join(tmp, 'gateway.pub')], { encoding: 'utf8' }).split(' ')[1], fingerprint);
    // the same key from a restarted server on the same data folder
    const exited = new Promise((r) => s.proc.once('exit', r));
    s.proc.kill('SIGTERM'); // only the process: the folder stays for the restart
    await exited;
    restarted = await startServer({}, { reuse: s });
    live = restarted;
    const again = await api(live, 'GET', '/vm/v1/gateway-key', { key: alice });
    assert.deepEqual(again.body, first.body);
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    // another account has a key of its own: a VM that trusts alice's does not trust bob's
    const bobs = await api(live, 'GET', '/vm/v1/gateway-key', { key: bob });
    assert.notEqual(bobs.body.publicKey, first.body.publicKey);
  });

  const canRunSshd = process.getuid?.() === 0 && fs.existsSync('/usr/sbin/sshd');
  test('what a VM installs works with a real sshd: the gateway key logs in, gets a pty, cannot forward ports; the registered host key is the one sshd shows', { skip: !canRunSshd && 'needs root and /usr/sbin/sshd' }, async () => {
    const { authorizedKeysLine, sshdConfig } = (await api(live, 'GET', '/vm/v1/gateway-key', { key: alice })).body;
    const vm = await newVm(alice, { host: '127.0.0.1', hostKey: hostKeyLine });
    const dir = fs.mkdtempSync(path.join(tmp, 'sshd-'));
    const keysFile = path.join(dir, 'palisade_gateway_keys');
    fs.writeFileSync(keysFile, `${authorizedKeysLine}\n`, { mode: 0o644 });
    const port = await freePort();
    const config = path.join(dir, 'sshd_config');
    // the published drop-in as is, but for where the keys file lives; the rest lets sshd run
    // from a temp folder (StrictModes off: that folder is under the world-writable /tmp)
    fs.writeFileSync(config, [`Port ${port}`, 'ListenAddress 127.0.0.1', `HostKey ${hostKeyFile}`, `PidFile ${dir}/sshd.pid`, 'StrictModes no', 'UsePAM no', 'PasswordAuthentication no', 'KbdInteractiveAuthentication no', sshdConfig.replaceAll('/etc/ssh/palisade_gateway_keys', keysFile)].join('\n'));
    fs.mkdirSync('/run/sshd', { recursive: true, mode: 0o755 }); // sshd's privilege separation folder
    execFileSync('/usr/sbin/sshd', ['-t', '-f', config]); // the drop-in is valid configuration
    const sshd = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', config], { stdio: ['ignore', 'ignore', 'pipe'] });
    try {
      await listening(sshd);
      const privateKey = fs.readFileSync(path.join(live.dataDir, 'ssh', 'gateway', `${await accountId('alice')}_ed25519`), 'utf8');
      // the gateway checks the VM's host key against the registered one, as its blob
      const registered = Buffer.from(vm.hostKey.split(' ')[1], 'base64');
      let seen: Buffer | undefined;
      const conn = await connect({ host: '127.0.0.1', port, username: 'root', privateKey, hostVerifier: (key: Buffer) => ((seen = key), key.equals(registered)) });
      try {
        assert.ok(seen?.equals(registered));
        assert.equal(await run(conn, 'echo ok; id -un'), 'ok\nroot\n');
        assert.match(await run(conn, 'tty', { pty: true }), /^\/dev\/pts\/\d+/);
        // to sshd's own port, which answers: only the key's options can refuse it (1: administratively prohibited)
        await assert.rejects(
          new Promise((resolve, reject) => conn.forwardOut('127.0.0.1', 0, '127.0.0.1', port, (err, ch) => (err ? reject(err) : (ch.close(), resolve(ch))))),
          (e: Error & { reason?: number }) => e.reason === 1,
        );
      } finally {
        conn.end();
      }
      // another key is not let in: the VM trusts the gateway key only
      const stranger = fs.readFileSync(keygen('ed25519'), 'utf8');
      await assert.rejects(connect({ host: '127.0.0.1', port, username: 'root', privateKey: stranger, hostVerifier: () => true }), /authentication/i);
    } finally {
      sshd.kill('SIGTERM');
    }
  });
});


function listening(p: ChildProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    let err = '';
    const timer = setTimeout(() => reject(new Error(`sshd did not start: ${err}`)), 10_000);
    p.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      if (/Server listening on/.test(err)) {
        clearTimeout(timer);
        resolve();
      }
    });
    p.once('exit', (code) => reject(new Error(`sshd exited with ${code}: ${err}`)));
  });
}

function connect(cfg: ssh2.ConnectConfig): Promise<ssh2.Client> {
  return new Promise((resolve, reject) => {
    const c = new ssh2.Client();
    c.once('ready', () => resolve(c)).once('error', reject).connect({ readyTimeout: 10_000, ...cfg });
  });
}

function run(c: ssh2.Client, cmd: string, opts: ssh2.ExecOptions = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    c.exec(cmd, opts, (err, ch) => {
      if (err) return reject(err);
      let out = '';
      ch.on('data', (d: Buffer) => (out += d.toString())).on('close', () => resolve(out.replace(/\r\n/g, '\n')));
      ch.stderr.resume();
    });
  });
}
